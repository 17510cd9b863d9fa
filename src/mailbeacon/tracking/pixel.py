"""The open pixel: a 1x1 transparent GIF."""

from __future__ import annotations

import base64

TRANSPARENT_GIF = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")

"""The open-tracking pixel: what is inserted, and how an existing one is recognised."""

from __future__ import annotations

from typing import Final

from mailbeacon.rewrite.urls import http_authority

# Our open-tracking URLs have paths starting with this prefix.
OPEN_PATH_PREFIX: Final = "/o/"

PIXEL_BEFORE: Final = '<img src="'
PIXEL_AFTER: Final = '" width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0" />'


def is_open_pixel_url(url: str, tracking_hosts: frozenset[str]) -> bool:
    authority = http_authority(url)
    if authority is None:
        return False
    host, rest = authority
    return host in tracking_hosts and rest.startswith(OPEN_PATH_PREFIX)

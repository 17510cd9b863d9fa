"""The few URL facts the rewriter needs, taken from the URL exactly as written."""

from __future__ import annotations

import re

# HTML's "ASCII whitespace", which browsers strip from both ends of a URL.
ASCII_WHITESPACE = "\t\n\f\r "

_AUTHORITY_END = re.compile(r"[/?#\\]")


def http_authority(url: str) -> tuple[str, str] | None:
    """Return ``(host[:port] lower-cased, path-and-rest)`` of an http(s) URL, else None.

    ``url`` must already be stripped of surrounding whitespace. Userinfo is dropped.
    """
    head = url[:8].lower()
    if head.startswith("http://"):
        rest = url[7:]
    elif head == "https://":
        rest = url[8:]
    else:
        return None
    end_match = _AUTHORITY_END.search(rest)
    end = end_match.start() if end_match else len(rest)
    host = rest[:end].rpartition("@")[2].lower()
    return host, rest[end:]


def hostname(host: str) -> str:
    """Drop the port and a trailing dot from ``host[:port]``."""
    if host.startswith("["):
        close = host.find("]")
        return host[: close + 1] if close >= 0 else host
    name, colon, port = host.rpartition(":")
    if colon and (port.isdigit() or not port):
        host = name
    return host.rstrip(".")

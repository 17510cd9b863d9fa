"""Scam prevention: links whose visible text is itself a URL or a domain.

Rewriting such a link makes the host the reader sees differ from the host the link goes
to, which is exactly what mail clients' phishing warnings look for.
"""

from __future__ import annotations

import re
from html import unescape

from mailbeacon.rewrite.urls import hostname, http_authority

# Longer visible text is prose, not an address; the cap also bounds the work per link.
MAX_VISIBLE_TEXT = 2048

# An unclosed comment or tag runs to the end, so every match succeeds where it starts and
# the work stays linear (a failing "<!--.*?-->" rescans the rest from every "<!--").
_TAG_OR_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)|<[^>]*+(?:>|\Z)", re.DOTALL)
_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
_BARE_ADDRESS = re.compile(
    rf"(?P<host>(?:{_LABEL}\.)+[^\W\d_]{{2,63}})\.?(?::[0-9]{{1,5}})?(?:[/?#].*)?",
    re.DOTALL,
)


def visible_text(markup: str) -> str:
    """The text a reader sees for a fragment of markup (tags dropped, entities decoded)."""
    if "<" in markup:
        markup = _TAG_OR_COMMENT.sub("", markup)
    if "&" in markup:
        markup = unescape(markup)
    return markup.strip()


def address_host(text: str) -> str | None:
    """The host named by ``text`` if the whole text is a URL or a bare domain, else None."""
    if not text or len(text) > MAX_VISIBLE_TEXT or any(c.isspace() for c in text):
        return None
    authority = http_authority(text)
    if authority is not None:
        return hostname(authority[0]) or None
    match = _BARE_ADDRESS.fullmatch(text.lower())
    return hostname(match.group("host")) if match else None


def is_deceptive(markup: str, tracking_hostnames: frozenset[str]) -> bool:
    """True if rewriting a link showing ``markup`` would show one host and go to another.

    ``tracking_hostnames`` are the tracking hosts without ports.
    """
    host = address_host(visible_text(markup))
    return host is not None and host not in tracking_hostnames

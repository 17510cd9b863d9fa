"""Decoding character references in attribute values the way browsers do."""

from __future__ import annotations

import re
from html import unescape
from html.entities import html5

_CHARACTER_REFERENCE = re.compile(r"&(?:#[0-9]++;?|#[xX][0-9a-fA-F]++;?|[A-Za-z][A-Za-z0-9]*+;?)(?P<next>=?)")


def unescape_attribute(value: str) -> str:
    """Decode character references as a browser does in an attribute value.

    Unlike ``html.unescape``, a named reference is decoded only when it is complete: either
    a known name with ";", or one of the legacy names that may omit ";" and then is not
    followed by "=" or an alphanumeric (HTML's "historical reasons" rule for attributes).
    So ``?a=1&param=2`` keeps ``&param`` instead of becoming ``¶m``.
    """
    if "&" not in value:
        return value
    return _CHARACTER_REFERENCE.sub(_decode, value)


def _decode(match: re.Match[str]) -> str:
    text = match.group(0)
    following = match.group("next")
    reference = text[: len(text) - len(following)]
    if reference.startswith("&#"):
        return unescape(reference) + following
    # The regex took the whole alphanumeric run, so a shorter legacy name inside it would be
    # followed by an alphanumeric: only an exact name can be decoded.
    name = reference[1:]
    if name in html5 and (name.endswith(";") or not following):
        return html5[name] + following
    return text

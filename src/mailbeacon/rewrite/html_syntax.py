"""Compiled regexes for the HTML scanner, following the HTML tokenizer's rules.

Every quantifier is possessive (or capped), so no pattern backtracks and a scan is linear
in the input even for garbage such as thousands of unclosed quotes or tags.
"""

from __future__ import annotations

import re
from typing import Final

_WS = r"[\t\n\f\r ]"
# An attribute name may start with "=" and contain quotes or "<" (parse errors, but that
# is how browsers split the tag).
_ATTR_NAME = r"[^\t\n\f\r />][^\t\n\f\r />=]*+"
# An unclosed quote swallows the rest of the document, as it does in a browser.
_ATTR_VALUE = r"""(?:"[^"]*+(?:"|\Z)|'[^']*+(?:'|\Z)|[^\t\n\f\r >]++)"""
_ATTRIBUTES = rf"(?:[\t\n\f\r /]++|{_ATTR_NAME}(?:{_WS}*+={_WS}*+{_ATTR_VALUE}?)?)*+"
_CONDITION = r"\[if\b[^\]>]{0,256}+\]>"

# Matches at every "<" that starts markup; the named alternative says which kind.
MARKUP: Final = re.compile(
    "<(?:"
    # Outlook conditional comment "<!--[if mso]>", or the downlevel-revealed
    # "<!--[if !mso]><!-->": the content is scanned as ordinary markup.
    rf"(?P<condition_open>!--{_CONDITION}(?:<!--(?:{_WS}*+--)?>)?|!{_CONDITION})"
    rf"|(?P<condition_close>!\[endif\]{_WS}*+(?:--)?>)"
    r"|(?P<comment>!--)"
    # "<!DOCTYPE ...>", "<?xml ...?>", "</ ...>": bogus comments that end at the next ">".
    r"|(?P<bogus>[!?]|/(?![A-Za-z]))"
    rf"|(?P<tag>(?P<end_tag>/)?(?P<name>[A-Za-z][^\t\n\f\r />]*+)"
    rf"(?P<attributes>{_ATTRIBUTES})(?P<tag_close>>)?)"
    ")",
    re.IGNORECASE,
)

ATTRIBUTE: Final = re.compile(
    rf"[\t\n\f\r /]*+(?P<name>{_ATTR_NAME})"
    rf"(?:{_WS}*+={_WS}*+"
    r"""(?:"(?P<double>[^"]*+)"|'(?P<single>[^']*+)'|(?P<unquoted>[^\t\n\f\r >]++))?)?"""
)

COMMENT_END: Final = re.compile(r"--!?>")
ENDIF_MARK: Final = re.compile(r"<!\[endif\]", re.IGNORECASE)

# Elements whose content is text up to the matching end tag, never markup.
RAW_TEXT_END: Final = {
    name: re.compile(rf"</{name}(?:[\t\n\f\r />]|\Z)", re.IGNORECASE)
    for name in ("script", "style", "title", "textarea", "xmp", "iframe", "noembed", "noframes")
}
# Everything after <plaintext> is text.
PLAINTEXT: Final = "plaintext"

LINK_TAGS: Final = frozenset({"a", "area", "v:roundrect", "v:rect", "v:oval"})

# Where the visible text of an <a> ends: its end tag, or the next <a> (which closes it).
ANCHOR_BOUNDARY: Final = re.compile(r"</?a(?:[\t\n\f\r />]|\Z)", re.IGNORECASE)

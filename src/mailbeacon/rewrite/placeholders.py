"""Template-language placeholders, including our own unsubscribe placeholder."""

from __future__ import annotations

import re

UNSUBSCRIBE_PLACEHOLDER = re.compile(r"\{\{[ \t]*+mb_unsubscribe[ \t]*+\}\}")

# Merge tags of common template languages: Jinja/Handlebars/Liquid, MailChimp, Salesforce,
# wiki-style and shell-style.
_PLACEHOLDER_DELIMITERS: tuple[tuple[str, str], ...] = (
    ("{{", "}}"),
    ("{%", "%}"),
    ("*|", "|*"),
    ("%%", "%%"),
    ("[[", "]]"),
    ("${", "}"),
)


_ANY_OPENER = re.compile("|".join(re.escape(opener) for opener, _ in _PLACEHOLDER_DELIMITERS))


def contains_placeholder(value: str) -> bool:
    if _ANY_OPENER.search(value) is None:
        return False
    # str.find instead of a regex: a lazy "{{.*?}}" is quadratic on many unclosed openers.
    for opener, closer in _PLACEHOLDER_DELIMITERS:
        start = value.find(opener)
        if start >= 0 and value.find(closer, start + len(opener)) >= 0:
            return True
    return False


def contains_unsubscribe(value: str) -> bool:
    return UNSUBSCRIBE_PLACEHOLDER.search(value) is not None

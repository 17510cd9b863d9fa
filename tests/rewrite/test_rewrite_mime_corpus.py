"""Every message of tests/data/mime: parse, identity, part tree and bodies against the email
package and the corpus JSON, and rewriting with the checks of ``check_rewrite``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Final

import pytest

from mailbeacon.rewrite.mime import MimeError, MimeSource
from tests.rewrite.test_rewrite_mime_support import (
    DATA_DIR,
    MAX_PARTS,
    check_rewrite,
    check_source,
    corpus_key,
    corpus_messages,
    email_parse,
    email_tree,
    expected_structure,
    source_tree,
    track_html,
    track_text,
    with_long_line,
    with_non_ascii,
)

# Messages the MIME layer refuses, and why.
REFUSED: Final = {
    "python-test_email/msg_19.txt": "no header block",  # starts with body text
    "python-test_email/msg_35.txt": "no header/body separator",  # body right after the headers
    "python-test_email/msg_41.txt": "multipart/alternative without a boundary parameter",
}
# Boundary parameter lost: the walker takes the boundary from the body, CPython does not.
TREE_DIFFERS: Final = {"python-test_email/msg_25.txt"}

MESSAGES: Final = corpus_messages()


def _id(path: Path) -> str:
    return corpus_key(path)


@pytest.mark.parametrize("path", MESSAGES, ids=_id)
def test_parse_identity_and_tree(path: Path) -> None:
    raw = path.read_bytes()
    key = corpus_key(path)
    if key in REFUSED:
        with pytest.raises(MimeError) as caught:
            MimeSource.parse(raw, max_parts=MAX_PARTS)
        assert caught.value.reason == REFUSED[key]
        return
    source = MimeSource.parse(raw, max_parts=MAX_PARTS)
    check_source(raw, source, tree_known_to_differ=key in TREE_DIFFERS)
    expected = expected_structure().get(key)
    if expected is not None and key not in TREE_DIFFERS:
        assert source_tree(source) == [(part["depth"], part["content_type"]) for part in expected["parts"]]
        uniform = raw.count(b"\r\n") in (0, raw.count(b"\n"))
        if uniform:
            assert source.line_ending == (b"\r\n" if expected["line_endings"] == "crlf" else b"\n")
    if key in TREE_DIFFERS:
        assert len(email_tree(email_parse(raw))) == 1
        assert len(source.parts) > 1


@pytest.mark.parametrize("path", MESSAGES, ids=_id)
@pytest.mark.parametrize("variant", ["tracked", "long-line", "non-ascii"])
def test_rewrite(path: Path, variant: str) -> None:
    raw = path.read_bytes()
    if corpus_key(path) in REFUSED:
        return
    source = MimeSource.parse(raw, max_parts=MAX_PARTS)
    html = None if source.html is None else track_html(source.html.text)
    text = None if source.text is None else track_text(source.text.text)
    if variant == "long-line":
        html = None if html is None else with_long_line(html)
        text = None if text is None else with_long_line(text)
    elif variant == "non-ascii":
        html = None if html is None else with_non_ascii(html)
        text = None if text is None else with_non_ascii(text)
    check_rewrite(raw, html, text)
    check_rewrite(raw, html, None)
    check_rewrite(raw, None, text)


def test_every_message_is_parsed_or_refused() -> None:
    refused: dict[str, str] = {}
    for path in MESSAGES:
        try:
            MimeSource.parse(path.read_bytes(), max_parts=MAX_PARTS)
        except MimeError as error:
            refused[corpus_key(path)] = error.reason
    assert refused == REFUSED


def test_enclosed_endless_exceeds_the_default_part_limit() -> None:
    raw = (DATA_DIR / "flanker" / "enclosed-endless.eml").read_bytes()
    with pytest.raises(MimeError, match="more than 1000 MIME parts"):
        MimeSource.parse(raw)
    assert len(MimeSource.parse(raw, max_parts=MAX_PARTS).parts) == 3043


def test_torture_message_parses_and_renders_fast() -> None:
    raw = (DATA_DIR / "flanker" / "torture.eml").read_bytes()
    assert len(raw) > 1_800_000
    started = time.perf_counter()
    source = MimeSource.parse(raw)
    parsed = time.perf_counter()
    assert source.text is not None
    out = source.render(None, track_text(source.text.text))
    rendered = time.perf_counter()
    assert len(source.parts) == 52
    assert len(out) > len(raw)
    # Well under a second (typically a few milliseconds); generous for slow CI machines.
    assert parsed - started < 0.5
    assert rendered - parsed < 0.5

"""Shared checks for the MIME layer tests (this module holds helpers; its one test checks them).

``check_source`` compares a parsed message with Python's ``email`` package; ``check_rewrite``
renders new bodies and checks that only they (and a changed Content-Transfer-Encoding or
charset) differ from the input, byte for byte and as the ``email`` package decodes them.
"""

from __future__ import annotations

import difflib
import email
import email.policy
import hashlib
import json
import re
from dataclasses import dataclass
from email.message import EmailMessage, Message
from functools import cache
from pathlib import Path
from typing import Any, Final

from mailbeacon.rewrite.mime import BodyPart, MimeSource

DATA_DIR: Final = Path(__file__).resolve().parents[1] / "data" / "mime"
EXPECTED_FILE: Final = DATA_DIR / "expected" / "cpython311-email-structure.json"
MAX_PARTS: Final = 5000  # enough for flanker/enclosed-endless.eml (3,043 parts)

_URL: Final = re.compile(r"""https?://[^\s"'<>()]{1,2000}+""")
_LINE_BREAK: Final = re.compile(r"\r\n|\n")
_MIME_FIELD: Final = re.compile(rb"(?:content-transfer-encoding|content-type)[ \t]*+:", re.IGNORECASE)


def corpus_messages() -> list[Path]:
    return sorted(
        path
        for path in DATA_DIR.rglob("*")
        if path.is_file() and path.suffix in (".eml", ".txt") and "expected" not in path.parts
    )


@cache
def expected_structure() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(EXPECTED_FILE.read_text(encoding="utf-8"))
    return loaded


def corpus_key(path: Path) -> str:
    return path.relative_to(DATA_DIR).as_posix()


def email_parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def email_parse_fast(raw: bytes) -> Message:
    """The compat32 policy: the same part tree and payloads, without parsing every header."""
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def email_tree(message: Message) -> list[tuple[int, str]]:
    """(depth, content type) of every part in walk() order, as the corpus JSON lists them."""
    tree: list[tuple[int, str]] = []

    def visit(part: Message, depth: int) -> None:
        tree.append((depth, part.get_content_type()))
        if part.is_multipart():
            payload = part.get_payload()
            assert isinstance(payload, list)
            for child in payload:
                assert isinstance(child, Message)
                visit(child, depth + 1)

    visit(message, 0)
    return tree


def source_tree(source: MimeSource) -> list[tuple[int, str]]:
    return [(part.depth, part.content_type) for part in source.parts]


def part_index(source: MimeSource, body: BodyPart) -> int:
    return next(
        index
        for index, part in enumerate(source.parts)
        if not part.is_container and part.body_start == body.body_start
    )


def email_text(part: Message) -> str | None:
    """The part's text as the email package decodes it, or None when it finds defects."""
    try:
        octets = part.get_payload(decode=True)
        charset = part.get_content_charset() or "us-ascii"
        if part.defects or not isinstance(octets, bytes):
            return None
        return octets.decode(charset)
    except (LookupError, UnicodeDecodeError):
        return None


def identity(source: MimeSource) -> bytes:
    return source.render(
        None if source.html is None else source.html.text, None if source.text is None else source.text.text
    )


def check_source(raw: bytes, source: MimeSource, *, tree_known_to_differ: bool = False) -> None:
    """Identity render, part tree and decoded bodies against the email package."""
    assert identity(source) == raw
    assert source.render(None, None) == raw
    message = email_parse(raw)
    parts = list(message.walk())
    if not tree_known_to_differ:
        assert source_tree(source) == email_tree(message)
    else:
        return
    for body in (source.html, source.text):
        if body is None:
            continue
        assert raw[body.body_start : body.body_end] is not None
        part = parts[part_index(source, body)]
        assert part.get_content_type() == ("text/html" if body.kind == "html" else "text/plain")
        assert part.get_content_disposition() != "attachment"
        reference = email_text(part)
        if reference is not None:
            assert body.text == reference
            content = part.get_content()
            assert isinstance(content, str)
            assert body.text == content


def track_html(html: str) -> str:
    """Every http(s) link replaced by a long tracking URL, and an open pixel."""
    counter = iter(range(1_000_000))
    tracked = _URL.sub(lambda m: f"https://t.example/c/{next(counter)}/{'k' * 160}?s={len(m.group())}", html)
    pixel = '<img src="https://t.example/o/open?s=1" width="1" height="1" alt="">'
    at = tracked.lower().rfind("</body")
    return tracked + pixel if at < 0 else tracked[:at] + pixel + tracked[at:]


def track_text(text: str) -> str:
    newline = "\r\n" if "\r\n" in text else "\n"
    counter = iter(range(1_000_000))
    tracked = _URL.sub(lambda m: f"https://t.example/c/{next(counter)}/{'k' * 160}", text)
    return tracked + f"{newline}Unsubscribe: https://t.example/u/unsubscribe?s=1{newline}"


def with_long_line(text: str) -> str:
    """A line of 1,500 characters at the start: 7bit and 8bit bodies must switch to quoted-printable."""
    return "https://t.example/c/" + "L" * 1480 + " " + text


def with_non_ascii(text: str) -> str:
    """A character most charsets lack: the body falls back to UTF-8."""
    return text + "\u2713 \U0001f600"


@dataclass(frozen=True)
class _Changed:
    old: BodyPart
    new: BodyPart
    index: int


def _normalized(text: str, line_ending: bytes) -> str:
    return _LINE_BREAK.sub(line_ending.decode("ascii"), text)


def _first_difference(a: bytes, b: bytes) -> int:
    size = min(len(a), len(b))
    position = 0
    step = 4096
    while position < size and a[position : position + step] == b[position : position + step]:
        position += step
    while position < size and a[position] == b[position]:
        position += 1
    return position


def _assert_only_mime_fields_differ(before: bytes, after: bytes) -> None:
    """The stretch between two changed bodies is unchanged but for Content-Type or
    Content-Transfer-Encoding fields of the changed part (replaced or added)."""
    if before == after:
        return
    prefix = _first_difference(before, after)
    suffix = _first_difference(before[::-1], after[::-1])
    suffix = min(suffix, len(before) - prefix, len(after) - prefix)
    line_start = before.rfind(b"\n", 0, prefix) + 1
    regions = []
    for side in (before, after):
        stop = side.find(b"\n", len(side) - suffix)
        regions.append(side[line_start : len(side) if stop < 0 else stop + 1].splitlines())
    matcher = difflib.SequenceMatcher(None, regions[0], regions[1], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        for line in regions[0][i1:i2] + regions[1][j1:j2]:
            assert _MIME_FIELD.match(line) or line[:1] in (b" ", b"\t") or not line.strip(), (
                f"unexpected change {line[:200]!r}"
            )


def check_rewrite(raw: bytes, html: str | None, text: str | None) -> bytes:
    """Render new bodies and check everything the MIME layer promises about the result."""
    source = MimeSource.parse(raw, max_parts=MAX_PARTS)
    out = source.render(html, text)
    again = MimeSource.parse(out, max_parts=MAX_PARTS)
    assert source_tree(again) == source_tree(source)
    assert again.line_ending == source.line_ending
    changed: list[_Changed] = []
    for old, new_text, new in ((source.html, html, again.html), (source.text, text, again.text)):
        if old is None:
            assert new is None
            continue
        assert new is not None
        assert part_index(again, new) == part_index(source, old)
        if new_text is None or new_text == old.text:
            assert out[new.body_start : new.body_end] == raw[old.body_start : old.body_end]
            continue
        expected = (
            new_text
            if old.transfer_encoding in ("base64", "binary")
            else _normalized(new_text, source.line_ending)
        )
        assert new.text == expected
        body = out[new.body_start : new.body_end]
        if new.transfer_encoding != "binary":
            assert max(len(line.rstrip(b"\r")) for line in body.split(b"\n")) <= 998
        if new.transfer_encoding in ("base64", "quoted-printable"):
            assert max(len(line.rstrip(b"\r")) for line in body.split(b"\n")) <= 76
        if new.transfer_encoding != old.transfer_encoding:
            assert old.transfer_encoding in ("7bit", "8bit")
            assert new.transfer_encoding == "quoted-printable"
        changed.append(_Changed(old, new, part_index(source, old)))
    # Byte for byte the same outside the changed bodies (but for their MIME fields).
    changed.sort(key=lambda item: item.old.body_start)
    raw_at = out_at = 0
    for item in changed:
        _assert_only_mime_fields_differ(raw[raw_at : item.old.body_start], out[out_at : item.new.body_start])
        raw_at, out_at = item.old.body_end, item.new.body_end
    if raw_at == len(raw) and out[out_at:] == source.line_ending:
        pass  # a last body with no closing boundary after it gets a line break for the boundary
    else:
        assert raw[raw_at:] == out[out_at:]
    if source_tree(source) == email_tree(email_parse_fast(raw)):
        _check_with_email_package(raw, out, source, changed)
    return out


def _digest(part: Message) -> str | None:
    if part.is_multipart():
        return None
    payload = part.get_payload(decode=True)
    return hashlib.sha256(payload).hexdigest() if isinstance(payload, bytes) else None


def _other_fields(part: Message) -> list[tuple[str, Any]]:
    mime_fields = ("content-type", "content-transfer-encoding")
    return [(name, value) for name, value in part.raw_items() if name.lower() not in mime_fields]


def _check_with_email_package(raw: bytes, out: bytes, source: MimeSource, changed: list[_Changed]) -> None:
    before = list(email_parse_fast(raw).walk())
    after = list(email_parse_fast(out).walk())
    assert [part.get_content_type() for part in after] == [part.get_content_type() for part in before]
    by_index = {item.index: item for item in changed}
    for index, (old, new) in enumerate(zip(before, after, strict=True)):
        item = by_index.get(index)
        if item is None:
            assert list(new.raw_items()) == list(old.raw_items())
            assert _digest(new) == _digest(old)
            continue
        kept = [
            (k, v)
            for k, v in old.raw_items()
            if k.lower() not in ("content-type", "content-transfer-encoding")
        ]
        assert [
            (k, v)
            for k, v in new.raw_items()
            if k.lower() not in ("content-type", "content-transfer-encoding")
        ] == kept
        assert new.get_content_type() == old.get_content_type()
        if email_text(old) == item.old.text:
            assert email_text(new) == item.new.text


def test_helpers_find_the_corpus() -> None:
    messages = corpus_messages()
    assert len(messages) >= 95
    assert {corpus_key(path) for path in messages} >= set(expected_structure())

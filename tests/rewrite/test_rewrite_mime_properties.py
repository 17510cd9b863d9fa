"""Property tests over generated multipart messages: random nesting, transfer encodings,
charsets, line endings, preambles and epilogues, missing closing boundaries, forwarded
messages and attachments. Every message parses into the part tree the email package sees,
renders back byte for byte, and survives rewriting (``check_rewrite``)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Final

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbeacon.rewrite.mime import MimeSource
from tests.rewrite.test_rewrite_mime_support import (
    check_rewrite,
    check_source,
    email_parse,
    email_tree,
    part_index,
    source_tree,
    track_html,
    track_text,
)

# Characters per charset the generated text draws from (no "-": no line can look like a boundary).
_ASCII: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'\"<>/=&%#()[]_\t"
_EXTRA: Final = {
    "us-ascii": "",
    "utf-8": "éüßøæ€✓中文😀",
    "iso-8859-1": "éüßøæ¡¿",
    "windows-1252": "éüß€“”…",
    "koi8-r": "приветмир",
}


@dataclass
class _Builder:
    draw: st.DrawFn
    line_ending: str
    boundaries: int = 0

    def boundary(self) -> str:
        self.boundaries += 1
        prefix = self.draw(st.sampled_from(["=_", "----=_Part_", "", "b.", "'()+_,./:?"]))
        return f"{prefix}b{self.boundaries}x{self.draw(st.integers(0, 10**6))}"

    def text(self, charset: str, html: bool) -> str:
        alphabet = _ASCII + _EXTRA[charset]
        lines = []
        for _ in range(self.draw(st.integers(0, 6))):
            words = self.draw(st.lists(st.text(alphabet, min_size=1, max_size=12), max_size=8))
            if self.draw(st.booleans()):
                link = f"https://ex.example/p{self.draw(st.integers(0, 99))}"
                words.append(f'<a href="{link}">x</a>' if html else link)
            lines.append(" ".join(words))
        text = self.line_ending.join(lines)
        return text + self.line_ending if self.draw(st.booleans()) else text

    def leaf(self) -> str:
        kind = self.draw(st.sampled_from(["text/plain", "text/html", "text/html-attachment", "binary"]))
        if kind == "binary":
            data = self.draw(st.binary(max_size=300))
            return (
                "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n"
                'Content-Disposition: attachment; filename="blob.bin"\n\n' + base64.encodebytes(data).decode()
            )
        cte = self.draw(st.sampled_from(["7bit", "8bit", "quoted-printable", "base64", None]))
        charset = "us-ascii" if cte in ("7bit", None) else self.draw(st.sampled_from(sorted(_EXTRA)))
        content_type = kind.removesuffix("-attachment")
        text = self.text(charset, content_type == "text/html")
        headers = f"Content-Type: {content_type}"
        if charset != "us-ascii" or self.draw(st.booleans()):
            headers += f'; charset="{charset}"' if self.draw(st.booleans()) else f"; charset={charset}"
        headers += "\n"
        if cte is not None:
            headers += f"Content-Transfer-Encoding: {cte}\n"
        if kind.endswith("-attachment"):
            headers += 'Content-Disposition: attachment; filename="page.html"\n'
        octets = text.encode(charset)
        if cte == "base64":
            body = base64.encodebytes(octets).decode("ascii")
        elif cte == "quoted-printable":
            body = binascii.b2a_qp(octets, istext=True).decode("ascii")
        else:
            body = octets.decode("latin-1")  # bytes carried through the str as themselves
        return headers + "\n" + body

    def entity(self, depth: int) -> str:
        choice = self.draw(st.integers(0, 9)) if depth < 4 else 0
        if choice <= 4:
            return self.leaf()
        if choice == 5:
            inner = self.entity(depth + 1)
            return "Content-Type: message/rfc822\n\nFrom: x@ex.example\nSubject: forwarded\n" + inner
        subtype = self.draw(st.sampled_from(["mixed", "alternative", "related"]))
        boundary = self.boundary()
        token = boundary.isalnum() or boundary.startswith("b.")
        quoted = boundary if token and self.draw(st.booleans()) else f'"{boundary}"'
        out = f"Content-Type: multipart/{subtype};\n boundary={quoted}\n\n"
        if self.draw(st.booleans()):
            out += "This is a multi-part message in MIME format.\n"
        for _ in range(self.draw(st.integers(1, 3))):
            out += f"\n--{boundary}\n" + self.entity(depth + 1)
        if self.draw(st.integers(0, 4)) > 0:  # sometimes the closing boundary is missing
            out += f"\n--{boundary}--\n"
            if self.draw(st.booleans()):
                out += "epilogue text\n"
        return out


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    line_ending = draw(st.sampled_from(["\n", "\r\n"]))
    builder = _Builder(draw, line_ending)
    top = "From: Shop <shop@ex.example>\nTo: ann@ex.example\nSubject: generated\nMIME-Version: 1.0\n"
    top += builder.entity(0)
    # Generated text uses the message's line ending already; convert only bare "\n".
    raw = top.encode("latin-1")
    if line_ending == "\r\n":
        raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return raw


_SETTINGS: Final = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(messages())
def test_generated_messages_parse_like_the_email_package(raw: bytes) -> None:
    source = MimeSource.parse(raw)
    assert source_tree(source) == email_tree(email_parse(raw))
    check_source(raw, source)
    parts = list(email_parse(raw).walk())
    for body in (source.html, source.text):
        if body is not None:
            assert parts[part_index(source, body)].get_content() == body.text


@_SETTINGS
@given(messages(), st.sampled_from(["tracked", "long-line", "non-ascii", "html-only"]))
def test_generated_messages_rewrite(raw: bytes, variant: str) -> None:
    source = MimeSource.parse(raw)
    html = None if source.html is None else track_html(source.html.text)
    text = None if source.text is None else track_text(source.text.text)
    if variant == "long-line":
        html = None if html is None else "https://t.example/" + "L" * 1200 + " " + html
    elif variant == "non-ascii":
        text = None if text is None else text + "\u2713\U0001f600"
    elif variant == "html-only":
        text = None
    check_rewrite(raw, html, text)

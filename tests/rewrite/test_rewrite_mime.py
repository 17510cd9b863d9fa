"""The MIME layer on hand-written messages: which bodies are tracked, encodings, headers, limits."""

from __future__ import annotations

import base64
from typing import Final

import pytest

from mailbeacon.rewrite.mime import MimeError, MimeSource
from tests.rewrite.test_rewrite_mime_support import (
    DATA_DIR,
    check_rewrite,
    email_parse,
    track_html,
    track_text,
)

FIXTURES: Final = DATA_DIR / "mailbeacon"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def message(text: str, line_ending: str = "\n") -> bytes:
    return text.replace("\n", line_ending).encode("utf-8")


# -- which bodies are tracked ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "html", "text", "skipped"),
    [
        (
            "alternative-qp-latin1-crlf.eml",
            ("quoted-printable", "iso-8859-1"),
            ("quoted-printable", "iso-8859-1"),
            [],
        ),
        ("alternative-base64-utf8-lf.eml", ("base64", "utf-8"), ("base64", "utf-8"), []),
        ("related-inline-image-crlf.eml", ("7bit", "us-ascii"), ("7bit", "us-ascii"), []),
        ("mixed-pdf-attachment-lf.eml", ("8bit", "utf-8"), ("8bit", "utf-8"), []),
        (
            "apple-mail-two-html-crlf.eml",
            ("7bit", "us-ascii"),
            ("7bit", "us-ascii"),
            [("text/html", "another html part (only the first is tracked)")],
        ),
        (
            "forwarded-rfc822-lf.eml",
            ("7bit", "us-ascii"),
            None,
            [("text/plain", "inside message/rfc822"), ("text/html", "inside message/rfc822")],
        ),
        ("html-attachment-crlf.eml", None, ("7bit", "us-ascii"), [("text/html", "attachment")]),
        ("single-html-lf.eml", ("7bit", "utf-8"), None, []),
        ("single-text-8bit-crlf.eml", None, ("8bit", "windows-1252"), []),
    ],
)
def test_fixture_bodies(
    name: str, html: tuple[str, str] | None, text: tuple[str, str] | None, skipped: list[tuple[str, str]]
) -> None:
    raw = fixture(name)
    source = MimeSource.parse(raw)
    assert source.line_ending == (b"\r\n" if name.endswith("-crlf.eml") else b"\n")
    found_html = None if source.html is None else (source.html.transfer_encoding, source.html.charset)
    found_text = None if source.text is None else (source.text.transfer_encoding, source.text.charset)
    assert (found_html, found_text) == (html, text)
    assert [(part.content_type, part.reason) for part in source.skipped] == skipped
    check_rewrite(
        raw,
        None if source.html is None else track_html(source.html.text),
        None if source.text is None else track_text(source.text.text),
    )


def test_decoded_text_of_latin1_quoted_printable() -> None:
    source = MimeSource.parse(fixture("alternative-qp-latin1-crlf.eml"))
    assert source.text is not None
    assert source.text.text.startswith("Café crème brûlée: https://shop.example/offer?id=1&lang=fr\r\n")
    assert source.header("Subject") == "Café crème"


def test_forwarded_message_stays_byte_identical() -> None:
    raw = fixture("forwarded-rfc822-lf.eml")
    source = MimeSource.parse(raw)
    assert source.html is not None
    out = source.render(track_html(source.html.text), None)
    inner = raw.index(b"From: Bob")
    assert out.endswith(raw[inner:])
    assert b"https://other.example/page" in out


def test_text_html_attachment_is_left_alone() -> None:
    raw = fixture("html-attachment-crlf.eml")
    source = MimeSource.parse(raw)
    assert source.html is None
    assert source.text is not None
    out = source.render(None, track_text(source.text.text))
    assert out[out.index(b'name="report.html"') :] == raw[raw.index(b'name="report.html"') :]


def test_signed_multipart_is_not_rewritten() -> None:
    raw = message(
        "From: a@example.org\nSubject: signed\nMIME-Version: 1.0\n"
        'Content-Type: multipart/signed; protocol="application/pgp-signature"; boundary="s"\n\n'
        "--s\nContent-Type: text/plain\n\nhttps://example.org/\n--s\n"
        "Content-Type: application/pgp-signature\n\nsig\n--s--\n"
    )
    source = MimeSource.parse(raw)
    assert source.text is None
    assert source.skipped[0].reason == "inside multipart/signed (rewriting would break the signature)"


@pytest.mark.parametrize(
    ("part", "reason"),
    [
        (
            "Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n\n!!not base64!!\n",
            "base64",
        ),
        ("Content-Type: text/html; charset=x-unknown\n\n<p>x</p>\n", "charset x-unknown not decodable"),
        (
            "Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n<p>\udcff</p>\n",
            "utf-8",
        ),
        ("Content-Type: text/html\nContent-Transfer-Encoding: x-uuencode\n\nbegin 644 x\n", "x-uuencode"),
    ],
)
def test_undecodable_bodies_are_skipped(part: str, reason: str) -> None:
    raw = (
        "From: a@example.org\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=b\n\n"
        f"--b\n{part}--b\nContent-Type: text/html\n\n<p>second</p>\n--b--\n"
    ).encode("utf-8", "surrogateescape")
    source = MimeSource.parse(raw)
    assert source.skipped[0].content_type == "text/html"
    assert reason in source.skipped[0].reason
    assert source.html is not None
    assert source.html.text == "<p>second</p>"
    assert source.render(source.html.text + "!", None).endswith(b"<p>second</p>!\n--b--\n")


def test_undeclared_8bit_text_is_read_as_utf8_and_declared_when_it_changes() -> None:
    raw = message("From: a@example.org\nSubject: x\n\nGrüße https://example.org/\n")
    source = MimeSource.parse(raw)
    assert source.text is not None
    assert (source.text.charset, source.text.text) == ("utf-8", "Grüße https://example.org/\n")
    out = source.render(None, source.text.text + "✓\n")
    assert b"Content-Type: text/plain; charset=utf-8\n" in out
    assert b"Content-Transfer-Encoding: quoted-printable\n" in out
    assert email_parse(out).get_content() == "Grüße https://example.org/\n✓\n"


# -- encodings ------------------------------------------------------------------------------------


def test_long_line_switches_7bit_to_quoted_printable_and_adds_the_header() -> None:
    raw = fixture("single-html-lf.eml")
    source = MimeSource.parse(raw)
    assert source.html is not None
    long_html = source.html.text.replace("https://shop.example/a", "https://t.example/" + "x" * 1200)
    out = check_rewrite(raw, long_html, None)
    head, _, body = out.partition(b"\n\n")
    assert head.endswith(
        b"Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: quoted-printable"
    )
    assert max(len(line) for line in body.split(b"\n")) <= 76


def test_long_line_replaces_an_existing_transfer_encoding_field() -> None:
    raw = fixture("related-inline-image-crlf.eml")
    source = MimeSource.parse(raw)
    assert source.html is not None
    out = check_rewrite(raw, source.html.text.replace("News", "N" * 1000), None)
    assert out.count(b"Content-Transfer-Encoding: quoted-printable\r\n") == 1
    assert out.count(b"Content-Transfer-Encoding: 7bit\r\n") == 0
    assert out.count(b"\r\n") == out.count(b"\n")


def test_charset_falls_back_to_utf8() -> None:
    raw = fixture("alternative-qp-latin1-crlf.eml")
    source = MimeSource.parse(raw)
    assert source.html is not None
    out = check_rewrite(raw, source.html.text + "✓", None)
    assert b"Content-Type: text/html; charset=utf-8\r\n" in out
    assert b"Content-Type: text/plain; charset=iso-8859-1\r\n" in out


def test_base64_lines_and_trailing_whitespace() -> None:
    raw = fixture("alternative-base64-utf8-lf.eml")
    source = MimeSource.parse(raw)
    assert source.html is not None
    assert source.text is not None
    assert raw[source.text.body_end - 1 : source.text.body_end] == b"\n"  # a blank line before the boundary
    assert raw[source.html.body_end - 1 : source.html.body_end] == b"="  # the boundary follows at once
    new_html, new_text = source.html.text * 5, source.text.text * 5
    out = check_rewrite(raw, new_html, new_text)
    again = MimeSource.parse(out)
    assert again.html is not None
    assert again.text is not None
    html_body = out[again.html.body_start : again.html.body_end]
    text_body = out[again.text.body_start : again.text.body_end]
    assert not html_body.endswith(b"\n")
    assert text_body.endswith(b"\n")
    assert base64.b64decode(html_body) == new_html.encode("utf-8")
    assert {len(line) for line in html_body.split(b"\n")[:-1]} == {76}


def test_identity_and_unchanged_text_keep_every_byte() -> None:
    for path in sorted(FIXTURES.glob("*.eml")):
        raw = path.read_bytes()
        source = MimeSource.parse(raw)
        html = None if source.html is None else source.html.text
        text = None if source.text is None else source.text.text
        assert source.render(html, text) == raw
        assert source.render(html, None) == raw
        assert source.render(None, text) == raw


# -- headers --------------------------------------------------------------------------------------

HEADERS: Final = (
    "Received: from a\n\tby b; Mon, 1 Jan 2024 00:00:00 +0000\n"
    "X-Mailbeacon-Campaign: spring\n"
    "x-mailbeacon-secret: one\n  two\n"
    "Received: from c by d\n"
    "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= aus\n K=?utf-8?q?=C3=B6?=ln\n"
    "From: a@example.org\n"
    "X-Mailbeacon: keep\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "\nbody https://example.org/\n"
)


@pytest.mark.parametrize("line_ending", ["\n", "\r\n"])
def test_header_values(line_ending: str) -> None:
    source = MimeSource.parse(message(HEADERS, line_ending))
    assert source.header("subject") == "Grüße aus Köln"
    assert source.header("RECEIVED") == "from a\tby b; Mon, 1 Jan 2024 00:00:00 +0000"
    assert source.headers("received") == ["from a\tby b; Mon, 1 Jan 2024 00:00:00 +0000", "from c by d"]
    assert source.header("x-mailbeacon-secret") == "one  two"
    assert source.header("missing") is None
    assert source.headers("missing") == []


@pytest.mark.parametrize("line_ending", ["\n", "\r\n"])
def test_remove_headers(line_ending: str) -> None:
    raw = message(HEADERS, line_ending)
    source = MimeSource.parse(raw)
    out = source.render(None, None, remove_headers=["X-MAILBEACON-*", "received"])
    expected = HEADERS.replace("Received: from a\n\tby b; Mon, 1 Jan 2024 00:00:00 +0000\n", "")
    expected = expected.replace("X-Mailbeacon-Campaign: spring\n", "").replace(
        "x-mailbeacon-secret: one\n  two\n", ""
    )
    expected = expected.replace("Received: from c by d\n", "")
    assert out == message(expected, line_ending)
    assert source.render(None, None, remove_headers=["X-Mailbeacon"]) == raw.replace(
        message("X-Mailbeacon: keep\n", line_ending), b""
    )
    with pytest.raises(ValueError, match="Content-Type"):
        source.render(None, None, remove_headers=["content-*"])


@pytest.mark.parametrize("line_ending", ["\n", "\r\n"])
def test_add_headers(line_ending: str) -> None:
    raw = message(HEADERS, line_ending)
    source = MimeSource.parse(raw)
    long_value = " ".join(f"word{index}" for index in range(30))
    url = "<https://t.example/u/" + "x" * 120 + ">"
    added = [("X-First", "1"), ("X-Long", long_value), ("List-Unsubscribe", url), ("X-Name", "Jürgen Groß")]
    out = source.render(None, None, add_headers=added)
    assert out.endswith(raw)
    head = out[: len(out) - len(raw)]
    newline = line_ending.encode()
    assert head.startswith(b"X-First: 1" + newline + b"X-Long: word0 word1")
    assert head.endswith(newline)
    assert head.isascii()
    lines = head.split(newline)[:-1]
    assert all(len(line) <= 78 for line in lines if not line.startswith(b"List-Unsubscribe"))
    assert b"\n" not in head.replace(newline, b"")
    again = MimeSource.parse(out)
    assert again.header("x-long") == long_value
    assert again.header("list-unsubscribe") == url
    assert again.header("x-name") == "Jürgen Groß"
    assert again.header("x-first") == "1"


def test_add_headers_go_after_an_envelope_line() -> None:
    raw = message("From someone Mon Jan  1 00:00:00 2024\nFrom: a@example.org\n\nbody\n")
    out = MimeSource.parse(raw).render(None, None, add_headers=[("X-A", "b")])
    assert out == message("From someone Mon Jan  1 00:00:00 2024\nX-A: b\nFrom: a@example.org\n\nbody\n")


@pytest.mark.parametrize(("name", "value"), [("Bad Name", "x"), ("X-A", "line\r\nInjected: yes"), ("", "x")])
def test_add_headers_refuses_malformed_fields(name: str, value: str) -> None:
    source = MimeSource.parse(message(HEADERS))
    with pytest.raises(ValueError, match="header field"):
        source.render(None, None, add_headers=[(name, value)])


# -- limits and broken structure ------------------------------------------------------------------


def _nested(levels: int) -> bytes:
    head = "".join(f'Content-Type: multipart/mixed; boundary="b{n}"\n\n--b{n}\n' for n in range(levels))
    tail = "".join(f"\n--b{n}--\n" for n in reversed(range(levels)))
    return message(
        "From: a@example.org\n" + head + "Content-Type: text/plain\n\nhello https://example.org/" + tail
    )


def test_nesting_limit() -> None:
    assert MimeSource.parse(_nested(50)).text is not None
    with pytest.raises(MimeError) as caught:
        MimeSource.parse(_nested(51))
    assert caught.value.reason == "nesting deeper than 50 levels"
    with pytest.raises(MimeError, match="nesting deeper than 5 levels"):
        MimeSource.parse(_nested(6), max_depth=5)


def test_part_limit() -> None:
    parts = "".join("--b\nContent-Type: text/plain\n\nx\n" for _ in range(1000))
    raw = message(f"From: a@example.org\nContent-Type: multipart/mixed; boundary=b\n\n{parts}--b--\n")
    with pytest.raises(MimeError) as caught:
        MimeSource.parse(raw)
    assert caught.value.reason == "more than 1000 MIME parts"
    assert len(MimeSource.parse(raw, max_parts=1001).parts) == 1001


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty message"),
        (b"\r\nbody\r\n", "no header block"),
        (b"Just some text\nand more\n", "no header block"),
        (b"From: a@example.org\nSubject: x\nno separator here\n", "no header/body separator"),
        (b"From: a@\0\0\0example.org\n\nbody\n", "NUL byte in the header block"),
        (
            b"From: a@example.org\nContent-Type: multipart/mixed\n\nno boundary anywhere\n",
            "multipart/mixed without a boundary parameter",
        ),
    ],
)
def test_refused_messages(raw: bytes, reason: str) -> None:
    with pytest.raises(MimeError) as caught:
        MimeSource.parse(raw)
    assert caught.value.reason == reason
    assert str(caught.value) == reason


def test_headers_only_message_and_empty_multipart_are_accepted() -> None:
    assert MimeSource.parse(b"From: a@example.org\r\nSubject: x\r\n").text is not None
    empty = MimeSource.parse(b"From: a@example.org\nContent-Type: multipart/mixed\n\n\n")
    assert (empty.html, empty.text) == (None, None)


def test_missing_closing_boundary_runs_to_the_end() -> None:
    raw = message(
        "From: a@example.org\nContent-Type: multipart/alternative; boundary=b\n\n"
        "--b\nContent-Type: text/plain\n\nhttps://example.org/\n"
        "--b\nContent-Type: text/html\n\n<a href='https://example.org/'>x</a>\n"
    )
    source = MimeSource.parse(raw)
    assert source.html is not None
    assert source.html.text == "<a href='https://example.org/'>x</a>"
    assert "closing boundary missing" in source.parts[0].defects
    check_rewrite(raw, track_html(source.html.text), None)


def test_boundary_taken_from_the_body_when_the_parameter_is_missing() -> None:
    raw = message(
        "From: a@example.org\nContent-Type: multipart/alternative\n\npreamble\n"
        "--xyz\nContent-Type: text/html\n\n<p>https://example.org/</p>\n--xyz--\n"
    )
    source = MimeSource.parse(raw)
    assert source.html is not None
    assert source.html.text == "<p>https://example.org/</p>"

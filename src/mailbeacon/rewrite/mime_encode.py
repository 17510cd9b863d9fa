"""Decoding and re-encoding MIME bodies and header fields, byte-exact where nothing changes."""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from dataclasses import dataclass
from email.header import Header
from email.headerregistry import HeaderRegistry
from typing import Final

# The transfer encodings a body can be decoded from and written back in.
TRANSFER_ENCODINGS: Final = frozenset({"7bit", "8bit", "binary", "quoted-printable", "base64"})
MAX_LINE: Final = 998  # octets per line, without the line break (RFC 5322)
_BASE64_LINE: Final = 76
_FOLD_AT: Final = 78

# Charset names seen in mail that Python's codec registry does not know (None: not decodable).
_CHARSET_ALIASES: Final[dict[str, str | None]] = {
    "x-unknown": None,
    "unknown": None,
    "unknown-8bit": None,
    "x-user-defined": None,
    "default": None,
    "x-sjis": "shift_jis",
    "unicode-1-1-utf-7": "utf-7",
    "x-mac-roman": "mac_roman",
}

_BASE64_SPACE: Final = re.compile(rb"[\t\n\r ]++")
_FIELD_NAME: Final = re.compile(r"[\x21-\x39\x3b-\x7e]{1,200}")
_UNFOLD: Final = re.compile(r"\r?\n(?=[ \t])")
# A charset parameter, plain or RFC 2231 ("charset*=utf-8''", "charset*0*=..."), with its ";".
_CHARSET_PARAM: Final = re.compile(
    rb"""(;[ \t\r\n]*+)charset(?:\*[0-9]{1,3}+)?+\*?+[ \t]*+=[ \t]*+(?:"[^"\r\n]{0,200}+"|[^;\s"]{1,200}+)""",
    re.IGNORECASE,
)

# Every header read as unstructured text: decoded (RFC 2047) but never reformatted.
_UNSTRUCTURED: Final = HeaderRegistry(use_default_map=False)


class BodyDecodeError(ValueError):
    """A body that is not decodable as declared; ``args[0]`` says why."""


def codec_for(charset: str) -> str | None:
    """The Python text codec for a MIME charset name, or None."""
    name = charset.strip().lower()
    name = _CHARSET_ALIASES.get(name, name) or ""
    if not name:
        return None
    try:
        b"".decode(name)  # LookupError for unknown names and for bytes-to-bytes codecs
    except LookupError:
        return None
    return name


@dataclass(frozen=True)
class Decoded:
    text: str
    charset: str  # the codec the text was decoded with (and is encoded with again)


def decode_body(data: bytes, transfer_encoding: str, charset: str | None) -> Decoded:
    if transfer_encoding == "base64":
        try:
            octets = base64.b64decode(_BASE64_SPACE.sub(b"", data), validate=True)
        except binascii.Error as error:
            raise BodyDecodeError("base64 body not decodable") from error
    elif transfer_encoding == "quoted-printable":
        octets = binascii.a2b_qp(data)
    elif transfer_encoding in TRANSFER_ENCODINGS:
        octets = data
    else:
        raise BodyDecodeError(f"transfer encoding {transfer_encoding} not supported")
    declared = "us-ascii" if charset is None else charset
    codec = codec_for(declared)
    if codec is None:
        raise BodyDecodeError(f"charset {declared} not decodable")
    try:
        return Decoded(octets.decode(codec), codec)
    except UnicodeDecodeError:
        pass
    if charset is None or codecs.lookup(codec).name == "ascii":
        # Undeclared 8-bit text is UTF-8 more often than anything else.
        try:
            return Decoded(octets.decode("utf-8"), "utf-8")
        except UnicodeDecodeError:
            pass
    raise BodyDecodeError(f"bytes invalid in charset {declared}")


@dataclass(frozen=True)
class Encoded:
    body: bytes
    transfer_encoding: str  # differs from the part's when the body had to switch to quoted-printable
    charset: str  # differs from the part's when the text did not fit it (then utf-8)


def encode_body(
    text: str, *, transfer_encoding: str, charset: str, original: bytes, line_ending: bytes
) -> Encoded:
    """``text`` written in the part's transfer encoding and charset.

    Line breaks in the text are written as ``line_ending`` (except in base64 and binary bodies,
    which carry the text's own bytes); whitespace that ended the original base64 body ends the
    new one too.
    """
    try:
        text.encode(charset)
    except UnicodeEncodeError:
        charset = "utf-8"
    if transfer_encoding in ("base64", "binary"):
        octets = text.encode(charset)
        if transfer_encoding == "binary":
            return Encoded(octets, transfer_encoding, charset)
        lines = base64.encodebytes(octets).replace(b"\n", line_ending).rstrip(b"\r\n")
        trailer = original[len(original.rstrip(b"\t\n\r ")) :]
        return Encoded(lines + trailer, transfer_encoding, charset)
    newline = line_ending.decode("ascii")
    # Every CRLF or LF becomes ``newline``; str.replace costs a third of a regex on a 20 KB body.
    octets = text.replace("\r\n", "\n").replace("\n", newline).encode(charset)
    if transfer_encoding in ("7bit", "8bit"):
        too_long = any(len(line) > MAX_LINE for line in octets.split(line_ending))
        if not too_long and (transfer_encoding == "8bit" or octets.isascii()):
            return Encoded(octets, transfer_encoding, charset)
    return Encoded(quoted_printable(octets, line_ending), "quoted-printable", charset)


def quoted_printable(octets: bytes, line_ending: bytes) -> bytes:
    """Quoted-printable with lines of at most 76 characters; ``line_ending`` is the hard break."""
    return line_ending.join(
        binascii.b2a_qp(line, quotetabs=False, istext=False, header=False).replace(b"\n", line_ending)
        for line in octets.split(line_ending)
    )


def with_charset(field: bytes, charset: str, line_ending: bytes) -> bytes:
    """A Content-Type field (name to line break) with its charset parameter set to ``charset``."""
    value = b"charset=" + charset.encode("ascii")
    replaced = 0

    def replace(match: re.Match[bytes]) -> bytes:
        nonlocal replaced
        replaced += 1
        return match.group(1) + value if replaced == 1 else b""

    edited = _CHARSET_PARAM.sub(replace, field)
    if replaced:
        return edited
    return field.rstrip(b"\r\n") + b"; " + value + line_ending


def decode_header_value(raw: bytes) -> str:
    """A header field's value as a reader sees it: unfolded, encoded words decoded."""
    try:
        value = raw.decode("utf-8")
    except UnicodeDecodeError:
        value = raw.decode("latin-1")
    value = _UNFOLD.sub("", value).strip("\r\n")
    return str(_UNSTRUCTURED("x-unstructured", value))


def fold_header(name: str, value: str, line_ending: bytes) -> bytes:
    """``Name: value`` folded at spaces to 78 characters (long words are left whole), with
    RFC 2047 encoded words when the value is not ASCII."""
    if _FIELD_NAME.fullmatch(name) is None:
        raise ValueError(f"invalid header field name {name!r}")
    if "\r" in value or "\n" in value:
        raise ValueError(f"line break in the value of header field {name}")
    newline = line_ending.decode("ascii")
    if not value.isascii():
        encoded = Header(value, charset="utf-8", header_name=name, maxlinelen=_FOLD_AT).encode(
            linesep=newline
        )
        return f"{name}: {encoded}{newline}".encode("ascii")
    lines: list[str] = []
    first = current = f"{name}:"
    for word in value.split(" "):
        if len(current) + 1 + len(word) > _FOLD_AT and current.strip() and current != first:
            lines.append(current)
            current = ""
        current = f"{current} {word}"
    lines.append(current)
    return (newline.join(lines) + newline).encode("ascii")

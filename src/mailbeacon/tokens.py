"""Signed tracking tokens.

A token is ``base64url(payload || tag)`` without padding, where

    payload = version(4 bits) kind(4 bits) | varint key_id | varint recipient_id [| varint link_position]
    tag     = HMAC-SHA256(key[key_id], payload)[:12]      (96 bits)

It names the recipient copy by its database id only: no address or other personal data travels in a
URL. Any process holding the keys verifies a token without reading the database, and old tokens keep
working after a rotation for as long as their key is kept.
"""

from __future__ import annotations

import binascii
import enum
import hmac
from collections.abc import Mapping, Sequence
from hashlib import sha256
from typing import Any, NamedTuple

VERSION = 1
TAG_BYTES = 12
MAX_TOKEN_CHARS = 64  # a version-1 token is at most ~45 characters; anything longer is rejected unread


class TokenKind(enum.IntEnum):
    OPEN = 0
    CLICK = 1
    UNSUBSCRIBE = 2
    RETURN_PATH = 3  # the VERP return path of a sent copy: bounces come back to it


_KINDS = tuple(TokenKind)


class Token(NamedTuple):
    kind: TokenKind
    recipient_id: int
    link_position: int  # the link's position for CLICK, 0 otherwise
    key_id: int


def _put_varint(out: bytearray, value: int) -> None:
    if value < 0:
        raise ValueError("token fields are non-negative")
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _get_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and shift:
                raise ValueError("over-long varint")  # only the shortest encoding is canonical
            return value, pos
        shift += 7


def _payload(kind: TokenKind, key_id: int, recipient_id: int, link_position: int) -> bytes:
    out = bytearray([(VERSION << 4) | int(kind)])
    _put_varint(out, key_id)
    _put_varint(out, recipient_id)
    if kind is TokenKind.CLICK:
        _put_varint(out, link_position)
    return bytes(out)


_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
# Varints of the first link positions, ready to append (most messages have fewer than 128 links).
_SMALL_VARINTS = tuple(bytes([n]) for n in range(128))


def _b64encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode()


class _HmacSha256:
    """HMAC-SHA256 (RFC 2104) with the key's inner and outer pads hashed once, so that each tag
    costs two hash copies instead of a fresh key setup. Equal to hmac.digest(key, msg, sha256)."""

    __slots__ = ("inner", "outer")

    def __init__(self, key: bytes, inner: Any = None, outer: Any = None) -> None:
        if inner is not None:
            self.inner, self.outer = inner, outer
            return
        if len(key) > 64:
            key = sha256(key).digest()
        key = key.ljust(64, b"\0")
        self.inner = sha256(key.translate(_IPAD))
        self.outer = sha256(key.translate(_OPAD))

    def absorbed(self, prefix: bytes) -> _HmacSha256:
        inner = self.inner.copy()
        inner.update(prefix)
        return _HmacSha256(b"", inner, self.outer)

    def tag(self, message: bytes) -> bytes:
        inner = self.inner.copy()
        inner.update(message)
        outer = self.outer.copy()
        outer.update(inner.digest())
        tag: bytes = outer.digest()[:TAG_BYTES]
        return tag


_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))


def _varint(value: int) -> bytes:
    if 0 <= value < 128:
        return _SMALL_VARINTS[value]
    out = bytearray()
    _put_varint(out, value)
    return bytes(out)


def _b64decode(token: str) -> bytes:
    padded = token.encode("ascii").translate(_FROM_URLSAFE) + b"=" * (-len(token) % 4)
    return binascii.a2b_base64(padded, strict_mode=True)


class TokenSigner:
    """Signs with the current key; verifies with any key it holds."""

    def __init__(self, keys: Mapping[int, bytes], current_key_id: int | None = None) -> None:
        if not keys:
            raise ValueError("at least one signing key is needed")
        for key_id, secret in keys.items():
            if key_id < 0 or len(secret) < 32:
                raise ValueError(f"signing key {key_id} must be at least 32 bytes")
        self._keys = dict(keys)
        self.current_key_id = max(keys) if current_key_id is None else current_key_id
        if self.current_key_id not in self._keys:
            raise ValueError(f"current signing key {self.current_key_id} is not among the keys")
        # HMAC states with the key already absorbed: each token then costs a copy, not a key setup.
        self._macs = {key_id: _HmacSha256(secret) for key_id, secret in self._keys.items()}
        self._current_mac = self._macs[self.current_key_id]

    def knows(self, key_id: int) -> bool:
        return key_id in self._keys

    def sign(self, kind: TokenKind, recipient_id: int, link_position: int = 0) -> str:
        payload = _payload(kind, self.current_key_id, recipient_id, link_position)
        return _b64encode(payload + self._current_mac.tag(payload))

    def sign_clicks(self, recipient_id: int, positions: Sequence[int]) -> list[str]:
        """The click tokens of one recipient's links, as sign(CLICK, ...) makes them, but sharing the
        work: the HMAC absorbs the common prefix once, each link adds only its position."""
        prefix = _payload(TokenKind.CLICK, self.current_key_id, recipient_id, 0)[:-1]
        absorbed = self._current_mac.absorbed(prefix)
        inner_base, outer_base = absorbed.inner, absorbed.outer
        small, encode, urlsafe = _SMALL_VARINTS, binascii.b2a_base64, _TO_URLSAFE
        tokens = []
        # The body of tag() and _b64encode() inlined: this loop runs once per link per recipient.
        for position in positions:
            suffix = small[position] if 0 <= position < 128 else _varint(position)
            inner = inner_base.copy()
            inner.update(suffix)
            outer = outer_base.copy()
            outer.update(inner.digest())
            raw = prefix + suffix + outer.digest()[:TAG_BYTES]
            tokens.append(encode(raw, newline=False).translate(urlsafe).rstrip(b"=").decode())
        return tokens

    def verify(self, token: str) -> Token | None:
        """The token's fields; None if it is malformed, truncated, tampered or signed by an unknown key."""
        parsed = self.parse_unverified(token)
        if parsed is None:
            return None
        token_fields, payload, tag = parsed
        base = self._macs.get(token_fields.key_id)
        if base is None:
            return None
        if not hmac.compare_digest(base.tag(payload), tag):
            return None
        return token_fields

    @staticmethod
    def parse_unverified(token: str) -> tuple[Token, bytes, bytes] | None:
        """Split a token into its (not yet trusted) fields, the signed payload and the tag."""
        if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
            return None
        try:
            raw = _b64decode(token)
        except (binascii.Error, ValueError):
            return None
        if len(raw) <= TAG_BYTES + 2:
            return None
        payload, tag = raw[:-TAG_BYTES], raw[-TAG_BYTES:]
        version, kind_value = payload[0] >> 4, payload[0] & 0x0F
        if version != VERSION or kind_value >= len(_KINDS):
            return None
        kind = _KINDS[kind_value]
        try:
            key_id, pos = _get_varint(payload, 1)
            recipient_id, pos = _get_varint(payload, pos)
            link_position = 0
            if kind is TokenKind.CLICK:
                link_position, pos = _get_varint(payload, pos)
        except ValueError:
            return None
        # Only the canonical encoding is accepted, so one token has exactly one spelling.
        if pos != len(payload) or _b64encode(raw) != token:
            return None
        return Token(kind, recipient_id, link_position, key_id), payload, tag

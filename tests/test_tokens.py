"""Signed tracking tokens: compact, URL-safe, tamper-evident, rotatable."""

from __future__ import annotations

import re
import secrets

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailbeacon.tokens import TAG_BYTES, TokenKind, TokenSigner, _b64decode, _b64encode

KEY_1 = secrets.token_bytes(32)
KEY_2 = secrets.token_bytes(32)


def test_round_trip_and_shape() -> None:
    signer = TokenSigner({1: KEY_1})
    token = signer.sign(TokenKind.CLICK, 123_456_789, 17)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token), "URL-safe, no padding"
    assert len(token) <= 32
    found = signer.verify(token)
    assert found is not None
    assert (found.kind, found.recipient_id, found.link_position, found.key_id) == (
        TokenKind.CLICK,
        123_456_789,
        17,
        1,
    )


def test_tag_is_at_least_96_bits() -> None:
    assert TAG_BYTES * 8 >= 96


@given(
    kind=st.sampled_from(list(TokenKind)),
    recipient=st.integers(min_value=0, max_value=2**63 - 1),
    link=st.integers(min_value=0, max_value=10_000),
)
def test_every_token_verifies(kind: TokenKind, recipient: int, link: int) -> None:
    signer = TokenSigner({7: KEY_1})
    found = signer.verify(signer.sign(kind, recipient, link))
    assert found is not None
    assert found.recipient_id == recipient
    assert found.link_position == (link if kind is TokenKind.CLICK else 0)


@given(data=st.data())
def test_any_single_change_is_rejected(data: st.DataObject) -> None:
    signer = TokenSigner({1: KEY_1})
    token = signer.sign(TokenKind.CLICK, data.draw(st.integers(0, 10**12)), data.draw(st.integers(0, 500)))
    raw = bytearray(_b64decode(token))
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= data.draw(st.integers(1, 255))
    assert signer.verify(_b64encode(bytes(raw))) is None


@pytest.mark.parametrize("cut", [1, 2, 5, 10, 20])
def test_truncated_tokens_are_rejected(cut: int) -> None:
    signer = TokenSigner({1: KEY_1})
    token = signer.sign(TokenKind.OPEN, 42)
    assert signer.verify(token[:-cut]) is None


@pytest.mark.parametrize(
    "garbage",
    ["", "a", "====", "!!!!", "EAEBKpg3PQZ-rXy0Td4_\n", "é" * 20, "A" * 65, "AAAA" * 8, "%00%00"],
)
def test_garbage_is_rejected(garbage: str) -> None:
    assert TokenSigner({1: KEY_1}).verify(garbage) is None


def test_a_token_signed_with_another_key_is_rejected() -> None:
    foreign = TokenSigner({1: KEY_2}).sign(TokenKind.OPEN, 42)
    assert TokenSigner({1: KEY_1}).verify(foreign) is None


def test_rotation_keeps_old_tokens_working() -> None:
    old = TokenSigner({1: KEY_1})
    old_token = old.sign(TokenKind.CLICK, 5, 1)
    rotated = TokenSigner({1: KEY_1, 2: KEY_2})
    assert rotated.current_key_id == 2
    new_token = rotated.sign(TokenKind.CLICK, 5, 1)
    assert new_token != old_token
    assert rotated.verify(old_token) is not None
    assert rotated.verify(new_token) is not None
    assert old.verify(new_token) is None, "a process without key 2 cannot verify until it reloads"
    retired = TokenSigner({2: KEY_2})
    assert retired.verify(old_token) is None, "retiring a key ends its links"


@pytest.mark.parametrize("recipient", [42, 300, 70_000, 10**9])
def test_only_the_canonical_spelling_is_accepted(recipient: int) -> None:
    signer = TokenSigner({1: KEY_1})
    token = signer.sign(TokenKind.OPEN, recipient)
    raw = _b64decode(token)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    spare_bits = {1: 4, 2: 2}.get(len(raw) % 3, 0)
    if spare_bits == 0:
        # No spare bits in the last character: padding is the only other spelling.
        assert signer.verify(token + "=") is None
        assert signer.verify(token + "==") is None
        return
    # The last character's low bits carry nothing: flipping one decodes to the same bytes.
    index = alphabet.index(token[-1]) ^ 1
    variant = token[:-1] + alphabet[index]
    assert _b64decode(variant) == raw
    assert signer.verify(variant) is None


def test_tokens_of_every_length_class_are_tested() -> None:
    signer = TokenSigner({1: KEY_1})
    lengths = {len(_b64decode(signer.sign(TokenKind.OPEN, r))) % 3 for r in (42, 300, 70_000, 10**9)}
    assert lengths == {0, 1, 2}


def test_no_personal_data_in_the_token() -> None:
    signer = TokenSigner({1: KEY_1})
    raw = _b64decode(signer.sign(TokenKind.UNSUBSCRIBE, 99))
    # version 1 and kind 2, key id 1, recipient copy 99: nothing else is carried besides the tag
    assert raw[:-TAG_BYTES] == bytes([0x12, 0x01, 99])


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        TokenSigner({1: b"short"})


@given(
    recipient=st.integers(min_value=0, max_value=2**63 - 1),
    positions=st.lists(st.integers(min_value=0, max_value=100_000), max_size=40),
)
def test_batch_signing_equals_signing_one_by_one(recipient: int, positions: list[int]) -> None:
    signer = TokenSigner({3: KEY_1})
    batch = signer.sign_clicks(recipient, positions)
    assert batch == [signer.sign(TokenKind.CLICK, recipient, p) for p in positions]
    assert all(signer.verify(t) is not None for t in batch)


@pytest.mark.parametrize("key", [b"k" * 32, b"k" * 64, b"k" * 65, bytes(range(100))])
def test_tags_are_standard_hmac_sha256(key: bytes) -> None:
    import hashlib
    import hmac

    signer = TokenSigner({1: key})
    raw = _b64decode(signer.sign(TokenKind.OPEN, 12345))
    assert raw[-TAG_BYTES:] == hmac.digest(key, raw[:-TAG_BYTES], hashlib.sha256)[:TAG_BYTES]

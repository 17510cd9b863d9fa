"""Opaque page cursors: a letter naming the list and the last id seen, base64url-encoded."""

from __future__ import annotations

import base64
import binascii

from fastapi import HTTPException

from mailbeacon.api.schemas import MAX_ID


def encode_cursor(kind: str, last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}{last_id}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        value = int(raw[len(kind) :])
        if not raw.startswith(kind) or not 0 <= value <= MAX_ID:
            raise ValueError(cursor)
        return value
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise HTTPException(422, "cursor: not a cursor returned by this API") from None

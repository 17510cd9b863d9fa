"""Per-message options a sender sets with X-Mailbeacon-* headers; they never leave mailbeacon."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

OPTION_HEADER_PREFIX = "X-Mailbeacon-"
TRACK_HEADER = "X-Mailbeacon-Track"
CAMPAIGN_HEADER = "X-Mailbeacon-Campaign"
TAGS_HEADER = "X-Mailbeacon-Tags"
METADATA_HEADER = "X-Mailbeacon-Metadata"
KNOWN_HEADERS = frozenset(h.lower() for h in (TRACK_HEADER, CAMPAIGN_HEADER, TAGS_HEADER, METADATA_HEADER))

_TRACK_WORDS = {
    "opens": "opens",
    "clicks": "clicks",
    "unsubscribes": "unsubscribes",
    "unsubscribe": "unsubscribes",
}
MAX_CAMPAIGN = 200
MAX_TAGS = 20
MAX_TAG = 100
MAX_METADATA_BYTES = 10_000


class OptionError(ValueError):
    """An option header that cannot be honoured; the message is refused rather than sent untracked."""


@dataclass(frozen=True)
class MessageOptions:
    track_opens: bool | None = None  # None: the credential's or the account's default
    track_clicks: bool | None = None
    track_unsubscribes: bool | None = None
    campaign: str | None = None
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] | None = None


def parse_options(headers: list[tuple[str, str]]) -> MessageOptions:
    """Read the X-Mailbeacon-* headers (name, unfolded value) of a message.

    ``X-Mailbeacon-Track`` lists what to track (``opens``, ``clicks``, ``unsubscribes``), or ``all``
    or ``none``: whatever it names is on and the rest off. Unknown X-Mailbeacon-* headers are refused
    so that a typo never silently sends mail tracked differently than asked.
    """
    by_name: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        if not key.startswith(OPTION_HEADER_PREFIX.lower()):
            continue
        if key not in KNOWN_HEADERS:
            known = ", ".join(
                sorted(h for h in (TRACK_HEADER, CAMPAIGN_HEADER, TAGS_HEADER, METADATA_HEADER))
            )
            raise OptionError(f"unknown header {name} (known: {known})")
        if key in by_name:
            raise OptionError(f"{name} is given twice")
        by_name[key] = value.strip()
    track = _track(by_name.get(TRACK_HEADER.lower()))
    return MessageOptions(
        track_opens=None if track is None else "opens" in track,
        track_clicks=None if track is None else "clicks" in track,
        track_unsubscribes=None if track is None else "unsubscribes" in track,
        campaign=_campaign(by_name.get(CAMPAIGN_HEADER.lower())),
        tags=_tags(by_name.get(TAGS_HEADER.lower())),
        metadata=_metadata(by_name.get(METADATA_HEADER.lower())),
    )


def _track(value: str | None) -> frozenset[str] | None:
    if value is None:
        return None
    words = [w.strip().lower() for w in value.replace(";", ",").split(",") if w.strip()]
    if words == ["none"]:
        return frozenset()
    if words == ["all"]:
        return frozenset(_TRACK_WORDS.values())
    unknown = [w for w in words if w not in _TRACK_WORDS]
    if unknown or not words:
        raise OptionError(
            f"{TRACK_HEADER} takes opens, clicks, unsubscribes (comma-separated), all or none; "
            f"not {', '.join(unknown) or 'an empty value'}"
        )
    return frozenset(_TRACK_WORDS[w] for w in words)


def _campaign(value: str | None) -> str | None:
    if value is None:
        return None
    if not value or len(value) > MAX_CAMPAIGN:
        raise OptionError(f"{CAMPAIGN_HEADER} must be 1 to {MAX_CAMPAIGN} characters")
    return value


def _tags(value: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    tags = tuple(dict.fromkeys(t.strip() for t in value.split(",") if t.strip()))
    if len(tags) > MAX_TAGS or any(len(t) > MAX_TAG for t in tags):
        raise OptionError(f"{TAGS_HEADER}: at most {MAX_TAGS} tags of at most {MAX_TAG} characters")
    return tags


def _metadata(value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if len(value.encode()) > MAX_METADATA_BYTES:
        raise OptionError(f"{METADATA_HEADER} is longer than {MAX_METADATA_BYTES} bytes")
    try:
        parsed = json.loads(value, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise OptionError(f"{METADATA_HEADER} is not valid JSON ({exc})") from None
    if not isinstance(parsed, dict):
        raise OptionError(f"{METADATA_HEADER} must be a JSON object")
    return parsed


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")

"""A message submitted by SMTP, from raw bytes to stored, tracked and queued copies."""

from __future__ import annotations

import email.policy
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.utils import format_datetime, getaddresses

from mailbeacon.intake.options import MessageOptions, parse_options
from mailbeacon.messages.draft import Address
from mailbeacon.messages.service import (
    NewMessage,
    PreparedMessage,
    policy_for,
    prepare_message,
)
from mailbeacon.messages.threads import new_message_id
from mailbeacon.rewrite.mime import MimeSource
from mailbeacon.store.accounts import Account
from mailbeacon.store.smtp_access import SmtpCredential


@dataclass(frozen=True)
class Envelope:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    client_ip: str
    helo: str
    protocol: str  # ESMTP, ESMTPS, ESMTPSA ... as the Received header says


def received_header(envelope: Envelope, by_host: str, queue_id: str, now: datetime) -> bytes:
    """The trace line every relay adds (RFC 5321 4.4), folded as Postfix folds it."""
    return (
        f"Received: from {envelope.helo or 'unknown'} ([{envelope.client_ip}])\r\n"
        f"\tby {by_host} (mailbeacon) with {envelope.protocol} id {queue_id};\r\n"
        f"\t{format_datetime(now)}\r\n"
    ).encode("ascii", "replace")


def prepare_submission(
    account: Account,
    credential: SmtpCredential | None,
    envelope: Envelope,
    raw: bytes,
    *,
    hostname: str,
    server_base_url: str,
) -> PreparedMessage:
    """Everything but the writing: parse, read the options, scan the bodies. Raises MimeError /
    OptionError for a message that cannot be taken.

    The stored MIME is what was received plus a Received line (and a Message-ID when the sender gave
    none, so every copy and any reply to it can be matched); everything else stays byte for byte.
    """
    now = datetime.now(UTC)
    queue_id = new_message_id(hostname)[4:16]
    source = MimeSource.parse(raw)
    headers: list[bytes] = [received_header(envelope, hostname, queue_id, now)]
    message_id = source.header("Message-ID")
    if not message_id:
        from_domain = _sender(source, envelope.mail_from).email.rpartition("@")[2]
        message_id = new_message_id(f"x@{from_domain if '.' in from_domain else hostname}")
        headers.append(f"Message-ID: {message_id}\r\n".encode())
    line_ending = source.line_ending
    prefix = b"".join(headers)
    if line_ending != b"\r\n":
        prefix = prefix.replace(b"\r\n", line_ending)
    # The bodies and headers read below are the same in ``raw`` and ``stored``: no need to parse twice.
    stored = prefix + raw

    options = parse_options(_option_headers(raw))
    if not envelope.mail_from:
        # A null sender marks a bounce or another automatic notice (RFC 5321 4.5.5): relayed as it is,
        # never tracked, and sent on with a null sender so that it cannot bounce in turn.
        options = MessageOptions(False, False, False, options.campaign, options.tags, options.metadata)
    policy = policy_for(
        account,
        server_base_url,
        track_opens=_pick(options.track_opens, credential.track_opens if credential else None),
        track_clicks=_pick(options.track_clicks, credential.track_clicks if credential else None),
        track_unsubscribes=_pick(
            options.track_unsubscribes, credential.track_unsubscribes if credential else None
        ),
    )
    names = _display_names(source)
    sender = _sender(source, envelope.mail_from)
    new = NewMessage(
        account=account,
        sender=sender,
        recipients=tuple(Address(rcpt, names.get(rcpt.lower())) for rcpt in _unique(envelope.rcpt_tos)),
        subject=(source.header("Subject") or "")[:10_000],
        html=source.html.text if source.html else None,
        text=source.text.text if source.text else None,
        headers={},
        campaign=options.campaign,
        tags=options.tags,
        metadata=options.metadata or {},
        policy=policy,
        message_id_header=message_id,
        in_reply_to=source.header("In-Reply-To"),
        references=source.header("References"),
        origin="smtp",
        source_mime=stored,
        envelope_from=envelope.mail_from,
        smtp_credential_id=credential.id if credential else None,
        own_id_per_copy=False,
    )
    return prepare_message(new)


def _pick(*choices: bool | None) -> bool | None:
    return next((c for c in choices if c is not None), None)


def _unique(addresses: tuple[str, ...]) -> list[str]:
    seen: dict[str, str] = {}
    for address in addresses:
        seen.setdefault(address.lower(), address)
    return list(seen.values())


def _option_headers(raw: bytes) -> list[tuple[str, str]]:
    """The top-level X-Mailbeacon-* headers, unfolded and decoded."""
    if b"x-mailbeacon-" not in raw[:_HEADER_SCAN].lower():
        return []  # the common case, answered without parsing anything
    parsed = BytesHeaderParser(policy=email.policy.default).parsebytes(_header_block(raw))
    return [(name, str(value)) for name, value in parsed.items() if name.lower().startswith("x-mailbeacon-")]


_HEADER_SCAN = 256 * 1024


def _header_block(raw: bytes) -> bytes:
    for separator in (b"\r\n\r\n", b"\n\n"):
        end = raw.find(separator)
        if end >= 0:
            return raw[: end + len(separator)]
    return raw


def _display_names(source: MimeSource) -> dict[str, str]:
    values = source.headers("To") + source.headers("Cc")
    return {addr.lower(): name for name, addr in getaddresses(values) if addr and name}


def _sender(source: MimeSource, mail_from: str) -> Address:
    for name, addr in getaddresses(source.headers("From")):
        if addr and "@" in addr:
            return Address(addr, name or None)
    return Address(mail_from or "unknown@invalid", None)

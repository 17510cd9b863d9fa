"""Creating a tracked message: validate, scan once, store the message, its copies and links in one go."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from mailbeacon.delivery.queue import CopyToSend, queue_copies
from mailbeacon.events import RecipientStatus
from mailbeacon.messages.content import PreparedContent, prepare_content, prepared_key, remember_prepared
from mailbeacon.messages.draft import Address, MessageDraft, validate_draft
from mailbeacon.messages.threads import message_ids_in, new_message_id, thread_root
from mailbeacon.messages.urls import host_of
from mailbeacon.rewrite import TrackingPolicy
from mailbeacon.store import Store
from mailbeacon.store.accounts import Account
from mailbeacon.store.deliveries import QueuedCopy
from mailbeacon.store.messages import (
    NewRecipient,
    StoredMessage,
    StoredRecipient,
    insert_links,
    insert_message,
    insert_recipients,
)
from mailbeacon.store.suppressions import suppressed_among

if TYPE_CHECKING:
    from mailbeacon.delivery.handoff import Reservation


@dataclass(frozen=True)
class CreatedRecipient:
    id: int
    email: str
    name: str | None
    suppressed: bool


@dataclass(frozen=True)
class CreatedMessage:
    id: int
    recipients: tuple[CreatedRecipient, ...]
    content: PreparedContent
    policy: dict[str, Any]
    stored: StoredMessage  # as written, for a delivery in this process that need not read it back
    copies: tuple[StoredRecipient, ...]
    leased: tuple[QueuedCopy, ...] = ()  # copies queued leased to the reservation's worker


def tracking_base_url(account: Account, server_base_url: str) -> str:
    return (account.tracking_base_url or server_base_url).rstrip("/")


def policy_for(
    account: Account,
    server_base_url: str,
    *,
    track_opens: bool | None = None,
    track_clicks: bool | None = None,
    track_unsubscribes: bool | None = None,
) -> dict[str, Any]:
    """The tracking policy as stored with the message: enough to rebuild every copy identically.

    A flag left as None takes the account's setting.
    """
    base = tracking_base_url(account, server_base_url)

    def pick(requested: bool | None, default: bool) -> bool:
        return default if requested is None else requested

    return {
        "track_opens": pick(track_opens, account.track_opens),
        "track_clicks": pick(track_clicks, account.track_clicks),
        "track_unsubscribes": pick(track_unsubscribes, account.track_unsubscribes),
        "tracking_base_url": base,
        "tracking_hosts": sorted({host_of(base), host_of(server_base_url)}),
        "excluded_domains": list(account.excluded_domains),
        "scam_prevention": account.scam_prevention,
        "path_preserving": account.path_preserving_links,
    }


def rewrite_policy(policy: dict[str, Any]) -> TrackingPolicy:
    return TrackingPolicy(
        track_clicks=policy["track_clicks"],
        track_opens=policy["track_opens"],
        tracking_hosts=frozenset(policy["tracking_hosts"]),
        excluded_domains=tuple(policy["excluded_domains"]),
        scam_prevention=policy["scam_prevention"],
    )


@dataclass(frozen=True)
class NewMessage:
    """A message as every intake path hands it to the store, already validated."""

    account: Account
    sender: Address
    recipients: tuple[Address, ...]
    subject: str
    html: str | None
    text: str | None
    headers: dict[str, str]
    campaign: str | None
    tags: tuple[str, ...]
    metadata: dict[str, Any]
    policy: dict[str, Any]
    message_id_header: str | None  # the sender's own Message-ID, if any
    in_reply_to: str | None
    references: str | None
    origin: str = "api"
    source_mime: bytes | None = None
    envelope_from: str | None = None
    smtp_credential_id: int | None = None
    # The sender's Message-ID names one copy only; with several recipients each API copy gets its own.
    # Mail relayed by SMTP keeps the sender's Message-ID on every copy, as any relay does.
    own_id_per_copy: bool = True


@dataclass(frozen=True)
class Sending:
    """Queue the stored copies for delivery in the same transaction; with a ``reservation``, the
    copies it has room for are queued leased to its worker (see delivery/handoff.py)."""

    max_age: timedelta
    reservation: Reservation | None = None


def create_message(
    store: Store,
    account: Account,
    draft: MessageDraft,
    server_base_url: str,
    *,
    sending: Sending | None = None,
) -> CreatedMessage:
    validate_draft(draft)
    policy = policy_for(
        account,
        server_base_url,
        track_opens=draft.track_opens,
        track_clicks=draft.track_clicks,
        track_unsubscribes=draft.track_unsubscribes,
    )
    new = NewMessage(
        account=account,
        sender=draft.sender,
        recipients=draft.to,
        subject=draft.subject,
        html=draft.html,
        text=draft.text,
        headers=draft.headers,
        campaign=draft.campaign,
        tags=draft.tags,
        metadata=draft.metadata,
        policy=policy,
        message_id_header=draft.header("Message-ID"),
        in_reply_to=draft.header("In-Reply-To"),
        references=draft.header("References"),
    )
    return store_message(store, new, sending=sending)


@dataclass(frozen=True)
class PreparedMessage:
    """A message scanned and given its ids, ready to be written (the CPU half of storing it)."""

    new: NewMessage
    content: PreparedContent
    message_id_header: str
    copy_ids: tuple[str, ...]
    created_at: datetime


def prepare_message(new: NewMessage) -> PreparedMessage:
    content = prepare_content(new.html, new.text, rewrite_policy(new.policy))
    given_id = message_ids_in(new.message_id_header)
    message_id_header = given_id[0] if given_id else new_message_id(new.sender.email)
    if len(new.recipients) == 1 or not new.own_id_per_copy:
        copy_ids = [message_id_header] * len(new.recipients)
    else:
        copy_ids = [new_message_id(new.sender.email) for _ in new.recipients]
    return PreparedMessage(new, content, message_id_header, tuple(copy_ids), datetime.now(UTC))


def store_message(store: Store, new: NewMessage, *, sending: Sending | None = None) -> CreatedMessage:
    """Scan the bodies once and store the message, its copies, its links (and queue rows) in one go."""
    prepared = prepare_message(new)
    with store.write() as conn:
        return write_message(conn, prepared, sending)


def write_message(conn: Connection, prepared: PreparedMessage, sending: Sending | None) -> CreatedMessage:
    """The message, its copies, its links and queue rows, inside the caller's transaction."""
    new, content, now = prepared.new, prepared.content, prepared.created_at
    message_id_header = prepared.message_id_header
    fresh = RecipientStatus.QUEUED if sending else RecipientStatus.CREATED
    suppressed = suppressed_among(conn, new.account.id, [r.email for r in new.recipients])
    values: dict[str, Any] = {
        "account_id": new.account.id,
        "created_at": now,
        "from_email": new.sender.email,
        "from_name": new.sender.name,
        "subject": new.subject,
        "campaign": new.campaign,
        "tags": list(new.tags),
        "metadata": new.metadata,
        "headers": new.headers,
        "html": new.html,
        "text": new.text,
        "track_opens": new.policy["track_opens"],
        "track_clicks": new.policy["track_clicks"],
        "track_unsubscribes": new.policy["track_unsubscribes"],
        "policy": new.policy,
        "message_id_header": message_id_header,
        "in_reply_to": new.in_reply_to,
        "thread_id": thread_root(message_id_header, new.in_reply_to, new.references),
        "origin": new.origin,
        "source_mime": new.source_mime,
        "envelope_from": new.envelope_from,
        "smtp_credential_id": new.smtp_credential_id,
    }
    message_id = insert_message(conn, values)
    rows = [
        NewRecipient(
            r.email,
            r.name,
            RecipientStatus.DROPPED if r.email.lower() in suppressed else fresh,
            copy_id,
            f"suppressed: {suppressed[r.email.lower()]}" if r.email.lower() in suppressed else None,
        )
        for r, copy_id in zip(new.recipients, prepared.copy_ids, strict=True)
    ]
    ids = insert_recipients(conn, new.account.id, message_id, rows, now)
    insert_links(
        conn,
        new.account.id,
        message_id,
        [(link.position, link.url, link.occurrences) for link in content.links],
    )
    leased: list[QueuedCopy] = []
    if sending is not None:
        reservation = sending.reservation
        copies = []
        for position, (rid, r) in enumerate(zip(ids, new.recipients, strict=True)):
            dropped_because = suppressed.get(r.email.lower())
            lease = None
            if reservation is not None and dropped_because is None:
                lease = reservation.lease_for(position, now)
            if lease is not None:
                domain = r.email.rpartition("@")[2].lower()
                expires = now + sending.max_age
                leased.append(QueuedCopy(rid, new.account.id, message_id, domain, now, expires, 0))
            copies.append(CopyToSend(rid, r.email, dropped_because, lease))
        queue_copies(conn, new.account.id, message_id, copies, now, sending.max_age)
    # Should the transaction roll back, the key (which holds the bodies) still names this content.
    remember_prepared(prepared_key(message_id, new.html, new.text, new.policy), content)
    recipients = tuple(
        CreatedRecipient(rid, r.email, r.name, r.email.lower() in suppressed)
        for rid, r in zip(ids, new.recipients, strict=True)
    )
    stored = StoredMessage(id=message_id, **values)
    copies_stored = tuple(
        StoredRecipient(
            rid,
            new.account.id,
            message_id,
            row.email,
            row.name,
            row.status,
            row.status_detail,
            row.message_id_header,
        )
        for rid, row in zip(ids, rows, strict=True)
    )
    return CreatedMessage(message_id, recipients, content, new.policy, stored, copies_stored, tuple(leased))

"""Creating a tracked message: validate, scan once, store the message, its copies and links in one go."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mailbeacon.events import RecipientStatus
from mailbeacon.messages.content import PreparedContent, prepare_content
from mailbeacon.messages.draft import MessageDraft, validate_draft
from mailbeacon.messages.threads import message_ids_in, new_message_id, thread_root
from mailbeacon.messages.urls import host_of
from mailbeacon.rewrite import TrackingPolicy
from mailbeacon.store import Store
from mailbeacon.store.accounts import Account
from mailbeacon.store.messages import NewRecipient, insert_links, insert_message, insert_recipients
from mailbeacon.store.suppressions import suppressed_among


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


def tracking_base_url(account: Account, server_base_url: str) -> str:
    return (account.tracking_base_url or server_base_url).rstrip("/")


def policy_for(account: Account, draft: MessageDraft, server_base_url: str) -> dict[str, Any]:
    """The tracking policy as stored with the message: enough to rebuild every copy identically."""
    base = tracking_base_url(account, server_base_url)

    def pick(requested: bool | None, default: bool) -> bool:
        return default if requested is None else requested

    return {
        "track_opens": pick(draft.track_opens, account.track_opens),
        "track_clicks": pick(draft.track_clicks, account.track_clicks),
        "track_unsubscribes": pick(draft.track_unsubscribes, account.track_unsubscribes),
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


def create_message(
    store: Store, account: Account, draft: MessageDraft, server_base_url: str
) -> CreatedMessage:
    validate_draft(draft)
    policy = policy_for(account, draft, server_base_url)
    content = prepare_content(draft.html, draft.text, rewrite_policy(policy))

    given_id = message_ids_in(draft.header("Message-ID"))
    message_id_header = given_id[0] if given_id else new_message_id(draft.sender.email)
    in_reply_to = draft.header("In-Reply-To")
    now = datetime.now(UTC)
    # A sender's own Message-ID can name only one copy; with several recipients each copy gets its own.
    copy_ids = (
        [message_id_header] if len(draft.to) == 1 else [new_message_id(draft.sender.email) for _ in draft.to]
    )
    with store.write() as conn:
        suppressed = suppressed_among(conn, account.id, [r.email for r in draft.to])
        message_id = insert_message(
            conn,
            {
                "account_id": account.id,
                "created_at": now,
                "from_email": draft.sender.email,
                "from_name": draft.sender.name,
                "subject": draft.subject,
                "campaign": draft.campaign,
                "tags": list(draft.tags),
                "metadata": draft.metadata,
                "headers": draft.headers,
                "html": draft.html,
                "text": draft.text,
                "track_opens": policy["track_opens"],
                "track_clicks": policy["track_clicks"],
                "track_unsubscribes": policy["track_unsubscribes"],
                "policy": policy,
                "message_id_header": message_id_header,
                "in_reply_to": in_reply_to,
                "thread_id": thread_root(message_id_header, in_reply_to, draft.header("References")),
            },
        )
        new = [
            NewRecipient(
                r.email,
                r.name,
                RecipientStatus.DROPPED if r.email.lower() in suppressed else RecipientStatus.CREATED,
                copy_id,
                f"suppressed: {suppressed[r.email.lower()]}" if r.email.lower() in suppressed else None,
            )
            for r, copy_id in zip(draft.to, copy_ids, strict=True)
        ]
        ids = insert_recipients(conn, account.id, message_id, new, now)
        insert_links(
            conn,
            account.id,
            message_id,
            [(link.position, link.url, link.occurrences) for link in content.links],
        )
    recipients = tuple(
        CreatedRecipient(rid, r.email, r.name, r.email.lower() in suppressed)
        for rid, r in zip(ids, draft.to, strict=True)
    )
    return CreatedMessage(message_id, recipients, content, policy)

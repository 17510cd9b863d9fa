"""Matching feedback to the copy it is about, on both stores: shared Message-IDs, exact addresses,
accounts kept apart, and reports nobody could have been sent that never suppress anyone."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from mailbeacon.inbound.recording import receive
from mailbeacon.messages.draft import Address
from mailbeacon.messages.service import NewMessage, policy_for, store_message
from mailbeacon.store import Store
from mailbeacon.store.tables import recipients, suppressions
from mailbeacon.tokens import TokenSigner
from tests.conftest import KeyedAccount, new_account

SIGNER = TokenSigner({1: b"k" * 32})


def relayed(store: Store, account: KeyedAccount, message_id: str, *to: str) -> dict[str, int]:
    """A message as the SMTP relay stores it: every copy keeps the sender's Message-ID."""
    created = store_message(
        store,
        NewMessage(
            account=account.account,
            sender=Address("news@sender.example"),
            recipients=tuple(Address(a) for a in to),
            subject="Hello",
            html=None,
            text="Hello",
            headers={},
            campaign=None,
            tags=(),
            metadata={},
            policy=policy_for(account.account, "http://track.test"),
            message_id_header=message_id,
            in_reply_to=None,
            references=None,
            origin="smtp",
            own_id_per_copy=False,
        ),
    )
    return {r.email: r.id for r in created.recipients}


def dsn(message_id: str, final_recipient: str) -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example.org\r\nTo: news@sender.example\r\nSubject: failure\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n"
        f"Final-Recipient: rfc822; {final_recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 unknown\r\n\r\n"
        f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {message_id}\r\nSubject: Hello\r\n\r\n"
        "--b--\r\n"
    ).encode()


def anonymous_bounce(message_id: str) -> bytes:
    """A bounce in no standard format that quotes the original but names no recipient."""
    return (
        "From: MAILER-DAEMON@mx.example.org\r\nTo: news@sender.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        f"--b\r\nContent-Type: message/rfc822\r\n\r\nMessage-ID: {message_id}\r\nSubject: Hello\r\n\r\n"
        "Hello\r\n--b--\r\n"
    ).encode()


def feed(store: Store, raw: bytes, account_id: int | None = None) -> Any:
    return receive(
        store,
        raw,
        source="api",
        envelope_from=None,
        envelope_to=[],
        signer=SIGNER,
        our_domains=["bounces.track.test"],
        account_id=account_id,
    )


def statuses(store: Store, ids: dict[str, int]) -> dict[str, str]:
    with store.read() as conn:
        rows = conn.execute(
            select(recipients.c.id, recipients.c.status).where(recipients.c.id.in_(ids.values()))
        )
        by_id = {row.id: row.status for row in rows}
    return {email: by_id[rid] for email, rid in ids.items()}


def suppressed(store: Store, account_id: int) -> list[str]:
    with store.read() as conn:
        rows = conn.execute(select(suppressions.c.email).where(suppressions.c.account_id == account_id))
        return sorted(row.email for row in rows)


def test_the_named_address_decides_between_copies_sharing_a_message_id(
    store: Store, account: KeyedAccount
) -> None:
    ids = relayed(store, account, "<shared-1@sender.example>", "bob@example.org", "jimbob@example.org")
    received = feed(store, dsn("<shared-1@sender.example>", "jimbob@example.org"))
    assert received.match.copy.email == "jimbob@example.org"
    assert received.match.copy.confirmed is True
    assert statuses(store, ids) == {"bob@example.org": "created", "jimbob@example.org": "bounced"}
    assert suppressed(store, account.account.id) == ["jimbob@example.org"]


def test_a_report_naming_nobody_is_recorded_but_suppresses_nothing(
    store: Store, account: KeyedAccount
) -> None:
    ids = relayed(store, account, "<alone-1@sender.example>", "ann@example.org")
    received = feed(store, anonymous_bounce("<alone-1@sender.example>"))
    assert received.match.copy.recipient_id == ids["ann@example.org"]
    assert received.match.copy.confirmed is False
    assert statuses(store, ids) == {"ann@example.org": "bounced"}
    assert suppressed(store, account.account.id) == []


def test_an_account_matches_only_its_own_copies(store: Store, account: KeyedAccount) -> None:
    other = new_account(store, "other")
    mine = relayed(store, account, "<same-id@sender.example>", "pat@example.org")
    theirs = relayed(store, other, "<same-id@sender.example>", "pat@example.org")
    received = feed(store, dsn("<same-id@sender.example>", "pat@example.org"), account_id=other.account.id)
    assert received.match.copy.recipient_id == theirs["pat@example.org"]
    assert statuses(store, mine) == {"pat@example.org": "created"}
    assert statuses(store, theirs) == {"pat@example.org": "bounced"}

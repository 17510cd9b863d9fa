"""Direct delivery end to end: the real server takes a message by SMTP, looks up the recipient domain's MX
hosts in a real DNS server on loopback and hands the copy to real SMTP receivers on 127.0.0.x, as it would
to the recipients' own mail servers. What the store says afterwards is read straight from its tables.

One server (per database) serves every test of this module; each test mails its own addresses at its own
domain. Retries come every 0.5 s and a copy expires 3 s after it was queued, so that the expiry test runs in
seconds; every other copy here is delivered or bounced well within that.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from typing import Any

import httpx
import pytest

from mailbeacon.store import Store
from tests.dns_server import MX, A, DnsServer, Record
from tests.e2e.mail_support import (
    Receiver,
    attempts_of,
    describe_copy,
    events_of,
    make_account,
    open_store,
    port_free_on_all,
    queued_of_account,
    receivers,
    recipient_row,
    submit,
    suppressed_emails,
    trusted,
    unique_source_address,
    wait_for,
    wait_for_port,
    wait_for_status,
)
from tests.mail_helpers import parse_mime, tracking_urls
from tests.support import ServerProcess, running_server

pytestmark = pytest.mark.e2e

HOST_A = "127.0.0.2"
HOST_B = "127.0.0.3"
DEAD = "127.0.0.9"  # nothing listens there: connections are refused at once
BOUNCE_DOMAIN = "bounces.mailbeacon.test"
MAX_AGE_S = 3.0
RETRY_S = 0.5
SENDER = "news@sender.test"

ZONE: dict[str, list[Record]] = {
    # preference order: A first, B only if A cannot be reached
    "pref.test": [MX(20, "mx-b.pref.test"), MX(10, "mx-a.pref.test")],
    "mx-a.pref.test": [A(HOST_A)],
    "mx-b.pref.test": [A(HOST_B)],
    # the preferred host is dead
    "fallback.test": [MX(10, "mx-dead.fallback.test"), MX(20, "mx-b.fallback.test")],
    "mx-dead.fallback.test": [A(DEAD)],
    "mx-b.fallback.test": [A(HOST_B)],
    # no MX records: the domain's own address (implicit MX)
    "implicit.test": [A(HOST_A)],
    # one MX host, A, whose answers the tests script per recipient
    "scripted.test": [MX(10, "mx.scripted.test")],
    "mx.scripted.test": [A(HOST_A)],
    # only a dead host
    "dead.test": [MX(10, "mx.dead.test")],
    "mx.dead.test": [A(DEAD)],
    # RFC 7505: this domain accepts no mail; "nowhere.test" is not in the zone at all (NXDOMAIN)
    "nullmx.test": [MX(0, ".")],
}


@dataclass
class Direct:
    server: ServerProcess
    store: Store
    account_id: int
    source: str
    dns: DnsServer
    a: Receiver
    b: Receiver

    def send(self, to: list[str], data: bytes | None = None, subject: str = "Hello") -> int:
        return submit(self.server.smtp_port, self.source, SENDER, to, data or simple_message(to, subject))

    def copy(self, message_id: int, email: str) -> int:
        return int(recipient_row(self.store, message_id, email).id)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def direct(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Direct]:
    tmp_path = tmp_path_factory.mktemp(f"direct-{request.param}")
    if request.param == "postgresql":
        database_url: str = request.getfixturevalue("postgres_url")
    else:
        database_url = f"sqlite:///{tmp_path / 'mailbeacon.db'}"
    store = open_store(database_url)
    account = make_account(store, "direct")
    source = unique_source_address()
    port = port_free_on_all([HOST_A, HOST_B, DEAD])
    env = {
        "MAILBEACON_DATA_DIR": str(tmp_path / "data"),
        "MAILBEACON_DELIVERY_MODE": "direct",
        "MAILBEACON_DIRECT_PORT": str(port),
        "MAILBEACON_DELIVERY_ALLOW_PRIVATE_ADDRESSES": "true",  # the test's MX hosts are on 127.0.0.x
        "MAILBEACON_DELIVERY_RETRY_INITIAL_S": str(RETRY_S),
        "MAILBEACON_DELIVERY_RETRY_MAX_S": str(RETRY_S),
        "MAILBEACON_DELIVERY_MAX_AGE_S": str(MAX_AGE_S),
        "MAILBEACON_DELIVERY_POLL_S": "0.1",
        "MAILBEACON_DELIVERY_TIMEOUT_S": "5",
        "MAILBEACON_BOUNCE_DOMAIN": BOUNCE_DOMAIN,
        "MAILBEACON_HELO_NAME": "out.mailbeacon.test",
    }
    try:
        with (
            DnsServer(ZONE, ttl=1) as dns,
            receivers([HOST_A, HOST_B], port) as started,
            trusted(store, account.id, source),
        ):
            env["MAILBEACON_DNS_NAMESERVERS"] = dns.nameserver
            with running_server(database_url, tmp_path, env=env) as server:
                wait_for_port("127.0.0.1", server.smtp_port, server)
                yield Direct(server, store, account.id, source, dns, started[HOST_A], started[HOST_B])
    finally:
        store.dispose()


def address(domain: str, local: str = "rcpt") -> str:
    return f"{local}-{uuid.uuid4().hex[:10]}@{domain}"


def simple_message(to: list[str], subject: str) -> bytes:
    message = EmailMessage()
    message["From"] = f"Sender <{SENDER}>"
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message.set_content("Hello,\nsee https://www.example.com/article for more.\n")
    return message.as_bytes(policy=SMTP_POLICY)


def nothing_reached_receivers(direct: Direct, email: str) -> None:
    for receiver in (direct.a, direct.b):
        assert receiver.handler.rcpts_for(email) == [], f"{receiver.address} was asked to take {email}"
        assert receiver.handler.received_for(email) == []


def event_types(direct: Direct, recipient_id: int) -> list[str]:
    return [str(e.type) for e in events_of(direct.store, recipient_id)]


# --- routing ----------------------------------------------------------------------------------------


def test_the_preferred_mx_host_gets_the_copy(direct: Direct) -> None:
    to = address("pref.test")
    message_id = direct.send([to])
    row = wait_for_status(direct.store, message_id, to, "delivered", server=direct.server)

    assert len(direct.a.handler.received_for(to)) == 1
    assert direct.b.handler.rcpts_for(to) == [], "the MX 20 host was contacted although MX 10 took the copy"
    attempts = attempts_of(direct.store, int(row.id))
    assert [(a.outcome, a.host, a.ip, a.code) for a in attempts] == [
        ("delivered", "mx-a.pref.test", HOST_A, 250)
    ], describe_copy(direct.store, int(row.id))
    assert event_types(direct, int(row.id)) == ["queued", "delivered"]
    delivered = events_of(direct.store, int(row.id))[-1].data
    assert delivered["host"] == "mx-a.pref.test"
    assert delivered["ip"] == HOST_A
    assert delivered["code"] == 250


def test_a_dead_preferred_host_falls_back_to_the_next(direct: Direct) -> None:
    to = address("fallback.test")
    message_id = direct.send([to])
    row = wait_for_status(direct.store, message_id, to, "delivered", server=direct.server)

    assert len(direct.b.handler.received_for(to)) == 1
    attempts = attempts_of(direct.store, int(row.id))
    explain = describe_copy(direct.store, int(row.id))
    assert [(a.outcome, a.host, a.ip, a.code) for a in attempts] == [
        ("delivered", "mx-b.fallback.test", HOST_B, 250)
    ], explain
    # the attempt says the preferred host was tried first, and how that went
    tried = attempts[0].reply or ""
    assert "mx-dead.fallback.test" in tried, explain
    assert DEAD in tried, explain
    delivered = events_of(direct.store, int(row.id))[-1]
    assert delivered.type == "delivered"
    assert any("mx-dead.fallback.test" in tried for tried in delivered.data.get("tried", [])), explain


def test_a_domain_without_mx_records_gets_mail_at_its_address(direct: Direct) -> None:
    # First a copy through mx-a.pref.test, which has the same address as implicit.test: the worker may
    # well reuse that connection, and the attempt log must still name the host this copy was routed to.
    first = address("pref.test")
    wait_for_status(direct.store, direct.send([first]), first, "delivered", server=direct.server)
    to = address("implicit.test")
    message_id = direct.send([to])
    row = wait_for_status(direct.store, message_id, to, "delivered", server=direct.server)

    assert len(direct.a.handler.received_for(to)) == 1
    attempts = attempts_of(direct.store, int(row.id))
    assert [(a.outcome, a.host, a.ip, a.code) for a in attempts] == [
        ("delivered", "implicit.test", HOST_A, 250)
    ], describe_copy(direct.store, int(row.id))


# --- answers of the receiving server ----------------------------------------------------------------


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_a_greylisting_receiver_gets_the_copy_on_the_retry(direct: Direct, stage: str) -> None:
    to = address("scripted.test", f"grey-{stage}")
    reply = "451 4.7.1 Greylisted, please try again later"
    if stage == "rcpt":
        direct.a.handler.script_rcpt(to, reply)
    else:
        direct.a.handler.script_data(to, reply)
    message_id = direct.send([to])
    recipient_id = direct.copy(message_id, to)

    wait_for(
        lambda: "deferred" in event_types(direct, recipient_id) or None,
        10,
        lambda: "expected a deferred event after the 451:\n" + describe_copy(direct.store, recipient_id),
    )
    row = wait_for_status(direct.store, message_id, to, "delivered", server=direct.server)

    explain = describe_copy(direct.store, int(row.id))
    assert event_types(direct, recipient_id) == ["queued", "deferred", "delivered"], explain
    deferred = events_of(direct.store, recipient_id)[1].data
    assert (deferred["code"], deferred["enhanced_code"], deferred["stage"]) == (451, "4.7.1", stage), explain
    attempts = attempts_of(direct.store, recipient_id)
    assert [(a.outcome, a.code, a.enhanced_code) for a in attempts] == [
        ("deferred", 451, "4.7.1"),
        ("delivered", 250, "2.0.0"),
    ], explain
    gap = (attempts[1].started_at - attempts[0].started_at).total_seconds()
    assert 0.4 <= gap < 5, f"the retry came {gap:.2f} s after the 451, not after about {RETRY_S} s"
    assert len(direct.a.handler.received_for(to)) == 1


def test_user_unknown_bounces_suppresses_and_drops_the_next_message(direct: Direct) -> None:
    to = address("scripted.test", "gone")
    direct.a.handler.script_rcpt(to, f"550 5.1.1 <{to}>: Recipient address rejected: User unknown")
    message_id = direct.send([to])
    row = wait_for_status(direct.store, message_id, to, "bounced", server=direct.server)

    explain = describe_copy(direct.store, int(row.id))
    bounced = events_of(direct.store, int(row.id))[-1]
    assert bounced.type == "bounced", explain
    assert bounced.data["bounce_class"] == "hard", explain
    assert bounced.data["reason"] == "user_unknown", explain
    assert (bounced.data["code"], bounced.data["enhanced_code"]) == (550, "5.1.1"), explain
    attempts = attempts_of(direct.store, int(row.id))
    assert [(a.outcome, a.code, a.enhanced_code) for a in attempts] == [("bounced", 550, "5.1.1")], explain
    assert suppressed_emails(direct.store, direct.account_id).get(to.lower()) == "hard_bounce"
    assert direct.a.handler.received_for(to) == []

    again = direct.send([to], subject="Second try")
    second = recipient_row(direct.store, again, to)
    assert second.status == "dropped", describe_copy(direct.store, int(second.id))
    assert event_types(direct, int(second.id)) == ["dropped"]
    assert all(q.recipient_id != second.id for q in queued_of_account(direct.store, direct.account_id))
    assert attempts_of(direct.store, int(second.id)) == []
    assert direct.a.handler.rcpts_for(to) == [f"550 5.1.1 <{to}>: Recipient address rejected: User unknown"]


def test_a_copy_for_a_dead_host_expires_with_4_4_7(direct: Direct) -> None:
    to = address("dead.test")
    message_id = direct.send([to])
    recipient_id = direct.copy(message_id, to)
    wait_for(
        lambda: recipient_row(direct.store, message_id, to).status == "deferred" or None,
        5,
        lambda: "expected the copy to be deferred first:\n" + describe_copy(direct.store, recipient_id),
    )
    row = wait_for_status(
        direct.store, message_id, to, "bounced", timeout=MAX_AGE_S + 10, server=direct.server
    )

    explain = describe_copy(direct.store, recipient_id)
    found = events_of(direct.store, recipient_id)
    assert found[0].type == "queued", explain
    assert found[-1].type == "bounced", explain
    assert {e.type for e in found[1:-1]} == {"deferred"}, explain
    bounced = found[-1].data
    assert bounced["enhanced_code"] == "4.4.7", explain
    assert bounced["reason"] == "expired", explain
    assert bounced["bounce_class"] == "soft", explain
    assert DEAD in bounced["diagnostic"], explain
    assert bounced["host"] == "mx.dead.test", explain
    attempts = attempts_of(direct.store, recipient_id)
    assert len(attempts) >= 3, explain
    assert all(a.ip == DEAD for a in attempts), explain
    assert all(a.code is None for a in attempts), explain
    # retried for about its whole life: the last try is less than one retry interval before it expires
    lived = (row.updated_at - found[0].occurred_at).total_seconds()
    assert lived >= MAX_AGE_S - RETRY_S * 1.1 - 0.2, (
        f"gave up after {lived:.2f} s of {MAX_AGE_S} s\n{explain}"
    )
    # an expired copy says nothing about the address: it is not suppressed
    assert to.lower() not in suppressed_emails(direct.store, direct.account_id)


@pytest.mark.parametrize(
    ("domain", "why"), [("nowhere.test", "NXDOMAIN"), ("nullmx.test", "null MX")], ids=["nxdomain", "null-mx"]
)
def test_a_domain_that_takes_no_mail_bounces_without_a_connection(
    direct: Direct, domain: str, why: str
) -> None:
    to = address(domain)
    message_id = direct.send([to])
    row = wait_for_status(direct.store, message_id, to, "bounced", server=direct.server)

    explain = describe_copy(direct.store, int(row.id))
    bounced = events_of(direct.store, int(row.id))[-1]
    assert bounced.data["bounce_class"] == "hard", explain
    assert bounced.data["enhanced_code"].startswith("5.1."), explain
    assert why in bounced.data["diagnostic"], explain
    attempts = attempts_of(direct.store, int(row.id))
    assert [(a.outcome, a.host, a.ip, a.port) for a in attempts] == [("bounced", None, None, None)], explain
    nothing_reached_receivers(direct, to)


# --- what the recipient gets --------------------------------------------------------------------------

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"


def rich_message(to: str, bcc: str) -> bytes:
    message = EmailMessage()
    message["From"] = f"Sender News <{SENDER}>"
    message["To"] = to
    message["Bcc"] = bcc
    message["Subject"] = "Your invoice"
    message["X-Mailbeacon-Campaign"] = "invoices"
    message["X-Mailbeacon-Tags"] = "billing, monthly"
    message.set_content("Your invoice: https://shop.example.com/invoice?id=7\n")
    message.add_alternative(
        '<html><body><p>Your <a href="https://shop.example.com/invoice?id=7">invoice</a>.</p></body></html>',
        subtype="html",
    )
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="invoice.pdf")
    return message.as_bytes(policy=SMTP_POLICY)


def test_what_reaches_the_recipient(direct: Direct) -> None:
    to = address("scripted.test", "reader")
    bcc = address("scripted.test", "hidden")
    message_id = direct.send([to, bcc], rich_message(to, bcc))
    for email in (to, bcc):
        wait_for_status(direct.store, message_id, email, "delivered", server=direct.server)

    (received,) = direct.a.handler.received_for(to)
    assert received.rcpt_tos == (to,)
    assert re.fullmatch(rf"bounces\+[A-Za-z0-9_-]+@{re.escape(BOUNCE_DOMAIN)}", received.mail_from), (
        received.mail_from
    )
    assert received.helo == "out.mailbeacon.test"
    mail = parse_mime(received.data)
    header_names = [name.lower() for name in mail]
    assert not [n for n in header_names if n.startswith("x-mailbeacon")], header_names
    assert "bcc" not in header_names
    assert mail["Subject"] == "Your invoice"
    assert mail.get_content_type() == "multipart/mixed"

    unsubscribe = str(mail["List-Unsubscribe"])
    assert re.search(r"<https?://[^>]+/u/[A-Za-z0-9_-]+>", unsubscribe), unsubscribe
    assert re.search(rf"<mailto:unsubscribe\+[A-Za-z0-9_-]+@{re.escape(BOUNCE_DOMAIN)}>", unsubscribe)
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    html_part = mail.get_body(preferencelist=("html",))
    assert html_part is not None
    html = html_part.get_content()
    assert isinstance(html, str)
    assert "shop.example.com/invoice" not in html, "the link was not rewritten"
    clicks = tracking_urls(html, "c")
    assert clicks, html
    assert clicks[0].startswith(direct.server.base_url)
    redirect = httpx.get(clicks[0], follow_redirects=False)
    assert redirect.status_code in (302, 303, 307), redirect.text
    assert redirect.headers["location"] == "https://shop.example.com/invoice?id=7"

    attachments: list[Any] = list(mail.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["invoice.pdf"]
    payload = attachments[0].get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert hashlib.sha256(payload).hexdigest() == hashlib.sha256(PDF).hexdigest()

    # the blind copy arrives too, with its own return path, and nothing in it names it
    (hidden,) = direct.a.handler.received_for(bcc)
    assert hidden.rcpt_tos == (bcc,)
    assert hidden.mail_from != received.mail_from
    assert bcc.encode() not in hidden.data

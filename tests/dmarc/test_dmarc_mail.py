"""Mail to the reports address goes to the DMARC store, not the bounce parser (inbound/recording.py)."""

from __future__ import annotations

from sqlalchemy import select
from starlette.testclient import TestClient

from mailbeacon.inbound.recording import Received, receive
from mailbeacon.store import Store
from mailbeacon.store.dmarc import ReportFilter, get_raw, get_report, list_reports
from mailbeacon.store.tables import events, inbound_messages
from mailbeacon.tokens import TokenSigner
from tests.conftest import KeyedAccount
from tests.dmarc.reports import Row, aggregate_xml, report_mail, unique_domain
from tests.mail_helpers import create_message

SIGNER = TokenSigner({1: b"k" * 32})
BOUNCE_DOMAIN = "bounces.track.test"


def mailed(store: Store, raw: bytes, to: str, report_addresses: list[str] | None = None) -> Received:
    return receive(
        store,
        raw,
        source="smtp",
        envelope_from="noreply-dmarc-support@reporter.example",
        envelope_to=[to],
        signer=SIGNER,
        our_domains=[BOUNCE_DOMAIN],
        report_addresses=report_addresses,
    )


def test_a_report_mailed_to_dmarc_at_the_bounce_domain_is_stored_for_its_sender(
    store: Store, client: TestClient, account: KeyedAccount
) -> None:
    domain = unique_domain()
    create_message(client, account.auth, **{"from": {"email": f"news@{domain}"}})
    raw = report_mail(
        aggregate_xml(domain, [Row("192.0.2.1", 4), Row("192.0.2.2", 1, "reject", "fail", "fail")]), domain
    )
    received = mailed(store, raw, f"<DMARC@{BOUNCE_DOMAIN.upper()}>")
    assert received.dmarc is not None
    assert received.event_type is None
    with store.read() as conn:
        stored = get_report(conn, account.account.id, received.dmarc.id)
        logged = conn.execute(
            select(inbound_messages).where(inbound_messages.c.id == received.inbound_id)
        ).one()
        account_events = conn.execute(
            select(events.c.id).where(events.c.account_id == account.account.id)
        ).all()
        assert get_raw(conn, account.account.id, received.dmarc.id) == raw
    assert stored is not None
    assert (stored.source, stored.kind, stored.domain, stored.message_count) == (
        "smtp",
        "aggregate",
        domain,
        5,
    )
    assert (logged.kind, logged.matched, logged.account_id, logged.raw) == (
        "dmarc_report",
        True,
        account.account.id,
        None,
    )
    assert logged.explanation["dmarc_report_id"] == received.dmarc.id
    assert logged.subject.startswith("Report domain:")
    assert account_events == []  # not a bounce: nothing happened to any copy

    again = mailed(store, raw, f"dmarc@{BOUNCE_DOMAIN}")
    assert again.dmarc is not None
    assert again.dmarc.duplicate
    assert again.dmarc.id == received.dmarc.id


def test_a_report_for_a_domain_nobody_sends_from_is_kept_unmatched(store: Store) -> None:
    domain = unique_domain()
    received = mailed(
        store, report_mail(aggregate_xml(domain, [Row("192.0.2.1", 2)]), domain), f"dmarc@{BOUNCE_DOMAIN}"
    )
    assert received.dmarc is not None
    assert received.dmarc.account_id is None
    with store.read() as conn:
        unmatched = list_reports(conn, ReportFilter(None, domain=domain), 10)
    assert [r.id for r in unmatched] == [received.dmarc.id]


def test_broken_mail_to_the_reports_address_is_rejected_and_kept(store: Store) -> None:
    raw = b"From: someone@example.net\r\nSubject: hello\r\n\r\nNot a report at all.\r\n"
    received = mailed(store, raw, f"dmarc@{BOUNCE_DOMAIN}")
    assert received.dmarc is not None
    assert received.dmarc.error is not None
    assert received.report.problems == (received.dmarc.error,)
    with store.read() as conn:
        kept = get_report(conn, None, received.dmarc.id)
        assert get_raw(conn, None, received.dmarc.id) == raw
    assert kept is not None
    assert kept.status == "rejected"


def test_a_configured_reports_address_replaces_the_default(store: Store) -> None:
    domain = unique_domain()
    raw = report_mail(aggregate_xml(domain, [Row("192.0.2.1", 2)]), domain)
    configured = mailed(store, raw, "reports@example.net", report_addresses=["Reports@example.net"])
    assert configured.dmarc is not None
    default = mailed(store, raw, f"dmarc@{BOUNCE_DOMAIN}", report_addresses=["reports@example.net"])
    assert default.dmarc is None  # read as ordinary feedback mail now
    assert default.report.format != "dmarc_report"

"""Storing reports, on SQLite and PostgreSQL: records, duplicates, rejected reports, whose a report is,
the summary over a date range, and the listing the logs API reads."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from starlette.testclient import TestClient

from mailbeacon.dmarc import ReportStatus, parse_report, record_report
from mailbeacon.store import Store
from mailbeacon.store.dmarc import (
    ReportFilter,
    domain_summary,
    get_raw,
    get_report,
    list_reports,
    report_records,
)
from tests.conftest import KeyedAccount, new_account
from tests.dmarc.corpus import EXPECTED, LARGE, corpus_bytes
from tests.dmarc.reports import Row, aggregate_xml, unique_domain
from tests.mail_helpers import create_message

SAMPLE = "dmarc-report-pypi/reports/dmarc-sample-3.xml"


def test_a_report_and_its_records_are_stored(store: Store, account: KeyedAccount) -> None:
    raw = corpus_bytes(SAMPLE)
    recorded = record_report(store, raw, source="cli", account_id=account.account.id)
    assert recorded.status is ReportStatus.OK
    assert not recorded.duplicate
    with store.read() as conn:
        row = get_report(conn, account.account.id, recorded.id)
        records = report_records(conn, recorded.id)
        assert get_raw(conn, account.account.id, recorded.id) == raw
    assert row is not None
    want = EXPECTED[SAMPLE]
    assert (row.kind, row.domain, row.org_name, row.report_id) == (
        "aggregate",
        "example.net",
        want["org_name"],
        want["report_id"],
    )
    assert (row.record_count, row.message_count) == (want["record_count"], want["message_total"])
    assert row.policy_published is not None
    assert row.policy_published["p"] == want["policy_published"]["p"]
    assert tuple(records) == parse_report(raw).records


def test_the_same_report_again_is_not_counted_twice(store: Store, account: KeyedAccount) -> None:
    account_id = account.account.id
    first = record_report(store, corpus_bytes(SAMPLE), source="api", account_id=account_id)
    # The same report as gzip and zip: the same reporter, report id and domain.
    for name in (SAMPLE, SAMPLE + ".gz", SAMPLE + ".zip"):
        again = record_report(store, corpus_bytes(name), source="api", account_id=account_id)
        assert again.duplicate
        assert again.id == first.id
    with store.read() as conn:
        summary = domain_summary(conn, account_id, "example.net")
        listed = list_reports(conn, ReportFilter(account_id), 100)
    assert summary.totals.messages == EXPECTED[SAMPLE]["message_total"]
    assert summary.reports == 1
    assert [r.id for r in listed] == [first.id]
    # Another account may hold the same report: it is its own copy.
    other = new_account(store)
    theirs = record_report(store, corpus_bytes(SAMPLE), source="api", account_id=other.account.id)
    assert not theirs.duplicate


def test_a_broken_report_is_rejected_with_its_reason_and_kept(store: Store, account: KeyedAccount) -> None:
    raw = corpus_bytes("dmarc-report-pypi/reports/dmarc-invalid-2.xml.gz")
    recorded = record_report(store, raw, source="api", account_id=account.account.id)
    assert recorded.status is ReportStatus.REJECTED
    assert recorded.error is not None
    assert "date_range" in recorded.error
    with store.read() as conn:
        row = get_report(conn, account.account.id, recorded.id)
        assert get_raw(conn, account.account.id, recorded.id) == raw
        rejected = list_reports(conn, ReportFilter(account.account.id, status="rejected"), 10)
    assert row is not None
    assert (row.status, row.error, row.kind) == ("rejected", recorded.error, None)
    assert [r.id for r in rejected] == [recorded.id]


def _send_from(client: TestClient, account: KeyedAccount, address: str) -> None:
    create_message(client, account.auth, **{"from": {"email": address}})


def test_a_report_belongs_to_the_one_account_sending_from_its_domain(
    store: Store, client: TestClient, account: KeyedAccount
) -> None:
    domain, shared, nobody = unique_domain(), unique_domain(), unique_domain()
    _send_from(client, account, f"news@mail.{domain}")  # a subdomain counts
    _send_from(client, account, f"news@{shared}")
    other = new_account(store)
    _send_from(client, other, f"billing@{shared}")

    mine = record_report(store, aggregate_xml(domain, [Row("192.0.2.1", 3)]), source="smtp")
    both = record_report(store, aggregate_xml(shared, [Row("192.0.2.1", 3)]), source="smtp")
    orphan = record_report(store, aggregate_xml(nobody, [Row("192.0.2.1", 3)]), source="smtp")
    assert mine.account_id == account.account.id
    assert both.account_id is None  # several accounts send from it: for the operator to place
    assert orphan.account_id is None
    with store.read() as conn:
        unmatched = {r.domain for r in list_reports(conn, ReportFilter(None, after_id=mine.id), 1000)}
        assert get_report(conn, other.account.id, both.id) is None
        assert get_report(conn, None, both.id) is not None
    assert {shared, nobody} <= unmatched
    assert domain not in unmatched


def test_the_summary_adds_up_a_date_range(store: Store, account: KeyedAccount) -> None:
    domain, account_id = unique_domain(), account.account.id
    day = datetime(2026, 10, 1, tzinfo=UTC)
    reports = [
        aggregate_xml(
            domain,
            [Row("192.0.2.1", 10), Row("192.0.2.2", 4, "quarantine", "fail", "fail")],
            org="Google",
            day=day,
        ),
        aggregate_xml(
            domain,
            [Row("192.0.2.1", 5), Row("198.51.100.7", 2, "none", "fail", "pass")],
            org="Yahoo",
            day=day + timedelta(days=1),
            p="reject",
        ),
        aggregate_xml(domain, [Row("192.0.2.1", 100)], org="Google", day=day + timedelta(days=5)),
    ]
    for raw in reports:
        assert record_report(store, raw, source="api", account_id=account_id).status is ReportStatus.OK
    with store.read() as conn:
        summary = domain_summary(conn, account_id, domain, since=day, until=day + timedelta(days=2))
        everything = domain_summary(conn, account_id, domain.upper())
        nothing = domain_summary(conn, new_account(store).account.id, domain)
    totals = summary.totals
    assert (summary.reports, totals.messages) == (2, 21)
    assert (totals.dmarc_pass, totals.dmarc_fail) == (17, 4)  # aligned SPF alone passes DMARC
    assert (totals.dkim_aligned_pass, totals.dkim_aligned_fail) == (15, 6)
    assert (totals.spf_aligned_pass, totals.spf_aligned_fail) == (17, 4)
    assert totals.dispositions == {"none": 17, "quarantine": 4}
    by_ip = {s.source_ip: s.messages for s in summary.by_source_ip}
    assert by_ip == {"192.0.2.1": 15, "192.0.2.2": 4, "198.51.100.7": 2}
    assert [(r.reporter, r.messages) for r in summary.by_reporter] == [("Google", 14), ("Yahoo", 7)]
    assert {(p.p, p.reports) for p in summary.published_policies} == {("quarantine", 1), ("reject", 1)}
    assert everything.totals.messages == 121
    assert everything.reports == 3
    assert nothing.totals.messages == 0
    assert nothing.by_source_ip == []


def test_reports_are_listed_by_domain_kind_and_time_in_pages(store: Store, account: KeyedAccount) -> None:
    domain, account_id = unique_domain(), account.account.id
    day = datetime(2026, 9, 1, tzinfo=UTC)
    ids = [
        record_report(
            store,
            aggregate_xml(domain, [Row("192.0.2.9", 1)], day=day + timedelta(days=n)),
            source="api",
            account_id=account_id,
        ).id
        for n in range(5)
    ]
    record_report(
        store, corpus_bytes("parsedmarc/samples/smtp_tls/rfc8460.json"), source="api", account_id=account_id
    )
    with store.read() as conn:
        first = list_reports(conn, ReportFilter(account_id, domain=domain), 2)
        rest = list_reports(conn, ReportFilter(account_id, domain=domain, after_id=first[-1].id), 10)
        ranged = list_reports(
            conn, ReportFilter(account_id, since=day + timedelta(days=1), until=day + timedelta(days=3)), 10
        )
        tls = list_reports(conn, ReportFilter(account_id, kind="smtp_tls"), 10)
    assert [r.id for r in first + rest] == ids
    assert [r.id for r in ranged] == ids[1:3]
    assert [(r.domain, r.org_name) for r in tls] == [("company-y.example", "Company-X")]


def test_the_2286_record_report_is_stored_and_summarised_fast(store: Store, account: KeyedAccount) -> None:
    parse_report(corpus_bytes(SAMPLE))  # parsedmarc loaded
    started = time.perf_counter()
    recorded = record_report(store, corpus_bytes(LARGE), source="cli", account_id=account.account.id)
    stored = time.perf_counter()
    with store.read() as conn:
        summary = domain_summary(conn, account.account.id, "example.com")
    done = time.perf_counter()
    print(
        f"\n2,286 records: parsed and stored in {stored - started:.2f} s, summarised in {done - stored:.2f} s"
    )
    assert recorded.report is not None
    assert len(recorded.report.records) == 2286
    assert summary.totals.messages == 2286
    assert sum(org.messages for org in summary.by_source_org) == 2286
    assert done - started < 15  # about 1.5 s on a quiet 2-core machine

"""parse_report against every report of the corpus (tests/data/dmarc) and its expected answers."""

from __future__ import annotations

import socket
import time

import pytest

from mailbeacon.dmarc import DmarcReport, ReportError, ReportKind, explain, parse_report
from tests.dmarc.corpus import EXPECTED, LARGE, VALIDITY, as_expected, corpus_bytes


def _parsed(name: str) -> DmarcReport | ReportError:
    try:
        return parse_report(corpus_bytes(name))
    except ReportError as exc:
        return exc


def test_the_corpus_scores_every_file_as_expected() -> None:
    right = [
        name for name, want in EXPECTED.items() if isinstance(_parsed(name), DmarcReport) == want["valid"]
    ]
    print(f"\nDMARC corpus: {len(right)} of {len(EXPECTED)} files parse or are rejected as expected")
    assert len(EXPECTED) == 68
    assert len(right) == len(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED), ids=str)
def test_each_report_reads_as_expected(name: str) -> None:
    want = EXPECTED[name]
    parsed = _parsed(name)
    if not want["valid"]:
        assert isinstance(parsed, ReportError), "must be rejected"
        assert str(parsed)  # with a reason
        return
    assert isinstance(parsed, DmarcReport), str(parsed)
    assert parsed.kind.value == want["report_type"]
    if parsed.kind is ReportKind.AGGREGATE:
        assert as_expected(parsed) == want


@pytest.mark.parametrize("name", sorted(VALIDITY), ids=str)
def test_upstream_validity_assertions_hold(name: str) -> None:
    assert isinstance(_parsed(name), DmarcReport) == VALIDITY[name]["valid"]


def test_failure_and_tls_reports_name_their_domain_and_an_id() -> None:
    for name, want in EXPECTED.items():
        if want.get("report_type") in ("failure", "smtp_tls"):
            parsed = _parsed(name)
            assert isinstance(parsed, DmarcReport), name
            assert parsed.domain, name
            assert parsed.report_id, name
            assert parsed.details, name


def test_the_tls_report_counts_sessions() -> None:
    parsed = parse_report(corpus_bytes("parsedmarc/samples/smtp_tls/rfc8460.json"))
    assert parsed.kind is ReportKind.SMTP_TLS
    assert parsed.domain == "company-y.example"
    assert parsed.org_name == "Company-X"
    assert parsed.message_count == 5326 + 303


def test_the_2286_record_report_is_parsed_and_summarised_fast() -> None:
    parse_report(corpus_bytes("dmarc-report-pypi/reports/dmarc-sample-1.xml"))  # parsedmarc loaded
    started = time.perf_counter()
    parsed = parse_report(corpus_bytes(LARGE))
    summary = explain(parsed)["summary"]
    elapsed = time.perf_counter() - started
    print(f"\n2,286-record report parsed and summarised in {elapsed:.2f} s")
    assert len(parsed.records) == 2286
    assert summary["totals"]["messages"] == EXPECTED[LARGE]["message_total"]
    assert sum(row["messages"] for row in summary["by_source_ip"]) == summary["totals"]["messages"]
    assert elapsed < 10  # about 1.5 s on a quiet 2-core machine; the bound leaves room for a busy one


def test_reports_are_read_without_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[object] = []

    def no_network(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    read = {name: isinstance(_parsed(name), DmarcReport) for name in sorted(EXPECTED)}
    assert attempts == []  # no DNS lookup, no download
    assert read == {name: want["valid"] for name, want in sorted(EXPECTED.items())}

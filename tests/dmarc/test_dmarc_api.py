"""/v1/dmarc in-process, on SQLite and PostgreSQL: upload, list, read, raw, summary, isolation, limits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from mailbeacon.app import MailbeaconApp
from mailbeacon.config import Settings
from mailbeacon.store import Store
from tests.conftest import KeyedAccount, new_account
from tests.dmarc.corpus import EXPECTED, corpus_bytes
from tests.dmarc.reports import Row, aggregate_xml, report_mail, unique_domain

SAMPLE = "dmarc-report-pypi/reports/dmarc-sample-2.xml"


def upload(client: TestClient, account: KeyedAccount, raw: bytes, status: int = 201) -> dict[str, object]:
    response = client.post("/v1/dmarc/reports", content=raw, headers=account.auth)
    assert response.status_code == status, response.text
    found: dict[str, object] = response.json()
    return found


@pytest.mark.parametrize("suffix", ["", ".gz", ".zip"])
def test_a_report_file_is_stored_and_read_back(
    client: TestClient, account: KeyedAccount, suffix: str
) -> None:
    raw = corpus_bytes(SAMPLE + suffix)
    created = upload(client, account, raw)
    want = EXPECTED[SAMPLE]
    assert created["status"] == "ok"
    assert (created["kind"], created["domain"], created["org_name"]) == (
        "aggregate",
        "example.org",
        want["org_name"],
    )
    assert (created["report_id"], created["message_count"], created["duplicate"]) == (
        want["report_id"],
        1,
        False,
    )
    assert created["begin"] == "2020-01-01T00:00:00Z"

    detail = client.get(f"/v1/dmarc/reports/{created['id']}", headers=account.auth).json()
    assert detail["policy_published"]["p"] == "reject"
    [record] = detail["records"]
    expected_record = want["records"][0]
    assert (record["source_ip"], record["count"], record["disposition"]) == (
        expected_record["source_ip"],
        expected_record["count"],
        expected_record["disposition"],
    )
    assert record["dkim_results"] == [{"domain": "example.org", "selector": "mail", "result": "fail"}]
    raw_back = client.get(f"/v1/dmarc/reports/{created['id']}/raw", headers=account.auth)
    assert raw_back.content == raw

    again = upload(client, account, raw, status=200)
    assert again["duplicate"] is True
    assert again["id"] == created["id"]


def test_a_report_mail_and_a_tls_report_are_read_too(client: TestClient, account: KeyedAccount) -> None:
    domain = unique_domain()
    mailed = upload(client, account, report_mail(aggregate_xml(domain, [Row("192.0.2.5", 7)]), domain))
    assert (mailed["kind"], mailed["domain"], mailed["message_count"]) == ("aggregate", domain, 7)
    tls = upload(client, account, corpus_bytes("parsedmarc/samples/smtp_tls/google.com_smtp_tls_report.eml"))
    assert (tls["kind"], tls["domain"], tls["message_count"]) == ("smtp_tls", "cardinalhealth.ca", 48)
    failure = upload(
        client, account, corpus_bytes("parsedmarc/samples/failure/dmarc_ruf_report_linkedin.eml")
    )
    assert (failure["kind"], failure["domain"]) == ("failure", "example.com")
    detail = client.get(f"/v1/dmarc/reports/{failure['id']}", headers=account.auth).json()
    assert detail["details"]["auth_failure"] == ["dmarc"]
    assert detail["records"] == []


def test_a_broken_report_is_refused_with_its_reason_and_kept(
    client: TestClient, account: KeyedAccount
) -> None:
    raw = corpus_bytes("dmarc-report-pypi/reports/dmarc-invalid-1.xml.zip")
    response = client.post("/v1/dmarc/reports", content=raw, headers=account.auth)
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    assert "Missing field: 'email'" in message
    assert "kept as rejected report" in message
    [kept] = client.get("/v1/dmarc/reports", params={"status": "rejected"}, headers=account.auth).json()[
        "data"
    ]
    assert kept["status"] == "rejected"
    assert "Missing field" in kept["error"]
    assert client.get(f"/v1/dmarc/reports/{kept['id']}/raw", headers=account.auth).content == raw
    assert client.post("/v1/dmarc/reports", content=b"", headers=account.auth).status_code == 422


def test_the_list_filters_and_pages(client: TestClient, account: KeyedAccount) -> None:
    domain = unique_domain()
    ids = [upload(client, account, aggregate_xml(domain, [Row("192.0.2.1", n + 1)]))["id"] for n in range(3)]
    upload(client, account, corpus_bytes(SAMPLE))
    seen: list[object] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {
            "domain": domain,
            "limit": 2,
            **({"cursor": cursor} if cursor else {}),
        }
        page = client.get("/v1/dmarc/reports", params=params, headers=account.auth).json()
        seen += [report["id"] for report in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    tls = client.get("/v1/dmarc/reports", params={"kind": "smtp_tls"}, headers=account.auth).json()
    assert tls["data"] == []
    naive = client.get("/v1/dmarc/reports", params={"since": "2026-01-01T00:00:00"}, headers=account.auth)
    assert naive.status_code == 422


def test_the_summary(client: TestClient, account: KeyedAccount) -> None:
    domain = unique_domain()
    upload(
        client,
        account,
        aggregate_xml(domain, [Row("192.0.2.1", 6), Row("192.0.2.2", 2, "reject", "fail", "fail")]),
    )
    summary = client.get("/v1/dmarc/summary", params={"domain": domain}, headers=account.auth).json()
    assert summary["reports"] == 1
    assert summary["totals"]["messages"] == 8
    assert (summary["totals"]["dmarc_pass"], summary["totals"]["dmarc_fail"]) == (6, 2)
    assert summary["totals"]["dispositions"] == {"none": 6, "reject": 2}
    assert [(s["source_ip"], s["messages"]) for s in summary["by_source_ip"]] == [
        ("192.0.2.1", 6),
        ("192.0.2.2", 2),
    ]
    assert summary["by_reporter"][0]["reporter"] == "Example Reporter"
    assert summary["published_policies"] == [{"p": "quarantine", "sp": "none", "pct": "100", "reports": 1}]
    later = client.get(
        "/v1/dmarc/summary", params={"domain": domain, "since": "2026-11-02T00:00:00Z"}, headers=account.auth
    ).json()
    assert later["totals"]["messages"] == 0
    assert client.get("/v1/dmarc/summary", headers=account.auth).status_code == 422


def test_accounts_see_only_their_own_reports(store: Store, client: TestClient, account: KeyedAccount) -> None:
    domain = unique_domain()
    created = upload(client, account, aggregate_xml(domain, [Row("192.0.2.1", 3)]))
    other = new_account(store)
    assert client.get(f"/v1/dmarc/reports/{created['id']}", headers=other.auth).status_code == 404
    assert client.get(f"/v1/dmarc/reports/{created['id']}/raw", headers=other.auth).status_code == 404
    assert client.get("/v1/dmarc/reports", headers=other.auth).json()["data"] == []
    theirs = client.get("/v1/dmarc/summary", params={"domain": domain}, headers=other.auth).json()
    assert theirs["totals"]["messages"] == 0
    assert client.get("/v1/dmarc/reports").status_code == 401


@pytest.fixture
def small_limit_client(database_url: str, store: Store) -> Iterator[TestClient]:
    settings = Settings(
        database_url=database_url,
        public_base_url="http://track.test",
        roles=["web"],
        dmarc_max_report_bytes=2048,
    )
    with TestClient(MailbeaconApp(settings, store=store), base_url="http://track.test") as client:
        yield client


def test_a_report_over_the_size_limit_is_refused(
    small_limit_client: TestClient, account: KeyedAccount
) -> None:
    big = aggregate_xml(unique_domain(), [Row(f"192.0.2.{n}", 1) for n in range(1, 60)])
    assert len(big) > 2048
    response = small_limit_client.post("/v1/dmarc/reports", content=big, headers=account.auth)
    assert response.status_code == 413
    assert "dmarc_max_report_bytes" in response.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: refused while it streams in
        for _ in range(100):
            yield b"<" * 1024

    streamed = small_limit_client.post("/v1/dmarc/reports", content=chunks(), headers=account.auth)
    assert streamed.status_code == 413
    listed = small_limit_client.get("/v1/dmarc/reports", headers=account.auth).json()["data"]
    assert listed == []


def test_the_routes_are_in_the_openapi_document(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert {"/v1/dmarc/reports", "/v1/dmarc/reports/{report_id}", "/v1/dmarc/summary"} <= set(
        document["paths"]
    )
    upload_body = document["paths"]["/v1/dmarc/reports"]["post"]["requestBody"]["content"]
    assert "application/gzip" in upload_body
    assert "DmarcSummaryOut" in document["components"]["schemas"]

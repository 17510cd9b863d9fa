"""GET /v1/logs/{kind}: every kind holds exactly what the test made happen (through the tracking
endpoints, a real delivery to an SMTP receiver and feedback mail handed in through the API), with filters,
pagination, the streamed JSON Lines and CSV exports, account isolation and the errors."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from mailbeacon.app import MailbeaconApp
from mailbeacon.config import Settings
from mailbeacon.store import Store
from mailbeacon.store.logs import SPECS, LogKind
from tests.conftest import KeyedAccount, new_account
from tests.dmarc.reports import Row, aggregate_xml, unique_domain
from tests.dns_server import MX, A, DnsServer, Record
from tests.e2e.mail_support import RecordingHandler, port_free_on_all, receivers
from tests.mail_helpers import body_of, copy_of, create_message, message_body, tracking_urls

UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"
SALE = "https://shop.example.com/sale?x=1&y=2#top"
BLOG = "https://blog.example.com/post"


def local(url: str) -> str:
    return url.replace("http://track.test", "")


def page(client: TestClient, account: KeyedAccount, kind: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"/v1/logs/{kind}", params=params, headers=account.auth)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    assert found["kind"] == kind
    return found


def rows(client: TestClient, account: KeyedAccount, kind: str, **params: Any) -> list[dict[str, Any]]:
    found = page(client, account, kind, limit=1000, **params)
    assert found["next_cursor"] is None
    result: list[dict[str, Any]] = found["rows"]
    return result


def all_pages(client: TestClient, account: KeyedAccount, kind: str, **params: Any) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        found = page(client, account, kind, **params, **({"cursor": cursor} if cursor else {}))
        seen += found["rows"]
        cursor = found["next_cursor"]
        if cursor is None:
            return seen


def exported(client: TestClient, account: KeyedAccount, kind: str, fmt: str, **params: Any) -> str:
    response = client.get(f"/v1/logs/{kind}", params={"format": fmt, **params}, headers=account.auth)
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    assert f'.{fmt}"' in response.headers["content-disposition"]
    return response.text


def as_csv(row: dict[str, Any]) -> dict[str, str]:
    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, list):
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        return str(value)

    return {name: cell(value) for name, value in row.items()}


def check_exports(
    client: TestClient, account: KeyedAccount, kind: str, expected: list[dict[str, Any]]
) -> None:
    """JSON Lines and CSV parse back to exactly the rows of the JSON pages."""
    lines = exported(client, account, kind, "jsonl").splitlines()
    assert [json.loads(line) for line in lines] == expected
    text = exported(client, account, kind, "csv")
    assert text.splitlines()[0].split(",") == list(SPECS[LogKind(kind)].names)
    assert list(csv.DictReader(io.StringIO(text))) == [as_csv(row) for row in expected]


# --- opens, clicks, unsubscribes through the tracking endpoints ------------------------------------------


@dataclass(frozen=True)
class Hit:
    kind: str
    recipient_id: int
    message_id: int
    url: str | None = None


def test_engagement_logs_hold_exactly_the_hits_made(
    client: TestClient, account: KeyedAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    news = create_message(
        client,
        account.auth,
        to=[{"email": "Ada@Example.org"}, {"email": "bob@example.org"}],
        campaign="november",
        tags=["newsletter", "eu"],
    )
    promo = create_message(client, account.auth, to=[{"email": "ada@example.org"}], campaign="promo", tags=[])
    made: list[Hit] = []
    marks: list[datetime] = []
    for created in (news, promo):
        for recipient in created["recipients"]:
            html = body_of(copy_of(client, account.auth, created["id"], recipient["id"]), "html")
            client.get(local(tracking_urls(html, "o")[0]), headers={"User-Agent": UA})
            made.append(Hit("opens", recipient["id"], created["id"]))
            for url, link in zip((SALE, BLOG), tracking_urls(html, "c")[:2], strict=True):
                client.get(local(link), headers={"User-Agent": UA})
                made.append(Hit("clicks", recipient["id"], created["id"], url))
            time.sleep(0.01)
            marks.append(datetime.now(UTC))
    bob = news["recipients"][1]
    html = body_of(copy_of(client, account.auth, news["id"], bob["id"]), "html")
    one_click = client.post(
        local(tracking_urls(html, "u")[0]),
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded", "User-Agent": UA},
    )
    assert one_click.status_code == 200
    made.append(Hit("unsubscribes", bob["id"], news["id"]))

    emails = {r["id"]: r["email"] for c in (news, promo) for r in c["recipients"]}
    for kind in ("opens", "clicks", "unsubscribes"):
        found = rows(client, account, kind)
        wanted = [h for h in made if h.kind == kind]
        assert [(r["recipient_id"], r["message_id"]) for r in found] == [
            (h.recipient_id, h.message_id) for h in wanted
        ], kind
        assert [r["recipient"] for r in found] == [emails[h.recipient_id] for h in wanted]
        assert all(r["ip"] == "203.0.113.5" and r["user_agent"] == UA for r in found)
        assert all(r["time"].endswith("Z") for r in found)
        check_exports(client, account, kind, found)
    clicks = rows(client, account, "clicks")
    assert [r["url"] for r in clicks] == [h.url for h in made if h.kind == "clicks"]
    assert [r["link_position"] for r in clicks] == [0, 1] * 3
    assert {(r["campaign"], tuple(r["tags"])) for r in clicks} == {
        ("november", ("newsletter", "eu")),
        ("promo", ()),
    }
    [unsubscribe] = rows(client, account, "unsubscribes")
    assert (unsubscribe["via"], unsubscribe["http_method"]) == ("link", "POST")

    # filters
    def ids(kind: str, **params: Any) -> list[int]:
        return [r["recipient_id"] for r in rows(client, account, kind, **params)]

    ada_news, _, ada_promo = (r["id"] for c in (news, promo) for r in c["recipients"])
    assert ids("opens", message_id=promo["id"]) == [ada_promo]
    assert ids("opens", campaign="november") == [ada_news, bob["id"]]
    assert ids("clicks", tag="eu") == [ada_news, ada_news, bob["id"], bob["id"]]
    assert ids("clicks", tag="newsletter", recipient="ADA@example.ORG") == [ada_news, ada_news]
    assert ids("clicks", tag="nope") == []
    assert ids("opens", recipient="ada@example.org") == [ada_news, ada_promo]
    window = {"since": marks[0].isoformat(), "until": marks[1].isoformat()}
    assert ids("clicks", **window) == [bob["id"], bob["id"]]
    assert ids("opens", since=(marks[-1] + timedelta(hours=1)).isoformat()) == []
    assert ids("opens", campaign="november", message_id=promo["id"]) == []

    # pages of two, and streams read in batches of two, give every row once
    everything = rows(client, account, "clicks")
    assert all_pages(client, account, "clicks", limit=2) == everything
    monkeypatch.setattr("mailbeacon.api.routes.logs.EXPORT_BATCH", 2)
    check_exports(client, account, "clicks", everything)
    lines = exported(client, account, "clicks", "jsonl", tag="eu").splitlines()
    assert [json.loads(line)["recipient_id"] for line in lines] == [ada_news, ada_news, bob["id"], bob["id"]]
    accepted = client.get("/v1/logs/opens", headers={**account.auth, "Accept": "text/csv"})
    assert accepted.headers["content-type"].startswith("text/csv")
    assert len(accepted.text.splitlines()) == 1 + 3

    # another account's key sees none of it, whatever it asks
    other = new_account(client.app.store)  # type: ignore[attr-defined]
    for kind in LogKind:
        assert rows(client, other, kind.value) == []
    assert rows(client, other, "clicks", message_id=news["id"]) == []
    assert exported(client, other, "clicks", "jsonl") == ""
    assert exported(client, other, "clicks", "csv").splitlines() == [",".join(everything[0])]


def test_errors(client: TestClient, account: KeyedAccount) -> None:
    unknown = client.get("/v1/logs/sends", headers=account.auth)
    assert unknown.status_code == 404
    assert "attempts, deliveries, bounces, failures, opens" in unknown.json()["error"]["message"]
    assert client.get("/v1/logs/clicks").status_code == 401
    for params, says in (
        ({"since": "2026-01-01T00:00:00"}, "since: give a time zone"),
        ({"until": "yesterday"}, "until"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"message_id": 0}, "message_id"),
        ({"cursor": "bogus"}, "cursor: not a cursor"),
        ({"format": "xml"}, "format"),
    ):
        response = client.get("/v1/logs/clicks", params=params, headers=account.auth)
        assert response.status_code == 422, params
        assert says in response.json()["error"]["message"], response.text
    dmarc = client.get("/v1/logs/dmarc", params={"campaign": "x", "format": "csv"}, headers=account.auth)
    assert dmarc.status_code == 422
    assert "campaign: DMARC records are not about one message" in dmarc.text


def test_openapi_shows_each_kinds_fields(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert "/v1/logs/{kind}" not in spec["paths"]
    for kind in LogKind:
        operation = spec["paths"][f"/v1/logs/{kind.value}"]["get"]
        assert {"application/json", "application/x-ndjson", "text/csv"} <= set(
            operation["responses"]["200"]["content"]
        )
    assert {"url", "link_position", "country", "asn", "machine_class", "human"} <= set(
        schemas["ClicksLogRow"]["properties"]
    )
    assert {"mx_host", "smtp_code", "reply", "outcome"} <= set(schemas["AttemptsLogRow"]["properties"])
    assert {"bounce_class", "reason", "diagnostic"} <= set(schemas["BouncesLogRow"]["properties"])
    assert {"report_org", "source_ip", "count", "disposition", "dkim", "spf"} <= set(
        schemas["DmarcLogRow"]["properties"]
    )


# --- the mail path: a real delivery to an SMTP receiver, and feedback mail ---------------------------------

MX_HOST = "127.0.0.2"
ZONE: dict[str, list[Record]] = {"logs.test": [MX(10, "mx.logs.test")], "mx.logs.test": [A(MX_HOST)]}


@dataclass
class Relay:
    client: TestClient
    receiver: RecordingHandler
    store: Store


@pytest.fixture
def relay(database_url: str, store: Store, tmp_path: Path) -> Iterator[Relay]:
    """The app in-process with its delivery worker, delivering straight to logs.test's MX host."""
    port = port_free_on_all([MX_HOST])
    with DnsServer(ZONE, ttl=1) as dns, receivers([MX_HOST], port) as started:
        settings = Settings(
            database_url=database_url,
            data_dir=tmp_path / "data",
            public_base_url="http://track.test",
            roles=["web", "worker"],
            delivery_mode="direct",
            direct_port=port,
            delivery_allow_private_addresses=True,
            dns_nameservers=[dns.nameserver],
            delivery_retry_initial_s=0.3,
            delivery_retry_max_s=0.3,
            delivery_poll_s=0.1,
            delivery_timeout_s=5,
            bounce_domain="bounces.track.test",
        )
        app = MailbeaconApp(settings, store=store)
        with TestClient(app, base_url="http://track.test", client=("203.0.113.5", 50000)) as client:
            yield Relay(client, started[MX_HOST].handler, store)


def statuses(client: TestClient, account: KeyedAccount, message_id: int) -> dict[str, str]:
    found = client.get(f"/v1/messages/{message_id}/recipients", headers=account.auth).json()
    return {r["email"]: r["status"] for r in found}


def hand_in(client: TestClient, account: KeyedAccount, raw: bytes) -> None:
    response = client.post(
        "/v1/inbound", content=raw, headers={**account.auth, "Content-Type": "message/rfc822"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["matched"] is True, response.text


def dsn(message_id_header: str, to: str) -> bytes:
    boundary = "dsn-" + uuid.uuid4().hex
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\nTo: news@sender.example\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <{uuid.uuid4().hex}@mx.example.org>\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"'
        f"\r\n\r\n--{boundary}\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n\r\n"
        f"Final-Recipient: rfc822; {to}\r\nAction: failed\r\nStatus: 5.2.2\r\n"
        f"Remote-MTA: dns; mailstore.logs.test\r\nDiagnostic-Code: smtp; 552 5.2.2 Mailbox full\r\n\r\n"
        f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: news@sender.example\r\nTo: {to}\r\nMessage-ID: {message_id_header}\r\n\r\n--{boundary}--\r\n"
    ).encode()


def arf(original: bytes, to: str) -> bytes:
    boundary = "arf-" + uuid.uuid4().hex
    return (
        (
            f"From: <feedback@fbl.mailbox.example>\r\nTo: <abuse@sender.example>\r\nSubject: FW: news\r\n"
            f"Message-ID: <{uuid.uuid4().hex}@fbl.mailbox.example>\r\nMIME-Version: 1.0\r\n"
            f'Content-Type: multipart/report; report-type=feedback-report; boundary="{boundary}"\r\n\r\n'
            f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n"
            f"--{boundary}\r\nContent-Type: message/feedback-report\r\n\r\n"
            "Feedback-Type: abuse\r\nUser-Agent: SomeMailbox/1.0\r\nVersion: 1\r\n"
            f"Original-Rcpt-To: <{to}>\r\n\r\n"
            f"--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n"
        ).encode()
        + original
        + f"\r\n--{boundary}--\r\n".encode()
    )


def reply(message_id_header: str, sender: str, *, auto: bool) -> bytes:
    subject = "Out of office" if auto else "Re: Our November news"
    auto_header = "Auto-Submitted: auto-replied\r\n" if auto else ""
    return (
        f"From: {sender}\r\nTo: news@sender.example\r\nSubject: {subject}\r\n{auto_header}"
        f"Message-ID: <{uuid.uuid4().hex}@logs.test>\r\nIn-Reply-To: {message_id_header}\r\n"
        f"References: {message_id_header}\r\n\r\nThanks.\r\n"
    ).encode()


def test_mail_path_logs_hold_exactly_what_happened(relay: Relay) -> None:
    client, mx = relay.client, relay.receiver
    account = new_account(relay.store)
    ok, gone, slow, blocked = (
        f"{name}-{uuid.uuid4().hex[:6]}@logs.test" for name in ("ok", "gone", "slow", "x")
    )
    mx.script_rcpt(gone, "550 5.1.1 <gone>: no such user here")
    mx.script_rcpt(slow, "451 4.2.0 greylisted, come back later")
    added = client.post("/v1/suppressions", json={"email": blocked}, headers=account.auth)
    assert added.status_code == 201, added.text
    body = message_body(to=[{"email": a} for a in (ok, gone, slow, blocked)], send=True, campaign="relay")
    response = client.post("/v1/messages", json=body, headers=account.auth)
    assert response.status_code == 201, response.text
    message_id = response.json()["id"]
    final = {ok: "delivered", gone: "bounced", slow: "delivered", blocked: "dropped"}
    deadline = time.monotonic() + 30
    while statuses(client, account, message_id) != final:
        assert time.monotonic() < deadline, statuses(client, account, message_id)
        time.sleep(0.1)

    # Attempts: one per RCPT the receiver saw, with its answer.
    outcome_of = {"250": "delivered", "451": "deferred", "550": "bounced"}
    seen = [(address, outcome_of[answer.split()[0]]) for address, answer in mx.rcpts]
    attempts = rows(client, account, "attempts")
    assert sorted((r["recipient"], r["outcome"]) for r in attempts) == sorted(seen)
    assert len(attempts) == 4
    assert all(
        (r["mx_host"], r["mx_ip"], r["message_id"]) == ("mx.logs.test", MX_HOST, message_id) for r in attempts
    )
    by_outcome = {r["outcome"]: r for r in attempts}
    assert (by_outcome["bounced"]["smtp_code"], by_outcome["bounced"]["enhanced_code"]) == (550, "5.1.1")
    assert "no such user here" in by_outcome["bounced"]["reply"]
    assert by_outcome["deferred"]["smtp_code"] == 451
    delivered = mx.snapshot()
    deliveries = rows(client, account, "deliveries")
    assert sorted(r["recipient"] for r in deliveries) == sorted(a for m in delivered for a in m.rcpt_tos)
    assert all(r["smtp_code"] == 250 and r["mx_host"] == "mx.logs.test" for r in deliveries)
    [dropped] = rows(client, account, "failures")
    assert (dropped["recipient"], dropped["failure"], dropped["reason"]) == (
        blocked,
        "dropped",
        "suppressed: manual",
    )

    # Feedback mail about the delivered copy: a late bounce, a complaint, a reply and an auto-reply.
    original = next(m for m in delivered if ok in m.rcpt_tos).data
    header = next(
        line.split(":", 1)[1].strip()
        for line in original.decode().split("\r\n\r\n")[0].split("\r\n")
        if line.lower().startswith("message-id:")
    )
    hand_in(client, account, dsn(header, ok))
    hand_in(client, account, arf(original, ok))
    hand_in(client, account, reply(header, ok, auto=False))
    hand_in(client, account, reply(header, ok, auto=True))

    bounces = rows(client, account, "bounces")
    assert [
        (r["recipient"], r["bounce_class"], r["reason"], r["smtp_code"], r["source"]) for r in bounces
    ] == [
        (gone, "hard", "user_unknown", 550, "delivery"),
        (ok, "soft", "mailbox_full", 552, "dsn"),
    ]
    assert bounces[1]["enhanced_code"] == "5.2.2"
    [complaint] = rows(client, account, "complaints")
    assert (complaint["recipient"], complaint["feedback_type"]) == (ok, "abuse")
    assert complaint["reporter_user_agent"] == "SomeMailbox/1.0"
    responses = rows(client, account, "responses")
    assert [(r["recipient"], r["response"], r["from_address"]) for r in responses] == [
        (ok, "replied", ok),
        (ok, "auto_replied", ok),
    ]
    assert responses[1]["subject"] == "Out of office"
    assert responses[1]["auto_reply_reason"]
    for kind in ("attempts", "deliveries", "bounces", "failures", "complaints", "responses"):
        found = rows(client, account, kind, campaign="relay")
        assert found == rows(client, account, kind), kind
        assert all(r["tags"] == ["newsletter"] for r in found)
        check_exports(client, account, kind, found)
        assert rows(client, account, kind, recipient=ok.upper()) == [r for r in found if r["recipient"] == ok]
        assert all_pages(client, account, kind, limit=1) == found
    other = new_account(relay.store)
    for kind in LogKind:
        assert rows(client, other, kind.value) == [], kind


# --- DMARC: reports uploaded through the API ------------------------------------------------------------


def test_dmarc_log_has_one_row_per_record_of_the_accounts_reports(
    client: TestClient, account: KeyedAccount
) -> None:
    domain = unique_domain()
    november = datetime(2026, 11, 1, tzinfo=UTC)
    made = [Row("192.0.2.5", 7), Row("198.51.100.9", 3, "quarantine", "fail", "fail")]
    for day, records, report_id in (
        (november, made[:1], "r-1"),
        (november + timedelta(days=1), made[1:], "r-2"),
    ):
        xml = aggregate_xml(domain, records, report_id=report_id, day=day, org="Reporter Inc")
        uploaded = client.post("/v1/dmarc/reports", content=xml, headers=account.auth)
        assert uploaded.status_code == 201, uploaded.text

    found = rows(client, account, "dmarc")
    assert [(r["source_ip"], r["count"], r["disposition"], r["dkim"], r["spf"]) for r in found] == [
        (m.ip, m.count, m.disposition, m.dkim, m.spf) for m in made
    ]
    assert [(r["report_id"], r["report_org"], r["domain"]) for r in found] == [
        ("r-1", "Reporter Inc", domain),
        ("r-2", "Reporter Inc", domain),
    ]
    assert (found[0]["time"], found[0]["end"]) == (
        "2026-11-01T00:00:00.000000Z",
        "2026-11-01T23:59:59.000000Z",
    )
    assert found[0]["dkim_results"] == [[domain, "s1", "pass"]]
    assert (found[0]["dmarc_pass"], found[1]["dmarc_pass"]) == (True, False)
    since = (november + timedelta(hours=12)).isoformat()
    assert [r["report_id"] for r in rows(client, account, "dmarc", since=since)] == ["r-2"]
    assert all_pages(client, account, "dmarc", limit=1) == found
    check_exports(client, account, "dmarc", found)
    assert rows(client, new_account(client.app.store), "dmarc") == []  # type: ignore[attr-defined]

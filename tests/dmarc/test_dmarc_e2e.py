"""Reports mailed to the real server's SMTP port (no AUTH, to dmarc@ the bounce domain), read back by
the API and the CLI."""

from __future__ import annotations

import json
import re
import smtplib
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from mailbeacon.store import Store
from mailbeacon.store.tables import inbound_messages
from tests.dmarc.reports import Row, aggregate_xml, report_mail, unique_domain
from tests.e2e.conftest import init_account
from tests.support import run_cli, running_server

pytestmark = pytest.mark.e2e

BOUNCE_DOMAIN = "bounces.track.test"


def mail_to_reports_address(port: int, sender: str, raw: bytes) -> int:
    """Sends like a reporter's server (no AUTH); the inbound log's id from the 250 reply."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo()
        client.mail(sender)
        assert client.rcpt(f"dmarc@{BOUNCE_DOMAIN}")[0] == 250
        code, reply = client.data(raw)
    assert code == 250, reply
    found = re.search(rb"received as inbound (\d+)", reply)
    assert found, reply
    return int(found.group(1))


def dmarc_report_of(database_url: str, inbound_id: int) -> int:
    store = Store.from_url(database_url)
    try:
        with store.read() as conn:
            row = conn.execute(select(inbound_messages).where(inbound_messages.c.id == inbound_id)).one()
    finally:
        store.dispose()
    assert row.kind == "dmarc_report"
    return int(row.explanation["dmarc_report_id"])


def test_reports_mailed_to_the_reports_address_are_stored(database_url: str, tmp_path: Path) -> None:
    name = f"dmarc-{uuid.uuid4().hex[:6]}"
    auth = {"Authorization": f"Bearer {init_account(database_url, name)}"}
    domain = unique_domain()
    rows = [Row("192.0.2.1", 9), Row("192.0.2.2", 3, "quarantine", "fail", "fail")]
    report = report_mail(aggregate_xml(domain, rows), domain)
    broken = (
        b"From: someone@example.net\r\nSubject: hello\r\n\r\nnot a report "
        + uuid.uuid4().hex.encode()
        + b"\r\n"
    )
    message = {
        "from": {"email": f"news@{domain}"},
        "to": [{"email": "ada@example.org"}],
        "subject": "Hi",
        "text": "Hi",
    }
    with running_server(database_url, tmp_path, env={"MAILBEACON_BOUNCE_DOMAIN": BOUNCE_DOMAIN}) as server:
        assert httpx.post(f"{server.base_url}/v1/messages", json=message, headers=auth).status_code == 201
        mail_to_reports_address(server.smtp_port, "noreply-dmarc-support@reporter.example", report)
        broken_inbound = mail_to_reports_address(server.smtp_port, "someone@example.net", broken)
        listed = httpx.get(
            f"{server.base_url}/v1/dmarc/reports", params={"domain": domain}, headers=auth
        ).json()
        summary = httpx.get(
            f"{server.base_url}/v1/dmarc/summary", params={"domain": domain}, headers=auth
        ).json()
    [stored] = listed["data"]
    assert (stored["source"], stored["kind"], stored["message_count"]) == ("smtp", "aggregate", 12)
    assert summary["totals"]["dispositions"] == {"none": 9, "quarantine": 3}

    cli = ("--database-url", database_url)
    printed = run_cli("dmarc", "summary", "--domain", domain, "--account", name, "--json", *cli)
    assert json.loads(printed)["totals"]["messages"] == 12
    # The broken mail reached no account: kept, rejected, for the operator.
    rejected_id = dmarc_report_of(database_url, broken_inbound)
    shown = json.loads(run_cli("dmarc", "show", str(rejected_id), *cli))
    assert shown["status"] == "rejected"
    assert shown["error"]
    raw_shown = run_cli("dmarc", "show", str(rejected_id), "--raw", *cli)
    assert raw_shown.replace("\n", "\r\n").encode() == broken

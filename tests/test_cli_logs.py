"""`mailbeacon logs KIND` as a user runs it: a real process streaming what the API's pages hold."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path

from starlette.testclient import TestClient

from mailbeacon.app import MailbeaconApp
from mailbeacon.bootstrap import prepare_store
from mailbeacon.config import Settings
from mailbeacon.store import Store
from tests.conftest import new_account
from tests.mail_helpers import body_of, copy_of, create_message, tracking_urls
from tests.support import mailbeacon_command, run_cli


def cli_fails(*args: str) -> str:
    result = subprocess.run([*mailbeacon_command(), *args], capture_output=True, text=True, check=False)
    assert result.returncode != 0, result.stdout
    return result.stderr


def test_logs_command_streams_the_whole_log(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    store = Store.from_url(db)
    prepare_store(store)
    account = new_account(store, "shop")
    settings = Settings(database_url=db, public_base_url="http://track.test", roles=["web"])
    with TestClient(MailbeaconApp(settings, store=store), base_url="http://track.test") as client:
        created = create_message(client, account.auth, campaign="autumn")
        for recipient in created["recipients"]:
            html = body_of(copy_of(client, account.auth, created["id"], recipient["id"]), "html")
            for link in tracking_urls(html, "c")[:2]:
                client.get(link.replace("http://track.test", ""))
        expected = client.get("/v1/logs/clicks", params={"limit": 1000}, headers=account.auth).json()["rows"]
    store.dispose()
    assert len(expected) == 4

    out = run_cli("logs", "clicks", "--database-url", db)
    assert [json.loads(line) for line in out.splitlines()] == expected
    out = run_cli(
        "logs",
        "clicks",
        "--format",
        "csv",
        "--recipient",
        "BOB@example.org",
        "--campaign",
        "autumn",
        "--since",
        "2000-01-01T00:00:00Z",
        "--account",
        account.account.name,
        "--database-url",
        db,
    )
    found = list(csv.DictReader(io.StringIO(out)))
    assert [(r["recipient"], r["url"]) for r in found] == [
        (r["recipient"], r["url"]) for r in expected if r["recipient"] == "bob@example.org"
    ]
    assert run_cli("logs", "opens", "--database-url", db) == ""
    assert run_cli(
        "logs", "clicks", "--tag", "none-such", "--format", "csv", "--database-url", db
    ).startswith("id,time,message_id,")
    assert "give a time zone" in cli_fails(
        "logs", "clicks", "--since", "2026-01-01T00:00", "--database-url", db
    )
    assert "DMARC records are not about one message" in cli_fails(
        "logs", "dmarc", "--campaign", "autumn", "--database-url", db
    )
    assert "'sends' is not one of" in cli_fails("logs", "sends", "--database-url", db)

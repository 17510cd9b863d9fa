"""The mail path's commands as a user runs them: dkim, smtp, suppressions, inbound from standard input."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import dkim

from mailbeacon.delivery.dkim import DkimKeyring
from tests.e2e.conftest import init_account
from tests.support import REPO, mailbeacon_command, run_cli


def cli_fails(*args: str) -> str:
    result = subprocess.run([*mailbeacon_command(), *args], capture_output=True, text=True, check=False)
    assert result.returncode != 0, result.stdout
    return result.stderr


def test_dkim_generate_writes_a_private_key_and_prints_its_record(tmp_path: Path) -> None:
    out = run_cli("dkim", "generate", "Sender.Example", "--selector", "s2026", "--data-dir", str(tmp_path))
    key_file = tmp_path / "dkim" / "s2026._domainkey.sender.example.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert str(key_file) in out
    record_line = next(
        line for line in out.splitlines() if line.startswith("s2026._domainkey.sender.example.")
    )
    txt = "".join(part for part in record_line.split('"')[1::2])
    assert txt.startswith("v=DKIM1; k=rsa; p=")
    # The printed record verifies what the stored key signs.
    from mailbeacon.delivery.dkim import sign

    found = DkimKeyring.from_directory(tmp_path / "dkim").key_for("news.sender.example")
    assert found is not None
    signed = sign(b"From: a@news.sender.example\r\nTo: b@example.org\r\nSubject: x\r\n\r\nhello\r\n", found)
    records = {b"s2026._domainkey.sender.example.": txt.encode()}
    assert dkim.verify(signed, dnsfunc=lambda name, timeout=5: records.get(name))
    assert "already holds a DKIM key" in cli_fails(
        "dkim", "generate", "sender.example", "--selector", "s2026", "--data-dir", str(tmp_path)
    )


def test_smtp_logins_networks_and_suppressions(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    init_account(db, "shop")
    out = run_cli("smtp", "credential", "shop-crm", "--track", "clicks", "--database-url", db)
    assert "password (shown only now): mbs_" in out
    assert "taken" in cli_fails("smtp", "credential", "shop-crm", "--database-url", db)
    assert "--track" in cli_fails("smtp", "credential", "other", "--track", "clickz", "--database-url", db)
    run_cli("smtp", "trust", "10.1.0.0/16", "--database-url", db)
    assert "already trusted" in cli_fails("smtp", "trust", "10.1.0.0/16", "--database-url", db)
    listed = run_cli("smtp", "list", "--database-url", db)
    assert "shop-crm" in listed
    assert "10.1.0.0/16 -> account 1" in listed
    run_cli("smtp", "revoke", "shop-crm", "--database-url", db)
    run_cli("smtp", "untrust", "10.1.0.0/16", "--database-url", db)
    listed = run_cli("smtp", "list", "--database-url", db)
    assert "shop-crm" not in listed
    assert "10.1.0.0/16" not in listed

    run_cli("suppressions", "add", "Someone@Example.org", "--database-url", db)
    run_cli("suppressions", "add", "other@example.org", "--reason", "complaint", "--database-url", db)
    rows = [
        line.split("\t")[:2] for line in run_cli("suppressions", "list", "--database-url", db).splitlines()
    ]
    assert rows == [["someone@example.org", "manual"], ["other@example.org", "complaint"]]
    run_cli("suppressions", "remove", "someone@example.org", "--database-url", db)
    assert "not suppressed" in cli_fails(
        "suppressions", "remove", "someone@example.org", "--database-url", db
    )
    assert "someone" not in run_cli("suppressions", "list", "--database-url", db)


def test_inbound_explain_reads_standard_input(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    init_account(db, "shop")
    bounce = (REPO / "tests" / "data" / "bounces" / "flufl.bounce" / "dsn_01.txt").read_bytes()
    result = subprocess.run(
        [*mailbeacon_command(), "inbound", "--explain", "-", "--database-url", db],
        input=bounce,
        capture_output=True,
        check=True,
    )
    explained = json.loads(result.stdout)
    assert explained["kind"] == "bounce"
    assert explained["matched"] is None
    assert explained["recipients"][0]["address"]

"""The dmarc commands, run as the real `mailbeacon` program."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

from tests.dmarc.corpus import CORPUS, EXPECTED, LARGE
from tests.e2e.conftest import init_account
from tests.support import mailbeacon_command, run_cli

SAMPLE = "dmarc-report-pypi/reports/dmarc-sample-3.xml"
BROKEN = "dmarc-report-pypi/reports/dmarc-invalid-3.xml"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*mailbeacon_command(), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )


def test_explain_prints_the_report_and_stores_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "never-made"
    env = {"MAILBEACON_DATA_DIR": str(data_dir)}
    started = time.perf_counter()
    printed = run_cli("dmarc", "--explain", str(CORPUS / LARGE), env=env)
    elapsed = time.perf_counter() - started
    explained = json.loads(printed)
    assert (explained["kind"], explained["domain"], explained["record_count"]) == (
        "aggregate",
        "example.com",
        2286,
    )
    assert explained["summary"]["totals"]["messages"] == EXPECTED[LARGE]["message_total"]
    assert not data_dir.exists()
    assert elapsed < 20  # a few seconds on a busy 2-core machine, most of it starting Python
    assert json.loads(run_cli("dmarc", "explain", str(CORPUS / SAMPLE), env=env))["report_id"] == "5555555555"


def test_explain_of_a_broken_report_exits_1_with_the_reason(tmp_path: Path) -> None:
    result = run("dmarc", "--explain", str(CORPUS / BROKEN), env={"MAILBEACON_DATA_DIR": str(tmp_path)})
    assert result.returncode == 1
    assert result.stdout == ""
    assert "not a readable report" in result.stderr
    assert "not-a-number" in result.stderr
    both = run("dmarc", "--explain", str(CORPUS / SAMPLE), "summary", "--domain", "x.example")
    assert both.returncode == 2


def test_import_then_summary(database_url: str) -> None:
    name = f"dmarc-cli-{uuid.uuid4().hex[:6]}"
    init_account(database_url, name)
    store = ("--database-url", database_url, "--account", name)
    files = [str(CORPUS / SAMPLE), str(CORPUS / (SAMPLE + ".gz")), str(CORPUS / BROKEN)]
    imported = run("dmarc", "import", *files, *store)
    assert imported.returncode == 1  # one was rejected
    first, again = imported.stdout.splitlines()
    assert "aggregate for example.net from Yahoo! Inc., 2 records, 8 messages" in first
    assert "already stored as report" in again
    assert "rejected" in imported.stderr
    assert "kept as rejected report" in imported.stderr

    summary = json.loads(run_cli("dmarc", "summary", "--domain", "example.net", "--json", *store))
    assert summary["totals"]["messages"] == 8
    assert (summary["totals"]["dmarc_pass"], summary["totals"]["dmarc_fail"]) == (5, 3)
    table = run_cli("dmarc", "summary", "--domain", "example.net", "--since", "2020-01-01", *store)
    assert "example.net: 1 aggregate reports" in table
    assert "203.0.113.3" in table
    listed = run_cli("dmarc", "list", *store)
    assert [line.split("\t")[1] for line in listed.splitlines()] == ["ok", "rejected"]

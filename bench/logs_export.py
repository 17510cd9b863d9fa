"""Exporting the clicks log: rows per second and the server's peak memory, against the database's own CSV.

One run:

* makes a fresh store (a SQLite file, or a PostgreSQL database it creates and drops) and fills it
  straight through the tables with one account, one message with ``--recipients`` copies and 8 links,
  and ``--rows`` click events (1,000,000 by default), with realistic values in every column;
* exports the same rows with the database's own client as a reference: ``sqlite3 -csv`` or psql's
  ``\\copy ... TO STDOUT WITH CSV``, running the very SQL the clicks log runs (without its batching);
* starts the real server (``mailbeacon serve --role web`` on loopback) and streams
  ``GET /v1/logs/clicks?format=csv`` and ``format=jsonl`` with httpx, counting the rows;
* reads the granian worker's peak resident memory (VmHWM in /proc/PID/status) before and after each
  export, so the growth an export of all the rows causes is measured, not guessed. A partial export
  (the first 50,000 rows) runs first: the full exports after it show whether memory grows with rows.

    .venv/bin/python bench/logs_export.py                       # SQLite, 1M rows
    .venv/bin/python bench/logs_export.py --store postgresql    # PostgreSQL at 127.0.0.1:5432

Exit status: 0 when every export had every row and the worker's peak grew by less than --max-growth-mib,
1 otherwise, 2 on a setup failure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

from mailbeacon.bootstrap import add_account, prepare_store
from mailbeacon.store import Store
from mailbeacon.store.logs import SPECS, LogFilter, LogKind
from mailbeacon.store.tables import links, messages, recipients
from tracking_vs_nginx import postgres_database  # bench/ is on the path when a bench runs as a script

HOST = "127.0.0.1"
SERVE = (sys.executable, "-m", "mailbeacon.cli", "serve", "--role", "web")
LINKS = 8
AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
)
NETWORKS = (
    ("US", 15169, "Google LLC", "Gmail", "webmail"),
    ("DE", 3320, "Deutsche Telekom AG", "Chrome", "desktop"),
)


def fail(message: str, code: int = 2) -> None:
    print(f"FAILED: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


# --- the store ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filled:
    account_id: int
    api_key: str
    message_id: int
    first_recipient: int


def fill_message(store: Store, recipient_count: int) -> Filled:
    created = add_account(store, "bench")
    now = datetime.now(UTC)
    with store.write() as conn:
        message_id = conn.execute(
            insert(messages)
            .values(
                account_id=created.account.id,
                created_at=now,
                from_email="news@sender.example",
                subject="Our November news",
                campaign="november",
                tags=["newsletter", "eu"],
                metadata={},
                headers={},
                html="<p>hello</p>",
                track_opens=True,
                track_clicks=True,
                track_unsubscribes=True,
                policy={},
                thread_id="<bench@sender.example>",
            )
            .returning(messages.c.id)
        ).scalar_one()
        conn.execute(
            insert(links),
            [
                {
                    "account_id": created.account.id,
                    "message_id": message_id,
                    "position": p,
                    "url": f"https://shop.example.com/articles/{p}?utm_source=newsletter&utm_medium=email",
                    "occurrences": 1,
                }
                for p in range(LINKS)
            ],
        )
        conn.execute(
            insert(recipients),
            [
                {
                    "account_id": created.account.id,
                    "message_id": message_id,
                    "email": f"reader{i}@example.org",
                    "status": "delivered",
                    "message_id_header": f"<mb.{i:08x}@sender.example>",
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(recipient_count)
            ],
        )
        first = conn.execute(
            recipients.select().with_only_columns(recipients.c.id).order_by(recipients.c.id).limit(1)
        ).scalar_one()
    return Filled(created.account.id, created.api_key, int(message_id), int(first))


START = datetime(2026, 11, 1, tzinfo=UTC)
STEP = timedelta(milliseconds=7)  # between two clicks
PART = 50_000  # rows of the first, partial export: the worker's peak after it is the baseline


def click_rows(filled: Filled, count: int, recipient_count: int, sqlite: bool) -> Iterator[tuple[Any, ...]]:
    for i in range(count):
        at = START + STEP * i
        country, asn, org, client, platform = NETWORKS[i % 2]
        human = i % 5 != 0
        yield (
            filled.account_id,
            filled.message_id,
            filled.first_recipient + i % recipient_count,
            "clicked",
            at.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else at,
            i % LINKS,
            f"203.0.{(i >> 8) % 256}.{i % 256}",
            AGENTS[i % len(AGENTS)],
            "GET",
            int(human) if sqlite else human,
            "human" if human else "scanner",
            None if human else "known scanner network",
            country,
            asn,
            org,
            client,
            platform,
        )


EVENT_COLUMNS = (
    "account_id, message_id, recipient_id, type, occurred_at, link_position, ip, user_agent, http_method, "
    "human, machine_class, machine_reason, country, asn, as_org, client, platform"
)


def fill_clicks(database_url: str, filled: Filled, count: int, recipient_count: int) -> None:
    if database_url.startswith("sqlite"):
        _fill_sqlite(database_url.removeprefix("sqlite:///"), filled, count, recipient_count)
    else:
        _fill_postgres(database_url, filled, count, recipient_count)


def _fill_sqlite(path: str, filled: Filled, count: int, recipient_count: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    marks = ", ".join("?" * 17)
    with conn:
        conn.executemany(
            f"INSERT INTO events ({EVENT_COLUMNS}) VALUES ({marks})",
            click_rows(filled, count, recipient_count, sqlite=True),
        )
    conn.close()


def _fill_postgres(database_url: str, filled: Filled, count: int, recipient_count: int) -> None:
    import psycopg

    with psycopg.connect(database_url) as conn, conn.cursor() as cursor:
        with cursor.copy(f"COPY events ({EVENT_COLUMNS}) FROM STDIN") as copy:
            for row in click_rows(filled, count, recipient_count, sqlite=False):
                copy.write_row(row)
        cursor.execute("ANALYZE events")


# --- the reference: the database's own CSV export --------------------------------------------------------


def clicks_sql(store: Store, account_id: int) -> str:
    spec = SPECS[LogKind.CLICKS]
    with store.read() as conn:
        query = spec.build(spec, conn, LogFilter(account_id=account_id))
        return str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))


@dataclass(frozen=True)
class Export:
    name: str
    rows: int
    bytes: int
    seconds: float
    first_byte_s: float | None = None
    hwm_before_kib: int | None = None
    hwm_after_kib: int | None = None

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


def reference_export(database_url: str, sql: str, out: Path) -> Export:
    if database_url.startswith("sqlite"):
        if shutil.which("sqlite3") is None:
            fail("the sqlite3 command is missing: apt-get install sqlite3")
        command = ["sqlite3", "-csv", "-header", database_url.removeprefix("sqlite:///"), sql]
        name = "sqlite3 -csv"
    else:
        if shutil.which("psql") is None:
            fail("the psql command is missing: apt-get install postgresql-client")
        flat = " ".join(sql.split())
        command = ["psql", "-X", "-q", database_url, "-c", f"\\copy ({flat}) TO STDOUT WITH CSV HEADER"]
        name = "psql \\copy"
    started = time.perf_counter()
    with out.open("wb") as sink:
        subprocess.run(command, stdout=sink, check=True)
    seconds = time.perf_counter() - started
    with out.open("rb") as written:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: written.read(1 << 20), b""))
    return Export(name, lines - 1, out.stat().st_size, seconds)


# --- the server -----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def children(pid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError), open(f"/proc/{entry.name}/stat") as stat:
            if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise LookupError(field)


@contextlib.contextmanager
def server(database_url: str, tmp: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    log = (tmp / "server.log").open("w")
    process = subprocess.Popen(
        [*SERVE, "--database-url", database_url, "--host", HOST, "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MAILBEACON_DATA_DIR": str(tmp / "data")},
        start_new_session=True,
    )
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                fail(f"the server exited:\n{(tmp / 'server.log').read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                fail("the server did not come up")
            time.sleep(0.2)
        workers = children(process.pid)
        if len(workers) != 1:
            fail(f"expected one granian worker under {process.pid}, found {workers}")
        yield base, workers[0]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def stream_export(base: str, key: str, fmt: str, worker: int, until: datetime | None = None) -> Export:
    before = status_kib(worker, "VmHWM")
    started = time.perf_counter()
    first: float | None = None
    newlines = 0
    size = 0
    headers = {"Authorization": f"Bearer {key}"}
    params = {"format": fmt} | ({"until": until.isoformat()} if until else {})
    with (
        httpx.Client(timeout=600) as client,
        client.stream("GET", f"{base}/v1/logs/clicks", params=params, headers=headers) as response,
    ):
        if response.status_code != 200:
            fail(f"{fmt}: HTTP {response.status_code}: {response.read()[:500]!r}")
        for chunk in response.iter_raw(1 << 20):
            if first is None:
                first = time.perf_counter() - started
            newlines += chunk.count(b"\n")
            size += len(chunk)
    seconds = time.perf_counter() - started
    rows = newlines - 1 if fmt == "csv" else newlines
    name = f"mailbeacon {fmt}" + (" (part)" if until else "")
    return Export(name, rows, size, seconds, first, before, status_kib(worker, "VmHWM"))


# --- the run --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--rows", type=int, default=1_000_000, help="click events (default %(default)s)")
    parser.add_argument("--recipients", type=int, default=10_000, help="copies of the message")
    parser.add_argument(
        "--max-growth-mib",
        type=float,
        default=16.0,
        help="fail when a full export raises the worker's peak RSS by more than this over the partial "
        "export before it (default %(default)s)",
    )
    return parser.parse_args(argv)


def report(exports: list[Export], reference: Export) -> None:
    print(
        f"\n{'export':<18} {'rows':>10} {'MB':>8} {'seconds':>8} {'rows/s':>10} {'vs ref':>7} "
        f"{'1st byte':>8} {'peak RSS before -> after (MiB)':>31}"
    )
    for e in [reference, *exports]:
        memory = ""
        if e.hwm_before_kib is not None and e.hwm_after_kib is not None:
            memory = f"{e.hwm_before_kib / 1024:.1f} -> {e.hwm_after_kib / 1024:.1f}"
        first = "" if e.first_byte_s is None else f"{e.first_byte_s:.3f}"
        print(
            f"{e.name:<18} {e.rows:>10,} {e.bytes / 1e6:>8.1f} {e.seconds:>8.2f} {e.rate:>10,.0f} "
            f"{e.rate / reference.rate:>7.2f} {first:>8} {memory:>31}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mb-logs-bench-")))
        if args.store == "sqlite":
            database_url = f"sqlite:///{tmp / 'mailbeacon.db'}"
        else:
            database_url = stack.enter_context(postgres_database(args.postgres_url))
        store = Store.from_url(database_url)
        prepare_store(store)
        started = time.perf_counter()
        filled = fill_message(store, args.recipients)
        fill_clicks(database_url, filled, args.rows, args.recipients)
        print(
            f"{args.store}: {args.rows:,} click events for 1 message, {args.recipients:,} recipients, "
            f"{LINKS} links, filled in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        sql = clicks_sql(store, filled.account_id)
        store.dispose()
        reference = reference_export(database_url, sql, tmp / "reference.csv")
        print(
            f"reference ({reference.name}): {reference.rows:,} rows in {reference.seconds:.2f} s", flush=True
        )
        exports = []
        with server(database_url, tmp) as (base, worker):
            # A partial export first: whatever one export needs at most is allocated by then, so the
            # full exports after it show whether memory grows with the number of rows.
            part = stream_export(base, filled.api_key, "csv", worker, until=START + STEP * PART)
            print(f"{part.name}: {part.rows:,} rows in {part.seconds:.2f} s", flush=True)
            for fmt in ("csv", "jsonl"):
                exports.append(stream_export(base, filled.api_key, fmt, worker))
                print(
                    f"{exports[-1].name}: {exports[-1].rows:,} rows in {exports[-1].seconds:.2f} s",
                    flush=True,
                )
        report([part, *exports], reference)
    failed = part.rows != min(PART, args.rows)
    for e in [reference, *exports]:
        if e.rows != args.rows:
            print(f"FAILED: {e.name} gave {e.rows:,} rows, not {args.rows:,}", file=sys.stderr)
            failed = True
    for e in exports:
        growth = ((e.hwm_after_kib or 0) - (e.hwm_before_kib or 0)) / 1024
        if growth > args.max_growth_mib:
            print(f"FAILED: {e.name} raised the worker's peak RSS by {growth:.1f} MiB", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""SMTP relay throughput: mailbeacon against Postfix, both relaying the same mail to Postfix's smtp-sink.

One run starts, on loopback ports of this machine:

* Postfix's `smtp-sink`, counting what it receives (`-c`), as the next hop of every relay;
* a throwaway Postfix instance (`postfix -c DIR start`, its queue on disk in a temporary directory)
  relaying everything from 127.0.0.0/8 to the sink;
* for each round and each `--workers` value, a fresh `mailbeacon serve` (new SQLite store, tracking
  on, 127.0.0.0/8 trusted for the default account) in smarthost mode towards the sink;

and sends the same load to each target with Postfix's `smtp-source`: `--messages` copies of one
prepared HTML newsletter (a complete RFC 5322 message of `--size` bytes on the wire, ~20 tracked
links, built from the real templates in tests/data/html-templates) over `--sessions` parallel
sessions, a new connection per message unless `--reuse`. For every run it reports:

* accepted msg/s: messages / the time smtp-source took to finish (every message answered 250);
* delivered msg/s: messages / the time from the start of sending until the sink's count went up by
  the number of messages (for "sink direct" both are the same thing);
* CPU ms per message spent by the target's own processes (from /proc, children included).

Before the rounds, a check run sends two messages through a separate mailbeacon to a second sink that
dumps what it receives (`smtp-sink -d`), and verifies that the copies have tracked links (/c/ URLs)
and an open pixel. After every mailbeacon run it reads the store: every message must be there, with
every tracked link recorded, status `sent`, one successful delivery attempt each and nothing left in
the queue. Postfix's log must show one `status=sent` per message.

    .venv/bin/python bench/relay_vs_postfix.py --messages 5000 --sessions 8 --workers 1 2 --repeat 3

Exit status: 0 when every count reconciles, 1 when one did not, 2 on a setup failure.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import email
import email.policy
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from types import FrameType

from sqlalchemy import func, select

from mailbeacon.config import default_database_url
from mailbeacon.store import Store
from mailbeacon.store.accounts import find_account_by_name
from mailbeacon.store.smtp_access import add_trusted_network
from mailbeacon.store.tables import deliveries, delivery_attempts, links, messages, recipients
from newsletter_corpus import build as build_newsletter
from newsletter_corpus import find_templates
from tracking_vs_nginx import HOST, Service, SetupError, free_port, http_get, start, stop

BENCH_DIR = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
SINK_HOSTNAME = "sink.bench.invalid"  # not Postfix's myhostname, or Postfix sees a mail loop
POSTFIX_HOSTNAME = "relay.bench.invalid"
SENDER = "news@example.com"
RECIPIENT = "reader@example.org"
TRUSTED = "127.0.0.0/8"
TARGET_SHARE = 0.60  # the product owner's floor: mailbeacon's delivered rate as a share of Postfix's
CLK_TCK = os.sysconf("SC_CLK_TCK")

# The pieces appended to the template newsletter: more links, as digests have, and a hidden preheader
# padding (a common trick to keep body text out of the inbox preview) that brings it to --size.
MORE_LINKS = (
    ("https://news.example.com/2024/05/email-deliverability-basics", "Deliverability, the basics"),
    ("https://news.example.com/2024/05/writing-subject-lines", "Subject lines that get read"),
    ("https://news.example.com/2024/05/images-off-design", "Designing for images off"),
    (
        "https://news.example.com/events/webinar-june?utm_source=weekly&amp;utm_medium=email",
        "Our June webinar",
    ),
    ("https://shop.example.com/books/email-design?ref=digest-21", "The email design book"),
    ("https://news.example.com/jobs?team=editorial&amp;utm_source=weekly", "We are hiring"),
)
PREHEADER_OPEN = (
    '<div style="display:none;font-size:1px;line-height:1px;max-height:0px;max-width:0px;opacity:0;'
    'overflow:hidden;mso-hide:all;">'
)
PREHEADER_FILL = "&#847;&zwnj;&nbsp;"

_SINK_COUNTERS = re.compile(rb"sess=(\d+) quit=\d+ mesg=(\d+)")
_TRACKED = re.compile(r"https?://[^/\s\"']+(/c/[A-Za-z0-9_-]+)")
_PIXEL = re.compile(r"https?://[^/\s\"']+(/o/[A-Za-z0-9_-]+\.gif)")
_HREF = re.compile(r'href="(https?://[^"]*)"')
_DESIGNER_COMMENT = re.compile(r"<!-- .*? -->", re.DOTALL)
_LOG_PROBLEM = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback")


# --- the message -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    path: Path  # LF line endings: smtp-source sends each line followed by CRLF
    wire_bytes: int  # its size on the wire (CRLF line endings), headers included
    html_links: int  # distinct http(s) links in the HTML
    hrefs: int  # http(s) href attributes


def _headers(size: int) -> str:
    return (
        f"From: Example News <{SENDER}>\n"
        f"To: Reader <{RECIPIENT}>\n"
        "Subject: The Weekly Digest, issue 21\n"
        f"Date: {formatdate(usegmt=True)}\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/html; charset=utf-8\n"
        "Content-Transfer-Encoding: 7bit\n"
        f"X-Bench: relay_vs_postfix {size}\n"
        "\n"
    )


def _wire(text: str) -> int:
    """Bytes on the wire: smtp-source sends each LF-terminated line of the file with CRLF."""
    return len(text.encode()) + text.count("\n")


def _padding(wire_bytes: int) -> str:
    """Hidden preheader filler taking exactly `wire_bytes` on the wire, in lines far below 998 bytes."""
    unit = len(PREHEADER_FILL)
    line = PREHEADER_FILL * 38
    full, rest = divmod(wire_bytes, len(line) + 2)
    return (line + "\n") * full + PREHEADER_FILL * (rest // unit) + " " * (rest % unit)


def build_message(size: int, directory: Path) -> Message:
    """The one-story newsletter of tests/data/html-templates (indentation stripped, as minifying mailers
    send it; its two non-ASCII characters as entities, so the body is 7bit), six more article links
    before the footer, and hidden preheader padding up to `size` bytes on the wire."""
    html = build_newsletter(find_templates(), 1).replace("\r\n", "\n")
    footer = html.find("<!-- FOOTER -->")
    if footer < 0:
        raise SetupError("the template newsletter has no <!-- FOOTER --> marker")
    more = "\n".join(
        '<tr><td style="padding: 4px 6.25%; font-family: sans-serif; font-size: 15px;">'
        f'<a href="{url}" target="_blank" style="color: #127DB3;">{title}</a></td></tr>'
        for url, title in MORE_LINKS
    )
    html = f"{html[:footer]}{more}\n{html[footer:]}"
    html = _DESIGNER_COMMENT.sub("", html)  # Outlook's <!--[if mso]> conditionals stay
    lines = [line.strip() for line in html.split("\n")]
    body = "".join(c if ord(c) < 128 else f"&#{ord(c)};" for c in "\n".join(line for line in lines if line))
    body += "\n"
    headers = _headers(size)
    at = body.index(">", body.index("<body")) + 1
    head, tail = headers + body[:at] + "\n" + PREHEADER_OPEN, "</div>" + body[at:]
    missing = size - _wire(head + tail)
    if missing < 0:
        raise SetupError(f"--size {size:,} is below the message without padding ({size - missing:,} bytes)")
    text = head + _padding(missing) + tail
    path = directory / "message.eml"
    path.write_bytes(text.encode())
    hrefs = _HREF.findall(body)
    return Message(path, _wire(text), len(set(hrefs)), len(hrefs))


# --- processes and their CPU time -------------------------------------------------------------------


def _proc_stats() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds of the process and of its waited-for children)."""
    found: dict[int, tuple[int, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                fields = stat.read().rpartition(b")")[2].split()
        except OSError:
            continue
        ticks = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        found[int(entry.name)] = (int(fields[1]), ticks / CLK_TCK)
    return found


def descendants(root: int, stats: dict[int, tuple[int, float]] | None = None) -> list[int]:
    stats = _proc_stats() if stats is None else stats
    children: dict[int, list[int]] = collections.defaultdict(list)
    for pid, (parent, _) in stats.items():
        children[parent].append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children[pid])
    return found


def tree_cpu(roots: Sequence[int]) -> float:
    """CPU seconds used by these processes and all their descendants, the reaped ones included."""
    stats = _proc_stats()
    return sum(stats[pid][1] for root in roots if root in stats for pid in descendants(root, stats))


# --- smtp-sink ----------------------------------------------------------------------------------------


class Sink:
    """smtp-sink counting messages (`-c`): the running counters go to its log after every '.'."""

    def __init__(self, tmp: Path, name: str, dump_dir: Path | None = None) -> None:
        self.port = free_port()
        argv = [SMTP_SINK, "-c", "-u", "postfix", "-h", SINK_HOSTNAME]
        if dump_dir is not None:
            dump_dir.mkdir()
            shutil.chown(dump_dir, "postfix")
            argv += ["-d", f"{dump_dir}/%H%M%S."]
        argv += [f"{HOST}:{self.port}", "256"]
        self.service = start(name, argv, tmp / f"{name}.log", self.port)

    def counters(self) -> tuple[int, int]:
        """(connections, messages) received so far: the last `sess=N quit=N mesg=N` the sink printed."""
        with self.service.log.open("rb") as log:
            size = log.seek(0, os.SEEK_END)
            log.seek(max(0, size - 512))
            found = _SINK_COUNTERS.findall(log.read())
        return (int(found[-1][0]), int(found[-1][1])) if found else (0, 0)

    def count(self) -> int:
        return self.counters()[1]

    def wait_count(self, target: int, deadline: float) -> float | None:
        """The monotonic time at which the count reached `target`, or None at the deadline."""
        while True:
            if self.count() >= target:
                return time.monotonic()
            if time.monotonic() > deadline or self.service.process.poll() is not None:
                return None
            time.sleep(0.005)

    def wait_ready(self) -> None:
        wait_smtp(self.service)


def wait_smtp(service: Service, timeout_s: float = 60.0) -> None:
    """Until a connection to the service's port is greeted with 220."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise SetupError(f"{service.name} exited with {service.process.returncode}:\n{service.tail()}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, service.port), timeout=2) as sock:
            if sock.recv(512).startswith(b"220"):
                sock.sendall(b"QUIT\r\n")
                return
        time.sleep(0.1)
    raise SetupError(f"{service.name} did not greet on port {service.port}:\n{service.tail()}")


# --- Postfix ----------------------------------------------------------------------------------------

POSTFIX_MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
maillog_file = {root}/log/maillog
myhostname = {hostname}
mydestination =
relayhost = [{host}]:{sink_port}
mynetworks = 127.0.0.0/8
inet_interfaces = {host}
inet_protocols = ipv4
smtp_dns_support_level = disabled
smtpd_tls_security_level = none
smtp_tls_security_level = none
alias_maps =
alias_database =
biff = no
"""


@dataclass
class Postfix:
    root: Path
    port: int

    @property
    def config(self) -> Path:
        return self.root / "conf"

    @property
    def maillog(self) -> Path:
        return self.root / "log" / "maillog"

    def master_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((self.root / "queue" / "pid" / "master.pid").read_text().split()[0])
        return None

    def log_counts(self) -> collections.Counter[str]:
        """Delivery outcomes in Postfix's log: status=sent, deferred, bounced ... per line."""
        text = self.maillog.read_text(errors="replace") if self.maillog.exists() else ""
        return collections.Counter(re.findall(r" status=([a-z]+)", text))


def _master_cf(port: int) -> str:
    """Debian's master.cf without chroot, with the public smtpd on our loopback port only."""
    lines = []
    for line in Path("/etc/postfix/master.cf").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split()
        if not line[0].isspace() and len(fields) >= 8:
            if fields[1] == "inet":
                continue
            fields[4] = "n"  # chroot: the queue is a temporary directory without /etc etc. inside
            line = " ".join(fields)
        lines.append(line)
    lines.append(f"{HOST}:{port} inet n - n - - smtpd")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def postfix_instance(root: Path, sink_port: int) -> Iterator[Postfix]:
    """A Postfix of its own (`postfix -c DIR`), stopped on the way out whatever happens."""
    instance = Postfix(root, free_port())
    for name in ("conf", "queue", "data", "log"):
        (root / name).mkdir(parents=True)
    for name in ("data", "log"):
        shutil.chown(root / name, "postfix", "postfix")
    (instance.config / "main.cf").write_text(
        POSTFIX_MAIN_CF.format(root=root, hostname=POSTFIX_HOSTNAME, host=HOST, sink_port=sink_port)
    )
    (instance.config / "master.cf").write_text(_master_cf(instance.port))
    started = subprocess.run(
        [POSTFIX, "-c", str(instance.config), "start"], capture_output=True, text=True, check=False
    )
    try:
        if started.returncode != 0:
            raise SetupError(f"postfix start failed ({started.returncode}): {started.stdout}{started.stderr}")
        yield instance
    finally:
        _postfix_stop(instance)


def _postfix_stop(instance: Postfix) -> None:
    pid = instance.master_pid()
    subprocess.run([POSTFIX, "-c", str(instance.config), "stop"], capture_output=True, check=False)
    if pid is None:
        return
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.1)
    if Path(f"/proc/{pid}").exists():
        print(f"  Postfix master {pid} did not stop; aborting it", file=sys.stderr)
        subprocess.run([POSTFIX, "-c", str(instance.config), "abort"], capture_output=True, check=False)
        for child in reversed(descendants(pid)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)


# --- mailbeacon -------------------------------------------------------------------------------------


@dataclass
class Mailbeacon:
    service: Service
    smtp_port: int
    database_url: str
    workers: int

    def worker_pids(self) -> list[int]:
        """granian's worker processes (children of `mailbeacon serve`), where the requests and mail run."""
        stats = _proc_stats()
        return [pid for pid, (parent, _) in stats.items() if parent == self.service.process.pid]

    def problems(self) -> list[str]:
        text = self.service.log.read_text(errors="replace")
        return [line for line in text.splitlines() if _LOG_PROBLEM.search(line)]


def trust_loopback(mailbeacon_bin: Path, data_dir: Path, database_url: str, env: dict[str, str]) -> str:
    """Trust 127.0.0.0/8 for the default account: `mailbeacon smtp trust` when this version has it."""
    probe = subprocess.run(
        [str(mailbeacon_bin), "smtp", "trust", "--help"], capture_output=True, env=env, check=False
    )
    if probe.returncode == 0:
        done = subprocess.run(
            [
                str(mailbeacon_bin),
                "smtp",
                "trust",
                TRUSTED,
                "--account",
                "default",
                "--data-dir",
                str(data_dir),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if done.returncode != 0:
            raise SetupError(f"mailbeacon smtp trust failed: {done.stdout}{done.stderr}")
        return "mailbeacon smtp trust"
    store = Store.from_url(database_url)
    try:
        with store.write() as conn:
            account = find_account_by_name(conn, "default")
            if account is None:
                raise SetupError("mailbeacon init made no account named 'default'")
            add_trusted_network(conn, account.id, TRUSTED)
    finally:
        store.dispose()
    return "mailbeacon.store.smtp_access.add_trusted_network"


@contextlib.contextmanager
def mailbeacon_instance(
    tmp: Path, name: str, sink_port: int, workers: int, extra_env: dict[str, str]
) -> Iterator[Mailbeacon]:
    """`mailbeacon init` on a fresh data directory, loopback trusted, then `serve` towards the sink."""
    data_dir = tmp / name
    mailbeacon_bin = VENV_BIN / "mailbeacon"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    init = subprocess.run(
        [str(mailbeacon_bin), "init", "--data-dir", str(data_dir)], capture_output=True, text=True, env=env
    )
    if init.returncode != 0:
        raise SetupError(f"mailbeacon init failed: {init.stdout}{init.stderr}")
    database_url = default_database_url(data_dir)
    trust_loopback(mailbeacon_bin, data_dir, database_url, env)
    http_port, smtp_port = free_port(), free_port()
    serve_env = {
        **env,
        "MAILBEACON_DELIVERY_MODE": "smarthost",
        "MAILBEACON_SMARTHOST": f"{HOST}:{sink_port}",
        "MAILBEACON_SMARTHOST_TLS": "none",
        "MAILBEACON_PUBLIC_BASE_URL": f"http://{HOST}:{http_port}",
        **extra_env,
    }
    argv = [str(mailbeacon_bin), "serve", "--data-dir", str(data_dir), "--port", str(http_port)]
    argv += ["--smtp-port", str(smtp_port), "--workers", str(workers)]
    service = start(name, argv, tmp / f"{name}.log", http_port, env=serve_env, cwd=tmp)
    try:
        _wait_mailbeacon(service, smtp_port, workers)
        yield Mailbeacon(service, smtp_port, database_url, workers)
    finally:
        stop(service)


def _wait_mailbeacon(service: Service, smtp_port: int, workers: int, timeout_s: float = 90.0) -> None:
    """Every worker has its SMTP listener up (one log line each), and HTTP answers."""
    deadline = time.monotonic() + timeout_s
    while service.log.read_text(errors="replace").count("SMTP listening on") < workers:
        if service.process.poll() is not None or time.monotonic() > deadline:
            raise SetupError(f"{service.name} did not start its SMTP listeners:\n{service.tail()}")
        time.sleep(0.1)
    while True:
        with contextlib.suppress(OSError):
            if http_get(service.port, "/healthz", timeout=2.0)[0] < 500:
                break
        if time.monotonic() > deadline:
            raise SetupError(f"{service.name} does not answer HTTP:\n{service.tail()}")
        time.sleep(0.1)
    wait_smtp(Service(service.name, service.process, service.log, smtp_port))


@dataclass(frozen=True)
class StoreCounts:
    messages: int
    statuses: dict[str, int]
    links: int
    attempts: dict[str, int]
    queued: int

    def summary(self) -> str:
        statuses = ", ".join(f"{k} {v:,}" for k, v in sorted(self.statuses.items()))
        attempts = ", ".join(f"{k} {v:,}" for k, v in sorted(self.attempts.items()))
        return (
            f"{self.messages:,} messages; recipients: {statuses}; {self.links:,} tracked links; "
            f"attempts: {attempts}; {self.queued:,} left in the delivery queue"
        )


def store_counts(database_url: str) -> StoreCounts:
    store = Store.from_url(database_url)
    try:
        with store.read() as conn:
            total = conn.execute(select(func.count()).select_from(messages)).scalar_one()
            statuses = conn.execute(select(recipients.c.status, func.count()).group_by(recipients.c.status))
            link_count = conn.execute(select(func.count()).select_from(links)).scalar_one()
            attempts = conn.execute(
                select(delivery_attempts.c.outcome, func.count()).group_by(delivery_attempts.c.outcome)
            )
            queued = conn.execute(select(func.count()).select_from(deliveries)).scalar_one()
            return StoreCounts(
                int(total),
                {str(s): int(n) for s, n in statuses},
                int(link_count),
                {str(o): int(n) for o, n in attempts},
                int(queued),
            )
    finally:
        store.dispose()


# --- smtp-source ------------------------------------------------------------------------------------


def run_source(port: int, message: Message, count: int, args: argparse.Namespace) -> tuple[float, float]:
    """Send `count` messages with smtp-source: (start, end) on the monotonic clock. Any refusal fails."""
    argv = [SMTP_SOURCE, "-s", str(args.sessions), "-m", str(count), "-F", str(message.path)]
    argv += ["-f", SENDER, "-t", RECIPIENT]
    if args.reuse:
        argv.append("-d")
    argv.append(f"{HOST}:{port}")
    began = time.monotonic()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = process.communicate(timeout=args.timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    ended = time.monotonic()
    if process.returncode != 0:
        raise SetupError(f"smtp-source failed ({process.returncode}): {out.decode(errors='replace')[-2000:]}")
    return began, ended


# --- the runs ---------------------------------------------------------------------------------------


@dataclass
class Run:
    messages: int
    accepted_s: float
    delivered_s: float | None  # None: the sink never got them all within --timeout
    cpu_s: float
    sink_connections: int = 0  # connections to the sink closed between the start and count_connections()
    base_connections: int = 0
    checks: list[str] = field(default_factory=list)
    failed: bool = False

    @property
    def accepted_rate(self) -> float:
        return self.messages / self.accepted_s

    @property
    def delivered_rate(self) -> float:
        return self.messages / self.delivered_s if self.delivered_s else 0.0

    @property
    def cpu_ms_per_message(self) -> float:
        return 1000 * self.cpu_s / self.messages


@dataclass
class Target:
    name: str
    kind: str  # "sink", "postfix" or "mailbeacon"
    workers: int = 0
    runs: list[Run] = field(default_factory=list)

    def median(self, attr: str) -> float:
        return statistics.median(float(getattr(run, attr)) for run in self.runs)


def send_and_wait(
    port: int, sink: Sink, message: Message, count: int, args: argparse.Namespace, cpu_roots: Sequence[int]
) -> Run:
    """One load: smtp-source to `port`, then until the sink has `count` more messages."""
    base_connections, base = sink.counters()
    cpu_before = tree_cpu(cpu_roots)
    began, ended = run_source(port, message, count, args)
    reached = sink.wait_count(base + count, began + args.timeout)
    run = Run(count, ended - began, None if reached is None else reached - began, 0.0)
    time.sleep(0.5)  # anything more than `count` would show now: a copy delivered twice
    run.base_connections = base_connections
    received = sink.count() - base
    if received != count:
        run.failed = True
        run.checks.append(f"MISMATCH: the sink received {received:,} messages for {count:,} sent")
    run.cpu_s = tree_cpu(cpu_roots) - cpu_before
    return run


def count_connections(run: Run, sink: Sink) -> None:
    """smtp-sink counts a connection when it ends: call this once the relay has closed its own."""
    run.sink_connections = sink.counters()[0] - run.base_connections


def wait_postfix_log(postfix: Postfix, before: collections.Counter[str], count: int, run: Run) -> None:
    deadline = time.monotonic() + 30
    while True:
        now = postfix.log_counts()
        done = now["sent"] - before["sent"]
        if done >= count or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    other = {k: v - before[k] for k, v in now.items() if k != "sent" and v != before[k]}
    line = f"Postfix's log: {done:,} status=sent" + (f", other: {other}" if other else "")
    if done != count or other:
        run.failed = True
        line = f"MISMATCH: {line} for {count:,} messages"
    run.checks.append(line)


def wait_store(mailbeacon: Mailbeacon, expected: int, timeout_s: float = 120.0) -> StoreCounts:
    """The store's counts once every copy is `sent` (or at the timeout)."""
    deadline = time.monotonic() + timeout_s
    while True:
        counts = store_counts(mailbeacon.database_url)
        if counts.statuses.get("sent", 0) >= expected or time.monotonic() > deadline:
            return counts
        time.sleep(0.5)


def verify_store(mailbeacon: Mailbeacon, expected: int, run: Run) -> None:
    counts = wait_store(mailbeacon, expected)
    ok = (
        counts.messages == expected
        and counts.statuses == {"sent": expected}
        and counts.attempts == {"sent": expected}
        and counts.queued == 0
        and counts.links > 0
        and counts.links % expected == 0
    )
    line = f"store: {counts.summary()} ({counts.links / max(1, counts.messages):.1f} links per message)"
    if not ok:
        run.failed = True
        line = f"MISMATCH with {expected:,} messages expected: {line}"
    run.checks.append(line)
    problems = mailbeacon.problems()
    if problems:
        run.checks.append(f"log: {len(problems)} warning/error lines, e.g. {problems[0][:300]}")


def print_run(target: Target, run: Run) -> None:
    delivered = f"{run.delivered_rate:>8,.0f}" if run.delivered_s else "   never"
    print(
        f"  {target.name:<24} accepted {run.accepted_rate:>7,.0f} msg/s ({run.accepted_s:6.2f} s)"
        f"  delivered {delivered} msg/s  CPU {run.cpu_ms_per_message:5.2f} ms/msg"
        f"  ({run.sink_connections:,} connections to the sink)",
        flush=True,
    )
    for line in run.checks:
        print(f"  {'!!! ' if line.startswith('MISMATCH') else ''}{target.name}: {line}", flush=True)


def measure_mailbeacon(
    target: Target, tmp: Path, sink: Sink, message: Message, args: argparse.Namespace, label: str
) -> None:
    name = f"mailbeacon-w{target.workers}-{label}"
    with mailbeacon_instance(tmp, name, sink.port, target.workers, args.env) as mb:
        if args.warmup:
            warm = send_and_wait(mb.smtp_port, sink, message, args.warmup, args, [])
            if warm.failed or warm.delivered_s is None:
                raise SetupError(f"{name}: the warm-up did not go through: {warm.checks}")
            wait_store(mb, args.warmup)
        run = send_and_wait(mb.smtp_port, sink, message, args.messages, args, [mb.service.process.pid])
        verify_store(mb, args.warmup + args.messages, run)
    count_connections(run, sink)  # mailbeacon has closed its connections (QUIT) on the way out
    shutil.rmtree(tmp / name, ignore_errors=True)
    target.runs.append(run)
    print_run(target, run)


# --- the tracked-links check ------------------------------------------------------------------------


def check_tracking(tmp: Path, message: Message, args: argparse.Namespace) -> str:
    """Two messages through a mailbeacon whose smarthost is a sink that keeps what it receives."""
    dumps = tmp / "dumps"
    sink = Sink(tmp, "sink-dump", dump_dir=dumps)
    try:
        sink.wait_ready()
        with mailbeacon_instance(tmp, "mailbeacon-check", sink.port, 1, args.env) as mb:
            run_source(mb.smtp_port, message, 2, args)
            if sink.wait_count(2, time.monotonic() + 60) is None:
                raise SetupError(
                    f"the check sink received {sink.count()} of 2 messages:\n{mb.service.tail()}"
                )
            wait_store(mb, 2, timeout_s=30)
    finally:
        stop(sink.service)
    files = sorted(p for p in dumps.iterdir() if p.is_file())
    if len(files) != 2:
        raise SetupError(f"the check sink dumped {len(files)} files for 2 messages")
    original = message.path.read_text()
    lines = []
    for path in files:
        copy = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        html = next(
            (str(part.get_content()) for part in copy.walk() if part.get_content_type() == "text/html"), ""
        )
        tracked = _TRACKED.findall(html)
        pixels = _PIXEL.findall(html)
        untracked = [re.sub(r"/u/\S+", "/u/TOKEN", url) for url in _HREF.findall(html) if "/c/" not in url]
        if not tracked or len(pixels) != 1 or html == original:
            raise SetupError(
                f"the copy {path.name} is not tracked: {len(tracked)} /c/ links, {len(pixels)} pixels"
            )
        lines.append(
            f"{len(tracked)} of the {message.hrefs} http(s) hrefs rewritten to /c/ URLs "
            f"({len(set(tracked))} distinct; left as they were: {untracked or 'none'}), "
            f"{len(pixels)} open pixel, Received: {_by(copy.get_all('Received') or [])}"
        )
    return "; ".join(sorted(set(lines)))


def _by(received: Sequence[object]) -> str:
    """The hosts that added Received lines, newest first: the sink's own, then the relay's."""
    return " < ".join(
        found.group(1) for value in received if (found := re.search(r"\bby (\S+ \(\S+\))", str(value)))
    )


# --- profiling --------------------------------------------------------------------------------------


def profile_mailbeacon(
    tmp: Path, sink: Sink, message: Message, args: argparse.Namespace, workers: int, out_dir: Path
) -> None:
    """py-spy on every granian worker during one more load, not counted in the results."""
    out_dir.mkdir(parents=True, exist_ok=True)
    py_spy = VENV_BIN / "py-spy"
    name = f"mailbeacon-profile-w{workers}"
    with mailbeacon_instance(tmp, name, sink.port, workers, args.env) as mb:
        spies = []
        for pid in mb.worker_pids():
            output = out_dir / f"py-spy-w{workers}-{pid}.txt"
            argv = [str(py_spy), "record", "-p", str(pid), "-d", str(args.profile_seconds), "-r", "200"]
            argv += ["-f", "raw", "-o", str(output)]
            spies.append(
                (subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT), output)
            )
        time.sleep(1.0)  # py-spy attaches
        count = min(args.messages, args.profile_messages)
        run = send_and_wait(mb.smtp_port, sink, message, count, args, [mb.service.process.pid])
        for spy, _ in spies:
            try:
                spy.wait(timeout=args.profile_seconds + 60)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
    shutil.rmtree(tmp / name, ignore_errors=True)
    print(
        f"profile, {workers} worker(s), py-spy attached (not comparable): accepted {run.accepted_rate:,.0f}"
        f" msg/s, delivered {run.delivered_rate:,.0f} msg/s; raw stacks in {out_dir}"
    )
    print_profile([output for _, output in spies])


# py-spy counts threads parked on a condition variable as busy; granian's and anyio's idle worker threads
# wait there. Their samples are left out.
IDLE_LEAVES = {"Condition.wait (threading.py)"}


def _function(frame: str) -> str:
    """`name (package/module.py:123)` -> `name (package/module.py)`: grouped by function, not by line."""
    return re.sub(r":\d+\)$", ")", frame)


def _package(function: str) -> str:
    found = re.search(r"\(([^/)]+)", function)
    return found.group(1).removesuffix(".py") if found else function


def print_profile(files: Sequence[Path], top: int = 20) -> None:
    own: collections.Counter[str] = collections.Counter()
    packages: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = idle = 0
    for path in files:
        if not path.exists():
            print(f"  no profile in {path}")
            continue
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [_function(frame) for frame in stack.split(";")]
            if frames[-1] in IDLE_LEAVES:
                idle += count
                continue
            total += count
            own[frames[-1]] += count
            packages[_package(frames[-1])] += count
            for function in set(frames):
                if function.split("(", 1)[-1].startswith("mailbeacon/"):
                    inclusive[function] += count
    if not total:
        return
    print(f"  {total:,} busy samples in all workers ({idle:,} of idle threads left out)")
    print("  own time by package (the leaf frame's top-level package or stdlib module):")
    for package, count in packages.most_common(12):
        print(f"    {count / total:6.1%}  {package}")
    print("  own time by function:")
    for function, count in own.most_common(top):
        print(f"    {count / total:6.1%}  {function}")
    print("  inclusive time of mailbeacon's functions:")
    for function, count in inclusive.most_common(top):
        print(f"    {count / total:6.1%}  {function}")


# --- report and main --------------------------------------------------------------------------------


def report(targets: list[Target], args: argparse.Namespace, message: Message) -> None:
    postfix = next(t for t in targets if t.kind == "postfix")

    def share(target: Target) -> float:
        # Each run against Postfix's run of the same round (minutes apart at most).
        return statistics.median(
            mine.delivered_rate / theirs.delivered_rate if theirs.delivered_rate else 0.0
            for mine, theirs in zip(target.runs, postfix.runs, strict=True)
        )

    print()
    print(
        f"Results: smtp-source -s {args.sessions} -m {args.messages}{' -d' if args.reuse else ''}, "
        f"a {message.wire_bytes:,}-byte HTML message ({message.hrefs} links, {message.html_links} distinct), "
        f"median of {len(postfix.runs)} round(s)"
    )
    if args.env:
        print(f"mailbeacon environment: {' '.join(f'{k}={v}' for k, v in args.env.items())}")
    header = (
        f"{'target':<24} {'accepted/s':>10} {'delivered/s':>11} {'vs Postfix':>10} {'CPU ms/msg':>10}"
        f" {'conns':>6}"
        "  each round (accepted / delivered msg/s)"
    )
    print(header)
    print("-" * len(header))
    for target in targets:
        runs = ", ".join(f"{run.accepted_rate:,.0f} / {run.delivered_rate:,.0f}" for run in target.runs)
        print(
            f"{target.name:<24} {target.median('accepted_rate'):>10,.0f}"
            f" {target.median('delivered_rate'):>11,.0f} {share(target):>10.1%}"
            f" {target.median('cpu_ms_per_message'):>10.2f}"
            f" {target.median('sink_connections'):>6,.0f}  {runs}"
        )
    print("(vs Postfix: median over rounds of the target's delivered rate / Postfix's in the same round;")
    print(" CPU: the target's own processes, children included, from the start of sending to delivery;")
    print(" conns: connections the sink received from the target (mailbeacon: its warm-up's included))")
    print()
    for target in targets:
        if target.kind == "mailbeacon":
            verdict = "met" if share(target) >= TARGET_SHARE else "NOT met"
            print(
                f"target: mailbeacon delivered >= {TARGET_SHARE:.0%} of Postfix: {share(target):.1%}"
                f" -> {verdict} ({target.name})"
            )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=5000, help="messages per run (default 5000)")
    parser.add_argument("--sessions", type=int, default=8, help="parallel smtp-source sessions (default 8)")
    parser.add_argument("--size", type=int, default=20480, help="message size on the wire (default 20480)")
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1],
        help="mailbeacon worker processes; several values run one mailbeacon target each (default 1)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="rounds over all targets; medians are reported")
    parser.add_argument(
        "--warmup",
        type=int,
        default=200,
        help="messages sent to each instance before measuring (default 200)",
    )
    parser.add_argument("--reuse", action="store_true", help="smtp-source -d: one connection per session")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed for one run")
    parser.add_argument("--no-check", action="store_true", help="skip the tracked-links check run")
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="afterwards, profile mailbeacon with py-spy into DIR"
    )
    parser.add_argument("--profile-seconds", type=int, default=10, help="py-spy duration (default 10)")
    parser.add_argument(
        "--profile-messages", type=int, default=1000, help="messages of the profiled load (default 1000)"
    )
    parser.add_argument(
        "--mailbeacon-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for mailbeacon serve (repeatable)",
    )
    args = parser.parse_args(argv)
    if any("=" not in item for item in args.mailbeacon_env):
        parser.error("--mailbeacon-env takes NAME=VALUE")
    args.env = dict(item.split("=", 1) for item in args.mailbeacon_env)
    if min(args.messages, args.sessions, args.repeat, *args.workers) < 1 or args.warmup < 0:
        parser.error("--messages, --sessions, --repeat and --workers must be positive")
    return args


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    for tool in (SMTP_SINK, SMTP_SOURCE, POSTFIX):
        if not Path(tool).exists():
            print(f"{tool} is not installed (apt-get install postfix)", file=sys.stderr)
            return 2
    if os.geteuid() != 0:
        print("run as root: the throwaway Postfix and smtp-sink -u postfix need it", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background
    try:
        with contextlib.ExitStack() as stack:
            return _run(args, stack)
    except SetupError as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; every process started was stopped", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace, stack: contextlib.ExitStack) -> int:
    # Under /var: Postfix writes its log only under maillog_file_prefixes (Debian: /var, /dev/stdout).
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mailbeacon-relay-", dir="/var/tmp")))
    os.chmod(tmp, 0o755)  # noqa: S103 (user postfix enters it: the queue, the log, smtp-sink's dumps)
    message = build_message(args.size, tmp)
    sink = Sink(tmp, "smtp-sink")
    stack.callback(stop, sink.service)
    sink.wait_ready()
    postfix = stack.enter_context(postfix_instance(tmp / "postfix", sink.port))
    wait_smtp(Service("postfix", sink.service.process, postfix.maillog, postfix.port))
    master = postfix.master_pid()
    if master is None:
        raise SetupError("Postfix wrote no master.pid")
    print(
        f"smtp-sink on :{sink.port}, Postfix on :{postfix.port} (master {master}); message "
        f"{message.wire_bytes:,} bytes, {message.hrefs} links ({message.html_links} distinct)",
        flush=True,
    )
    if not args.no_check:
        print(f"check: {check_tracking(tmp, message, args)}", flush=True)

    direct = Target("sink direct", "sink")
    relay = Target("Postfix", "postfix")
    targets = [direct, relay]
    targets += [
        Target(f"mailbeacon, {w} worker{'s' if w > 1 else ''}", "mailbeacon", w) for w in args.workers
    ]
    if args.warmup:
        send_and_wait(sink.port, sink, message, args.warmup, args, [])
        before = postfix.log_counts()
        warm = send_and_wait(postfix.port, sink, message, args.warmup, args, [])
        wait_postfix_log(postfix, before, args.warmup, warm)
        if warm.failed:
            raise SetupError(f"the Postfix warm-up did not reconcile: {warm.checks}")
        time.sleep(3)  # the connections Postfix cached close before the first measured run
    for round_number in range(args.repeat):
        print(f"round {round_number + 1}/{args.repeat}", flush=True)
        run = send_and_wait(sink.port, sink, message, args.messages, args, [sink.service.process.pid])
        count_connections(run, sink)
        direct.runs.append(run)
        print_run(direct, run)
        before = postfix.log_counts()
        run = send_and_wait(postfix.port, sink, message, args.messages, args, [master])
        wait_postfix_log(postfix, before, args.messages, run)
        time.sleep(3)  # Postfix closes the connections it cached after smtp_connection_cache_time_limit (2 s)
        count_connections(run, sink)
        relay.runs.append(run)
        print_run(relay, run)
        for target in targets[2:]:
            measure_mailbeacon(target, tmp, sink, message, args, f"r{round_number + 1}")
    report(targets, args, message)
    if args.profile is not None:
        print()
        for workers in args.workers:
            profile_mailbeacon(tmp, sink, message, args, workers, args.profile)
    failed = [t.name for t in targets if any(r.failed or r.delivered_s is None for r in t.runs)]
    if failed:
        print(f"counts did not reconcile for: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Recorded opens and clicks per second: mailbeacon against nginx serving the same GIF.

One run starts, on loopback ports of this machine:

* nginx (a throwaway config in a temporary directory) serving the 43-byte transparent GIF with the
  same cache headers as mailbeacon's pixel, for every path under /o/ and /c/;
* a raw granian ASGI app returning the same GIF and recording nothing (bench/raw_asgi_gif.py), the
  ceiling of any Python handler on granian;
* `mailbeacon serve --demo` on a fresh SQLite file (or a PostgreSQL database it creates and drops);

creates one message with several recipients, takes each recipient's open pixel URL and click URL
from the tracked MIME copies, and runs wrk with the same settings against each target, rotating
through the recipients' URLs with a small Lua script (nginx and the raw app receive exactly the same
request lines as mailbeacon's pixel). After every mailbeacon run it compares the opens or clicks the
stats API reports as recorded during the run with the responses wrk counted, and says so loudly when
they differ. wrk does not follow redirects: a click is one request answered by a 302.

    .venv/bin/python bench/tracking_vs_nginx.py --duration 10 --connections 64 --workers 1 --store sqlite

Exit status: 0 when every count checks out, 1 when a recorded count could not be reconciled with
wrk's, 2 on a setup failure.
"""

from __future__ import annotations

import argparse
import contextlib
import email
import email.policy
import http.client
import json
import os
import re
import secrets
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
from pathlib import Path
from types import FrameType
from typing import Any

from mailbeacon.tracking.pixel import TRANSPARENT_GIF

BENCH_DIR = Path(__file__).resolve().parent
HOST = "127.0.0.1"
USER_AGENT = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
# The headers mailbeacon sends with its pixel (mailbeacon.tracking.handler._GIF_HEADERS).
NO_STORE = "no-store, no-cache, must-revalidate, private, max-age=0"
LINKS = (
    "https://example.com/articles/spring-sale",
    "https://example.com/shop?utm_source=newsletter&utm_medium=email",
    "https://www.example.org/blog/2024/how-we-track",
    "https://example.net/account/settings",
)
TARGETS = {"pixel": 0.30, "click": 0.30}  # the product owner's floors, as a share of nginx's rate

WRK_LUA = r"""
-- Rotate through the request paths listed in a file (args[1]), one per line. The requests are
-- formatted once in init(); request() only picks the next one and counts what it hands to wrk.
local threads = {}
local created = 0

function setup(thread)
  created = created + 1
  thread:set("thread_number", created)
  table.insert(threads, thread)
end

function init(args)
  local prepared = {}
  for line in io.lines(args[1]) do
    if #line > 0 then
      prepared[#prepared + 1] = wrk.format("GET", line)
    end
  end
  bench_requests = prepared
  bench_next = ((thread_number - 1) * 7919) % #prepared
  -- wrk calls request() once on its first thread, before the run, to check the script's requests.
  sent = thread_number == 1 and -1 or 0
end

function request()
  bench_next = bench_next % #bench_requests + 1
  sent = sent + 1
  return bench_requests[bench_next]
end

function done(summary, latency, requests)
  local total_sent = 0
  for _, thread in ipairs(threads) do
    total_sent = total_sent + thread:get("sent")
  end
  local e = summary.errors
  io.write(string.format(
    'WRK-RESULT {"duration_us": %d, "requests": %d, "sent": %d, "bytes": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, ' ..
    '"status_errors": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"mean_us": %.1f}\n',
    summary.duration, summary.requests, total_sent, summary.bytes,
    e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
"""

NGINX_CONF = """\
{user}
worker_processes {workers};
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 75s;
    keepalive_requests 100000000;
    open_file_cache max=16 inactive=60s;
    server_tokens off;
    etag off;
    server {{
        listen {host}:{port} backlog=4096;
        root {tmp}/www;
        location / {{
            rewrite ^ /pixel.gif break;
            default_type image/gif;
            types {{ }}
            add_header Cache-Control "{no_store}";
            add_header Pragma "no-cache";
            add_header Expires "0";
        }}
    }}
}}
"""


class SetupError(RuntimeError):
    """Something the benchmark needs did not come up."""


# --- processes ------------------------------------------------------------------------------------


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def group_cpu_seconds(service: Service) -> float:
    """CPU time (user + system) used so far by every live process in the service's process group."""
    try:
        group = os.getpgid(service.process.pid)
    except ProcessLookupError:
        return 0.0
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command's closing parenthesis: state, ppid, pgrp, ... utime is the 12th, stime the 13th.
        if int(fields[2]) == group:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def start(name: str, argv: Sequence[str], log: Path, port: int, **kwargs: Any) -> Service:
    with log.open("wb") as out:
        # A session of its own: the whole process group (granian's workers, nginx's) is stopped as one.
        process = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            **kwargs,
        )
    return Service(name, process, log, port)


def stop(service: Service, grace_s: float = 15.0) -> None:
    """SIGTERM the service's process group, then SIGKILL whatever is left after the grace period."""
    process = service.process
    try:
        pgid = os.getpgid(process.pid)
    except ProcessLookupError:
        process.wait()
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        print(f"  {service.name} did not stop within {grace_s:.0f} s; killing it", file=sys.stderr)
    # Workers of the group that outlive their parent are killed too.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    process.wait()


def wait_http(service: Service, path: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise SetupError(f"{service.name} exited with {service.process.returncode}:\n{service.tail()}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            status, _, _ = http_get(service.port, path, timeout=2.0)
            if status < 500:
                return
        time.sleep(0.1)
    raise SetupError(
        f"{service.name} did not answer on port {service.port} in {timeout_s:.0f} s:\n{service.tail()}"
    )


def wait_for_line(service: Service, pattern: re.Pattern[str], timeout_s: float = 60.0) -> re.Match[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = pattern.search(service.log.read_text(errors="replace"))
        if found:
            return found
        if service.process.poll() is not None:
            break
        time.sleep(0.1)
    raise SetupError(f"{service.name} never printed {pattern.pattern!r}:\n{service.tail()}")


# --- HTTP ------------------------------------------------------------------------------------------


def http_get(
    port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 30.0
) -> tuple[int, dict[str, str], bytes]:
    """One GET on a fresh connection; redirects are not followed."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": USER_AGENT, **(headers or {})})
        response = conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


class Api:
    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.auth = {"Authorization": f"Bearer {key}"}

    def get(self, path: str) -> bytes:
        status, _, body = http_get(self.port, path, self.auth)
        if status != 200:
            raise SetupError(f"GET {path} answered {status}: {body[:300]!r}")
        return body

    def post_json(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=60)
        try:
            conn.request(
                "POST",
                path,
                body=json.dumps(payload).encode(),
                headers={**self.auth, "Content-Type": "application/json"},
            )
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        if response.status != 201:
            raise SetupError(f"POST {path} answered {response.status}: {body[:300]!r}")
        created: dict[str, Any] = json.loads(body)
        return created

    def counts(self, message_id: int) -> tuple[int, int]:
        """(opens, clicks) recorded for the message, machine hits included."""
        stats = json.loads(self.get(f"/v1/messages/{message_id}/stats"))
        return int(stats["opens"]["all"]["total"]), int(stats["clicks"]["all"]["total"])

    def settled_counts(self, message_id: int, timeout_s: float = 15.0) -> tuple[int, int]:
        """Counts once two reads 0.5 s apart agree: hits still being written have landed."""
        previous = self.counts(message_id)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            time.sleep(0.5)
            current = self.counts(message_id)
            if current == previous:
                return current
            previous = current
        return previous


@dataclass(frozen=True)
class Recipient:
    id: int
    pixel_path: str
    click_path: str
    click_target: str


_PIXEL = re.compile(r"https?://[^/\s\"']+(/o/[A-Za-z0-9_-]+\.gif)")
_CLICK = re.compile(r"https?://[^/\s\"']+(/c/[A-Za-z0-9_-]+)")


def create_message(api: Api, recipients: int) -> tuple[int, list[Recipient]]:
    items = "\r\n".join(
        f'<li><a href="{url.replace("&", "&amp;")}">Link {i}</a></li>' for i, url in enumerate(LINKS)
    )
    html = (
        '<!DOCTYPE html>\r\n<html><head><meta charset="utf-8"><title>Bench</title></head>\r\n'
        "<body><p>Hello, this is the tracking benchmark.</p>\r\n"
        f"<ul>\r\n{items}\r\n</ul>\r\n</body></html>\r\n"
    )
    created = api.post_json(
        "/v1/messages",
        {
            "from": {"email": "news@example.com"},
            "to": [{"email": f"reader{i}@example.org"} for i in range(recipients)],
            "subject": "tracking benchmark",
            "html": html,
        },
    )
    message_id = int(created["id"])
    tracked = created["tracking"]
    if not tracked["opens"] or tracked["links_tracked"] != len(LINKS):
        raise SetupError(f"the message is not tracked as expected: {tracked}")
    found: list[Recipient] = []
    for index, recipient in enumerate(created["recipients"]):
        rid = int(recipient["id"])
        mime = api.get(f"/v1/messages/{message_id}/recipients/{rid}/mime")
        html_part = _html_part(mime)
        pixels = _PIXEL.findall(html_part)
        clicks = _CLICK.findall(html_part)
        if len(pixels) != 1 or len(clicks) != len(LINKS):
            raise SetupError(f"recipient {rid}: {len(pixels)} pixel and {len(clicks)} click URLs in the copy")
        # Each recipient clicks one link, so that clicks spread over links and recipients.
        position = index % len(LINKS)
        found.append(Recipient(rid, pixels[0], clicks[position], LINKS[position]))
    return message_id, found


def _html_part(mime: bytes) -> str:
    message = email.message_from_bytes(mime, policy=email.policy.default)
    for part in message.walk():
        if part.get_content_type() == "text/html":
            content: str = part.get_content()
            return content
    raise SetupError("the tracked copy has no text/html part")


def check_responses(name: str, port: int, paths: Sequence[str], expect: str, targets: Sequence[str]) -> None:
    """A few requests by hand, so that wrk's 2xx/3xx count means what we think it means."""
    for path, target in list(zip(paths, targets, strict=True))[:3]:
        status, headers, body = http_get(port, path)
        if expect == "gif":
            ok = status == 200 and body == TRANSPARENT_GIF and headers.get("cache-control") == NO_STORE
        else:
            ok = status == 302 and headers.get("location") == target and body == b""
        if not ok:
            raise SetupError(f"{name}: GET {path} answered {status} {headers} {body[:100]!r}")


# --- wrk -----------------------------------------------------------------------------------------


@dataclass
class WrkResult:
    duration_us: int
    requests: int  # responses wrk read completely (any status)
    sent: int  # requests wrk started writing
    bytes: int
    connect_errors: int
    read_errors: int
    write_errors: int
    timeouts: int
    status_errors: int  # responses with a status above 399 (wrk's "Non-2xx or 3xx responses")
    p50_us: int
    p90_us: int
    p99_us: int
    max_us: int
    mean_us: float
    raw: str = field(default="", repr=False)
    cpu_us: float = 0.0  # CPU time of the target's processes per request, during the run

    @property
    def ok(self) -> int:
        return self.requests - self.status_errors

    @property
    def rate(self) -> float:
        return self.requests / (self.duration_us / 1e6) if self.duration_us else 0.0

    @property
    def socket_errors(self) -> int:
        return self.connect_errors + self.read_errors + self.write_errors + self.timeouts


def run_wrk(
    port: int, paths_file: Path, lua: Path, *, threads: int, connections: int, duration: float
) -> WrkResult:
    argv = [
        shutil.which("wrk") or "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--latency",
        "-H",
        f"User-Agent: {USER_AGENT}",
        "-s",
        str(lua),
        f"http://{HOST}:{port}/",
        "--",
        str(paths_file),
    ]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = process.communicate(timeout=duration + 30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    text = out.decode(errors="replace")
    found = re.search(r"^WRK-RESULT (\{.*\})$", text, re.MULTILINE)
    if process.returncode != 0 or not found:
        raise SetupError(f"wrk failed ({process.returncode}):\n{text}")
    return WrkResult(**json.loads(found.group(1)), raw=text)


# --- the run -------------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    service: Service
    paths_file: Path
    kind: str  # "nginx", "raw", "pixel" or "click"
    runs: list[WrkResult] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    check_failed: bool = False

    def median(self, attr: str) -> float:
        return statistics.median(float(getattr(run, attr)) for run in self.runs)


@contextlib.contextmanager
def postgres_database(base_url: str) -> Iterator[str]:
    import psycopg

    name = f"mailbeacon_bench_{secrets.token_hex(4)}"
    admin = f"{base_url.rstrip('/')}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base_url.rstrip('/')}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def verify(target: Target, result: WrkResult, recorded: int, connections: int) -> None:
    """Compare what the stats API recorded during one run with what wrk counted, and say so exactly."""
    what = "opens" if target.kind == "pixel" else "clicks"
    counted = result.ok
    run = len(target.runs)
    summary = (
        f"run {run}: wrk read {result.requests:,} responses ({counted:,} 2xx/3xx, "
        f"{result.status_errors:,} other, {result.socket_errors:,} socket errors) of {result.sent:,} "
        f"requests it sent; the stats API counts {recorded:,} {what} recorded during the run"
    )
    if recorded == counted and result.status_errors == 0:
        target.checks.append(f"exact. {summary}")
        return
    difference = recorded - counted
    in_flight = result.sent - result.requests
    explained = result.status_errors == 0 and counted <= recorded <= result.sent and in_flight <= connections
    if explained:
        line = (
            f"DIFFERENCE {difference:+,}, explained. {summary}. wrk stops with {in_flight:,} requests in "
            f"flight (one per busy connection) and never reads their responses; the server recorded "
            f"{difference:,} of them before answering"
            + (": every request wrk sent was recorded." if recorded == result.sent else ".")
        )
    else:
        target.check_failed = True
        line = (
            f"MISMATCH {difference:+,}, NOT explained by requests in flight. {summary}. Recorded events and "
            "answered requests disagree."
        )
    target.checks.append(line)
    print(f"  !!! {target.name}: {line}", flush=True)


def measure(target: Target, args: argparse.Namespace, lua: Path, api: Api | None, message_id: int) -> None:
    before = api.settled_counts(message_id) if api else (0, 0)
    cpu_before = group_cpu_seconds(target.service)
    result = run_wrk(
        target.service.port,
        target.paths_file,
        lua,
        threads=args.threads,
        connections=args.connections,
        duration=args.duration,
    )
    result.cpu_us = (group_cpu_seconds(target.service) - cpu_before) * 1e6 / max(1, result.requests)
    target.runs.append(result)
    if args.verbose:
        print(result.raw)
    print(
        f"  {target.name:<22} {result.rate:>10,.0f} req/s  p50 {result.p50_us / 1000:6.2f} ms"
        f"  p99 {result.p99_us / 1000:6.2f} ms  CPU {result.cpu_us:5.1f} us/req"
        f"  ({result.requests:,} responses)",
        flush=True,
    )
    if api is not None:
        settling = time.monotonic()
        after = api.settled_counts(message_id)
        settled = time.monotonic() - settling
        print(f"  {target.name}: counts settled {settled:.2f} s after the run", flush=True)
        index = 0 if target.kind == "pixel" else 1
        verify(target, result, after[index] - before[index], args.connections)


def warm_up(target: Target, args: argparse.Namespace, lua: Path) -> None:
    if args.warmup > 0:
        run_wrk(
            target.service.port,
            target.paths_file,
            lua,
            threads=args.threads,
            connections=args.connections,
            duration=args.warmup,
        )


def report(targets: list[Target], args: argparse.Namespace, store: str) -> None:
    nginx = next(t for t in targets if t.kind == "nginx")

    def share(target: Target) -> float:
        # Each run against nginx's run of the same round (minutes apart at most): on a noisy machine
        # the ratio within a round holds better than a ratio of medians taken across rounds.
        return statistics.median(
            mine.rate / theirs.rate for mine, theirs in zip(target.runs, nginx.runs, strict=True)
        )

    print()
    print(
        f"Results: wrk -t{args.threads} -c{args.connections} -d{round(args.duration)}s, "
        f"{args.workers} worker(s) each, store {store}, median of {args.repeat} round(s)"
    )
    if args.mailbeacon_env:
        print(f"mailbeacon environment: {' '.join(args.mailbeacon_env)}")
    header = (
        f"{'target':<22} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>10} {'vs nginx':>9}"
        "  each round (req/s)"
    )
    print(header)
    print("-" * len(header))
    for target in targets:
        runs = ", ".join(f"{run.rate:,.0f}" for run in target.runs)
        print(
            f"{target.name:<22} {target.median('rate'):>10,.0f} {target.median('p50_us') / 1000:>8.2f}"
            f" {target.median('p99_us') / 1000:>8.2f} {target.median('cpu_us'):>10.1f}"
            f" {share(target):>9.1%}  {runs}"
        )
    print("(vs nginx: median over rounds of the target's rate / nginx's rate in the same round;")
    print(" CPU us/req: CPU time of the target's processes during the run, per request answered)")
    print()
    for target in targets:
        if target.kind in TARGETS:
            floor = TARGETS[target.kind]
            verdict = "met" if share(target) >= floor else "NOT met"
            print(f"target: recorded {target.kind} >= {floor:.0%} of nginx: {share(target):.1%} -> {verdict}")
    for target in targets:
        for line in target.checks:
            print(f"recorded vs wrk, {target.name}, {line}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument(
        "--workers", type=int, default=1, help="nginx, granian and mailbeacon workers (default 1)"
    )
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432",
        help="server for --store postgresql; a database is created and dropped (default %(default)s)",
    )
    parser.add_argument("--recipients", type=int, default=100, help="recipients of the message (default 100)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds over all targets; medians are reported")
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds of wrk before each target's first run"
    )
    parser.add_argument(
        "--mailbeacon-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for mailbeacon, e.g. MAILBEACON_EVENT_BATCH_WINDOW_MS=0 (repeatable)",
    )
    parser.add_argument("--no-raw", action="store_true", help="skip the raw ASGI reference")
    parser.add_argument("--verbose", action="store_true", help="print wrk's own output")
    args = parser.parse_args(argv)
    if any("=" not in item for item in args.mailbeacon_env):
        parser.error("--mailbeacon-env takes NAME=VALUE")
    if args.threads > args.connections:
        parser.error("--threads must not exceed --connections")
    return args


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            print(f"{tool} is not installed (apt-get install wrk nginx-light)", file=sys.stderr)
            return 2
    signal.signal(signal.SIGTERM, _raise_interrupt)
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
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mailbeacon-bench-")))
    lua = tmp / "rotate.lua"
    lua.write_text(WRK_LUA)
    python = sys.executable
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    # nginx: the same GIF bytes and cache headers.
    (tmp / "www").mkdir()
    (tmp / "www" / "pixel.gif").write_bytes(TRANSPARENT_GIF)
    nginx_port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            user="user root;" if os.geteuid() == 0 else "",
            workers=args.workers,
            tmp=tmp,
            host=HOST,
            port=nginx_port,
            no_store=NO_STORE,
        )
    )
    nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
    nginx = start(
        "nginx",
        [nginx_bin, "-p", str(tmp), "-e", str(tmp / "nginx-error.log"), "-c", str(conf)],
        tmp / "nginx.log",
        nginx_port,
    )
    stack.callback(stop, nginx)

    raw: Service | None = None
    if not args.no_raw:
        raw_port = free_port()
        raw = start(
            "raw ASGI GIF",
            [
                python,
                "-m",
                "granian",
                "--interface",
                "asgi",
                "--loop",
                "uvloop",
                "--no-access-log",
                "--workers",
                str(args.workers),
                "--host",
                HOST,
                "--port",
                str(raw_port),
                "--working-dir",
                str(BENCH_DIR),
                "raw_asgi_gif:app",
            ],
            tmp / "raw.log",
            raw_port,
            env=env,
            cwd=BENCH_DIR,
        )
        stack.callback(stop, raw)

    if args.store == "sqlite":
        database_url = f"sqlite:///{tmp / 'mailbeacon.db'}"
        store = "SQLite (WAL, synchronous=FULL)"
    else:
        database_url = stack.enter_context(postgres_database(args.postgres_url))
        store = "PostgreSQL"
    mb_port = free_port()
    mb = start(
        "mailbeacon",
        [
            python,
            "-m",
            "mailbeacon.cli",
            "serve",
            "--database-url",
            database_url,
            "--host",
            HOST,
            "--port",
            str(mb_port),
            "--workers",
            str(args.workers),
            "--demo",
        ],
        tmp / "mailbeacon.log",
        mb_port,
        env={**env, **dict(item.split("=", 1) for item in args.mailbeacon_env)},
        cwd=tmp,
    )
    stack.callback(stop, mb)

    wait_http(nginx, "/o/ready.gif")
    if raw is not None:
        wait_http(raw, "/")
    key = wait_for_line(mb, re.compile(r"API key:\s+(mb_\S+)")).group(1)
    wait_http(mb, "/healthz")
    api = Api(mb_port, key)
    print(
        f"nginx on :{nginx_port}, {'' if raw is None else f'raw ASGI on :{raw.port}, '}"
        f"mailbeacon on :{mb_port} ({store}, {args.workers} worker(s))",
        flush=True,
    )

    message_id, recipients = create_message(api, args.recipients)
    pixel_file = tmp / "pixel-paths.txt"
    click_file = tmp / "click-paths.txt"
    pixel_file.write_text("".join(f"{r.pixel_path}\n" for r in recipients))
    click_file.write_text("".join(f"{r.click_path}\n" for r in recipients))
    pixel_paths = [r.pixel_path for r in recipients]
    click_paths = [r.click_path for r in recipients]
    click_targets = [r.click_target for r in recipients]
    print(f"message {message_id}: {len(recipients)} recipients, a pixel and a click URL each", flush=True)

    # nginx and the raw app get exactly the request lines of mailbeacon's pixel.
    check_responses("nginx", nginx_port, pixel_paths, "gif", pixel_paths)
    check_responses("mailbeacon pixel", mb_port, pixel_paths, "gif", pixel_paths)
    check_responses("mailbeacon click", mb_port, click_paths, "redirect", click_targets)
    targets = [Target("nginx static GIF", nginx, pixel_file, "nginx")]
    if raw is not None:
        check_responses("raw ASGI", raw.port, pixel_paths, "gif", pixel_paths)
        targets.append(Target("raw ASGI GIF (granian)", raw, pixel_file, "raw"))
    targets.append(Target("mailbeacon pixel", mb, pixel_file, "pixel"))
    targets.append(Target("mailbeacon click", mb, click_file, "click"))

    for round_number in range(args.repeat):
        print(f"round {round_number + 1}/{args.repeat}", flush=True)
        for target in targets:
            if round_number == 0:
                warm_up(target, args, lua)
            recording = target.kind in ("pixel", "click")
            measure(target, args, lua, api if recording else None, message_id)
    report(targets, args, store)
    return 1 if any(t.check_failed for t in targets) else 0


if __name__ == "__main__":
    sys.exit(main())

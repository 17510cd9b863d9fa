"""Helpers the tests share: required-or-skip, free ports, a real server process, a local target site."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


def require(condition: bool, reason: str) -> None:
    """Skip with a reason on a developer machine; under CI a missing service or browser fails the run."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def mailbeacon_command() -> list[str]:
    return [sys.executable, "-m", "mailbeacon.cli"]


def run_cli(*args: str, env: dict[str, str] | None = None, input_text: str | None = None) -> str:
    result = subprocess.run(
        [*mailbeacon_command(), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        input=input_text,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"mailbeacon {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result.stdout


@dataclass
class ServerProcess:
    process: subprocess.Popen[str]
    base_url: str
    log_path: Path
    smtp_port: int = 0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """SIGTERM asks the server to stop; SIGKILL kills every process it has, as a crash would."""
        if sig == signal.SIGKILL:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@contextmanager
def running_server(
    database_url: str, tmp_path: Path, *extra: str, env: dict[str, str] | None = None
) -> Iterator[ServerProcess]:
    port = free_port()
    smtp_port = free_port()
    log_path = tmp_path / f"server-{port}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*mailbeacon_command(), "serve", "--database-url", database_url, "--port", str(port), *extra],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "MAILBEACON_SMTP_PORT": str(smtp_port), **(env or {})},
            start_new_session=True,
        )
    server = ServerProcess(process, f"http://127.0.0.1:{port}", log_path, smtp_port)
    try:
        wait_until_up(server)
        yield server
    finally:
        server.stop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # no worker outlives its test


def wait_until_up(server: ServerProcess, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"server exited early:\n{server.log()}")
        try:
            if httpx.get(f"{server.base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"server did not come up:\n{server.log()}")


@dataclass
class TargetSite:
    """A local web site that click redirects land on; it remembers what was requested."""

    base_url: str
    requests: list[str] = field(default_factory=list)
    pages: dict[str, str] = field(default_factory=dict)  # path -> HTML served instead of the landing page


@contextmanager
def target_site() -> Iterator[TargetSite]:
    site = TargetSite("")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.requests.append(self.path)
            page = site.pages.get(self.path)
            if page is None:
                page = f"<html><body><h1 id='landed'>landed on {self.path}</h1></body></html>"
            body = page.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    site.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()

"""A crash in the middle of SMTP submissions loses nothing mailbeacon said it took, and delivers nothing
twice: ``250`` after DATA means committed, and the queue survives ``kill -9``.

Four smtplib clients submit small messages in a loop, each message its own tag (its recipient's local part
and its subject), while the worker relays copies to a smarthost (an aiosmtpd receiver on loopback). The
server (every process of it) is killed with SIGKILL while the clients are still submitting, then started
again on the same database; every message that got its 250 must reach the receiver exactly once.

The honest limit of SMTP: a copy the receiver accepted just before the kill, whose outcome mailbeacon had not
recorded yet, is sent again after the restart, and nobody can tell. The test keeps that window closed
instead of tolerating duplicates: just before the kill the receiver is put on hold (it answers 451 to
every RCPT and DATA from then on, so it accepts nothing more), and the kill waits until the store records
as sent exactly as many copies as the receiver accepted. Copies in flight at the kill are then refused
ones (deferred, or leased by the dead worker until their 3 s lease runs out), which must be sent once, after
the restart. So any duplicate is a bug; the failure message shows which copy it was and when each of its
arrivals came, relative to the kill.
"""

from __future__ import annotations

import signal
import smtplib
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path

import pytest

from tests.e2e.mail_support import (
    Receiver,
    attempts_of_account,
    describe_copy,
    make_account,
    open_store,
    queued_of_account,
    recipient_rows,
    submit_on,
    trusted,
    unique_source_address,
    wait_for,
    wait_for_port,
)
from tests.support import free_port, running_server

pytestmark = pytest.mark.e2e

CLIENTS = 4
PER_CLIENT = 60
KILL_AFTER_ACCEPTED = 60  # acknowledged submissions before the receiver is held and the server killed
DOMAIN = "dest.test"


@dataclass
class Client:
    """One submitting connection: what got 250, and the message in flight when the connection broke."""

    number: int
    source: str
    port: int
    accepted: list[str] = field(default_factory=list)
    in_doubt: str | None = None
    error: str | None = None
    finished: bool = False

    def run(self, lock: threading.Lock, stop: threading.Event) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", self.port, source_address=(self.source, 0), timeout=10) as smtp:
                for i in range(PER_CLIENT):
                    if stop.is_set():
                        break
                    tag = f"c{self.number}-{i:03d}"
                    self.in_doubt = tag
                    submit_on(smtp, "sender@sender.test", [f"{tag}@{DOMAIN}"], message(tag))
                    with lock:
                        self.accepted.append(tag)
                    self.in_doubt = None
            self.finished = True
        except (OSError, smtplib.SMTPException, AssertionError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"


def message(tag: str) -> bytes:
    mail = EmailMessage()
    mail["From"] = "sender@sender.test"
    mail["To"] = f"{tag}@{DOMAIN}"
    mail["Subject"] = tag
    mail.set_content(f"message {tag}\n")
    return mail.as_bytes(policy=SMTP_POLICY)


def test_kill_9_during_submissions_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'mailbeacon.db'}"
    store = open_store(database_url)
    account = make_account(store, "crash")
    source = unique_source_address()
    receiver = Receiver("127.0.0.1", free_port()).start()
    env = {
        "MAILBEACON_DATA_DIR": str(tmp_path / "data"),
        "MAILBEACON_DELIVERY_MODE": "smarthost",
        "MAILBEACON_SMARTHOST": f"127.0.0.1:{receiver.port}",
        "MAILBEACON_SMARTHOST_TLS": "none",
        "MAILBEACON_DELIVERY_LEASE_S": "3",
        "MAILBEACON_DELIVERY_RETRY_INITIAL_S": "0.5",
        "MAILBEACON_DELIVERY_RETRY_MAX_S": "1",
        "MAILBEACON_DELIVERY_POLL_S": "0.2",
        "MAILBEACON_DELIVERY_TIMEOUT_S": "5",
    }
    lock = threading.Lock()
    stop = threading.Event()
    try:
        with trusted(store, account.id, source):
            with running_server(database_url, tmp_path, env=env) as first:
                wait_for_port("127.0.0.1", first.smtp_port, first)
                clients = [Client(n, source, first.smtp_port) for n in range(CLIENTS)]
                threads = [threading.Thread(target=c.run, args=(lock, stop), daemon=True) for c in clients]
                for thread in threads:
                    thread.start()

                def accepted() -> list[str]:
                    with lock:
                        return [tag for c in clients for tag in c.accepted]

                wait_for(
                    lambda: len(accepted()) >= KILL_AFTER_ACCEPTED and len(receiver.handler.snapshot()) > 0,
                    30,
                    lambda: (
                        f"{len(accepted())} submissions accepted, {len(receiver.handler.snapshot())} "
                        f"copies relayed; clients: {[c.error for c in clients]}\n{first.log()[-3000:]}"
                    ),
                )
                # Close the window between the receiver's 250 and mailbeacon recording it (module docstring).
                receiver.handler.set_hold(True)
                relayed = len(receiver.handler.snapshot())
                wait_for(
                    lambda: sum(r.status == "sent" for r in recipient_rows(store, account.id)) == relayed,
                    10,
                    lambda: (
                        f"the receiver accepted {relayed} copies but the store says "
                        f"{sum(r.status == 'sent' for r in recipient_rows(store, account.id))} were sent"
                    ),
                )
                first.stop(signal.SIGKILL)
                killed_at = time.monotonic()
                still_submitting = sum(not c.finished for c in clients)
                stop.set()
                for thread in threads:
                    thread.join(timeout=15)
                assert still_submitting == CLIENTS, (
                    f"only {still_submitting} of {CLIENTS} clients were still submitting at the kill: "
                    "the test did not kill the server in the middle of submissions"
                )

            acked = accepted()
            in_doubt = {c.in_doubt for c in clients if c.in_doubt is not None}
            assert len(acked) < CLIENTS * PER_CLIENT
            receiver.handler.set_hold(False)

            with running_server(database_url, tmp_path, env=env) as second:

                def outstanding() -> list[str]:
                    got = {m.rcpt_tos[0].split("@")[0] for m in receiver.handler.snapshot()}
                    return [tag for tag in acked if tag not in got]

                wait_for(
                    lambda: not outstanding() and not queued_of_account(store, account.id),
                    30,
                    lambda: (
                        f"{len(outstanding())} acknowledged messages never arrived, e.g. "
                        f"{outstanding()[:5]}; queue: {len(queued_of_account(store, account.id))} copies\n"
                        + "\n".join(
                            describe_copy(store, int(r.id))
                            for r in recipient_rows(store, account.id)
                            if r.email.split("@")[0] in outstanding()[:3]
                        )
                        + f"\nserver log (end):\n{second.log()[-3000:]}"
                    ),
                )

        arrivals: dict[str, list[float]] = {}
        for received in receiver.handler.snapshot():
            (rcpt,) = received.rcpt_tos
            arrivals.setdefault(rcpt.split("@")[0], []).append(received.at - killed_at)
        rows = {str(r.email).split("@")[0]: r for r in recipient_rows(store, account.id)}
        twice = {tag: times for tag, times in arrivals.items() if len(times) > 1}
        assert not twice, f"{len(twice)} messages arrived more than once:\n" + "\n".join(
            f"{tag}: arrivals at {', '.join(f'{t:+.3f} s' for t in times)} from the kill\n"
            + describe_copy(store, int(rows[tag].id))
            for tag, times in sorted(twice.items())[:5]
        )
        unexpected = set(arrivals) - set(acked) - in_doubt
        assert not unexpected, f"messages arrived that no client had submitted: {sorted(unexpected)[:5]}"
        # Each stored copy was sent, and had exactly one successful attempt.
        assert set(acked) <= set(rows), "acknowledged messages missing from the store"
        assert {r.status for r in rows.values()} == {"sent"}, {
            tag: (r.status, r.status_detail) for tag, r in rows.items() if r.status != "sent"
        }
        successes: dict[int, int] = {}
        for attempt in attempts_of_account(store, account.id):
            if attempt.outcome == "sent":
                successes[attempt.recipient_id] = successes.get(attempt.recipient_id, 0) + 1
        assert sorted(successes) == sorted(int(r.id) for r in rows.values())
        assert set(successes.values()) == {1}
    finally:
        stop.set()
        receiver.stop()
        store.dispose()

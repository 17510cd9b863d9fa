"""Two delivery workers in separate processes share one PostgreSQL queue: each copy is sent once.

One ``serve --role smtp`` process takes the submissions and queues 300 copies; two ``serve --role worker``
processes (each with its own HELO name, so the receiver can tell who sent what) relay them to one smarthost,
an aiosmtpd receiver on loopback that takes a few milliseconds per message so that the work spreads out.
"""

from __future__ import annotations

import smtplib
from collections import Counter
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path

import pytest

from tests.e2e.mail_support import (
    Receiver,
    attempts_of_account,
    describe_copy,
    mail_process,
    make_account,
    open_store,
    queued_of_account,
    recipient_rows,
    submit_on,
    trusted,
    unique_source_address,
    wait_for,
)
from tests.support import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

MESSAGES = 30
RECIPIENTS_PER_MESSAGE = 10
DOMAIN = "dest.test"
HELO = {"worker-a.mailbeacon.test": "a", "worker-b.mailbeacon.test": "b"}


def message(number: int, to: list[str]) -> bytes:
    mail = EmailMessage()
    mail["From"] = "news@sender.test"
    mail["To"] = ", ".join(to[:2])
    mail["Subject"] = f"Message {number}"
    mail.set_content(f"message {number}\n")
    return mail.as_bytes(policy=SMTP_POLICY)


def test_two_workers_deliver_every_copy_exactly_once(postgres_url: str, tmp_path: Path) -> None:
    store = open_store(postgres_url)
    account = make_account(store, "workers")
    source = unique_source_address()
    receiver = Receiver("127.0.0.1", free_port()).start()
    receiver.handler.data_delay_s = 0.01
    env = {
        "MAILBEACON_DATA_DIR": str(tmp_path / "data"),
        "MAILBEACON_DELIVERY_MODE": "smarthost",
        "MAILBEACON_SMARTHOST": f"127.0.0.1:{receiver.port}",
        "MAILBEACON_SMARTHOST_TLS": "none",
        "MAILBEACON_DELIVERY_CONCURRENCY": "10",
        "MAILBEACON_DELIVERY_DOMAIN_CONCURRENCY": "10",
        "MAILBEACON_DELIVERY_POLL_S": "0.1",
        "MAILBEACON_DELIVERY_RETRY_INITIAL_S": "0.5",
        "MAILBEACON_DELIVERY_TIMEOUT_S": "10",
    }
    addresses = [
        [f"m{m:02d}-r{r:02d}-{account.id}@{DOMAIN}" for r in range(RECIPIENTS_PER_MESSAGE)]
        for m in range(MESSAGES)
    ]
    everyone = {a for group in addresses for a in group}
    try:
        with (
            trusted(store, account.id, source),
            mail_process(postgres_url, tmp_path, "smtp", env=env, name="smtp") as intake,
            mail_process(
                postgres_url,
                tmp_path,
                "worker",
                env={**env, "MAILBEACON_HELO_NAME": "worker-a.mailbeacon.test"},
                name="worker-a",
            ) as worker_a,
            mail_process(
                postgres_url,
                tmp_path,
                "worker",
                env={**env, "MAILBEACON_HELO_NAME": "worker-b.mailbeacon.test"},
                name="worker-b",
            ) as worker_b,
        ):
            with smtplib.SMTP("127.0.0.1", intake.smtp_port, source_address=(source, 0), timeout=15) as smtp:
                for number, to in enumerate(addresses):
                    submit_on(smtp, "news@sender.test", to, message(number, to))

            def mine() -> list[tuple[str, str]]:
                return [
                    (rcpt, received.helo)
                    for received in receiver.handler.snapshot()
                    for rcpt in received.rcpt_tos
                    if rcpt in everyone
                ]

            wait_for(
                lambda: {rcpt for rcpt, _ in mine()} == everyone and not queued_of_account(store, account.id),
                40,
                lambda: (
                    f"{len({rcpt for rcpt, _ in mine()})} of {len(everyone)} copies arrived; "
                    f"{len(queued_of_account(store, account.id))} still queued\n"
                    f"worker a log:\n{worker_a.log()[-2000:]}\nworker b log:\n{worker_b.log()[-2000:]}"
                ),
            )

        arrived = mine()
        per_copy = Counter(rcpt for rcpt, _ in arrived)
        twice = sorted(rcpt for rcpt, n in per_copy.items() if n > 1)
        rows = {str(r.email): r for r in recipient_rows(store, account.id)}
        assert not twice, f"{len(twice)} copies arrived more than once:\n" + "\n".join(
            f"{rcpt} from {[helo for r, helo in arrived if r == rcpt]}\n"
            + describe_copy(store, int(rows[rcpt].id))
            for rcpt in twice[:5]
        )
        assert len(arrived) == MESSAGES * RECIPIENTS_PER_MESSAGE

        by_worker = Counter(HELO.get(helo, helo) for _, helo in arrived)
        assert set(by_worker) == {"a", "b"}, f"copies relayed per worker (by HELO name): {dict(by_worker)}"

        assert set(rows) == everyone
        assert Counter(r.status for r in rows.values()) == {"sent": len(everyone)}
        successes = Counter(
            a.recipient_id for a in attempts_of_account(store, account.id) if a.outcome == "sent"
        )
        assert set(successes) == {int(r.id) for r in rows.values()}
        doubled = [rid for rid, n in successes.items() if n > 1]
        assert not doubled, "copies with two successful attempts:\n" + "\n".join(
            describe_copy(store, rid) for rid in doubled[:5]
        )
    finally:
        receiver.stop()
        store.dispose()

"""Any MIME the world sends, through the real SMTP relay: every message of the corpus is either
relayed with its parts intact or refused with a reason, and the server keeps serving throughout."""

from __future__ import annotations

import email
import email.policy
import hashlib
import smtplib
import uuid
from email.message import Message
from pathlib import Path

import httpx

from tests.e2e.conftest import init_account
from tests.e2e.smtp_fixtures import receiver, relaying_server, unverified_tls, wait_until
from tests.support import REPO

CORPUS = REPO / "tests" / "data" / "mime"


def corpus_files() -> list[Path]:
    return sorted(
        p
        for p in CORPUS.rglob("*")
        if p.is_file() and p.suffix in (".eml", ".txt", ".msg") and "expected" not in p.parts
    )


def crlf(raw: bytes) -> bytes:
    """SMTP carries CRLF lines; a bare LF or CR in a file becomes CRLF as any client would send it."""
    return raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")


def shape(message: Message) -> list[tuple[str, str | None]]:
    """Each part's type and, for parts mailbeacon never rewrites, a digest of its decoded payload."""
    found: list[tuple[str, str | None]] = []
    for part in message.walk():
        kind = part.get_content_type()
        digest = None
        if not part.is_multipart() and not kind.startswith("text/"):
            payload = part.get_payload(decode=True)
            digest = hashlib.sha256(payload if isinstance(payload, bytes) else b"").hexdigest()
        found.append((kind, digest))
    return found


def parse(raw: bytes) -> Message:
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def test_the_mime_corpus_is_relayed_intact_or_refused(database_url: str, tmp_path: Path) -> None:
    files = corpus_files()
    assert len(files) > 90, "the MIME corpus is missing from tests/data/mime"
    key = init_account(database_url, f"corpus-{uuid.uuid4().hex[:6]}")
    accepted: dict[str, bytes] = {}
    refused: dict[str, str] = {}
    tags: dict[str, str] = {}  # each message goes to its own address, so arrivals say which it was
    with receiver() as sink, relaying_server(database_url, tmp_path, sink.port) as server:
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=60) as client:
            client.starttls(context=unverified_tls())
            client.login("corpus", key)
            for number, path in enumerate(files):
                tag = f"{path.parent.name}/{path.name}"
                tags[f"corpus{number}@example.org"] = tag
                raw = crlf(path.read_bytes())
                try:
                    client.sendmail("corpus@sender.example", [f"corpus{number}@example.org"], raw)
                except smtplib.SMTPDataError as exc:
                    error = exc.smtp_error
                    refused[tag] = f"{exc.smtp_code} " + (
                        error.decode() if isinstance(error, bytes) else error
                    )
                else:
                    accepted[tag] = raw
                client.noop()
        arrivals = sink.wait_for(len(accepted), timeout=120)
        assert httpx.get(f"{server.base_url}/healthz").status_code == 200

        def sent_events() -> list[dict[str, object]] | None:
            response = httpx.get(
                f"{server.base_url}/v1/events",
                params={"type": "sent", "limit": 1000},
                headers={"Authorization": f"Bearer {key}"},
            )
            found: list[dict[str, object]] = response.json()["events"]
            return found if len(found) >= len(accepted) else None

        statuses = wait_until(sent_events, "a sent event per accepted message")
    assert len(statuses) == len(accepted)
    # Refusals say why, in words a sender can act on.
    for tag, reason in refused.items():
        assert reason.startswith("554 5.6.0 Message refused: "), (tag, reason)
    assert len(accepted) >= len(files) - 5, sorted(refused.items())
    received = {}
    for arrival in arrivals:
        received[tags[arrival.rcpt_tos[0]]] = parse(arrival.data)
    assert set(received) == set(accepted)
    for tag, raw in accepted.items():
        assert shape(received[tag]) == shape(parse(raw)), tag

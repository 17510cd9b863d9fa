"""What an attempt's outcome does to a copy: its status, its event, the attempt log and the queue."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from mailbeacon.delivery.transport import Outcome
from mailbeacon.events import EventType, RecipientStatus, SuppressionReason
from mailbeacon.inbound.classify import classify, suppresses
from mailbeacon.inbound.report import BounceClass, BounceReason
from mailbeacon.store.deliveries import (
    Attempt,
    QueuedCopy,
    finish,
    record_attempt,
    retry_later,
    set_status,
)
from mailbeacon.store.hits import load_recipients
from mailbeacon.store.mail_events import MailEvent, insert_mail_event
from mailbeacon.store.suppressions import suppress

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """The copy's lease ran out and another worker may have it: this outcome must not be written."""


# Stages at which a refusal is about the connection, the sender or mailbeacon's login, never about the
# recipient's address. At a smarthost they mean a configuration to fix, so the copy waits for it.
_BEFORE_RECIPIENT = frozenset({"connect", "greeting", "starttls", "auth", "mail"})


def record_outcome(
    conn: Connection,
    owner: str,
    copy: QueuedCopy,
    outcome: Outcome | None,
    failure: str | None,
    *,
    suppressed: str | None = None,
    final: bool,
    started: datetime,
    duration_ms: int,
    retry_at: datetime,
) -> None:
    """``outcome`` is None when mailbeacon itself could not send the copy (``failure`` says why), or
    when it was not sent because its address is now ``suppressed``."""
    now = datetime.now(started.tzinfo)
    if (
        outcome is not None
        and outcome.verdict == "permanent"
        and not final
        and outcome.stage in _BEFORE_RECIPIENT
    ):
        log.warning(
            "the smarthost refused at %s: %s; copies wait until this is fixed", outcome.stage, outcome.reply
        )
        outcome = Outcome("temporary", outcome.reply, outcome.hop, outcome.tls, outcome.stage, outcome.tried)
    if suppressed is not None:
        detail = f"suppressed: {suppressed}"
        _final(conn, owner, copy, RecipientStatus.DROPPED, EventType.DROPPED, detail, {"reason": detail}, now)
        return
    if outcome is None:
        _final(conn, owner, copy, RecipientStatus.FAILED, EventType.FAILED, failure, {"reason": failure}, now)
        record_attempt(conn, _attempt(copy, started, duration_ms, "failed", None, failure))
        return
    evidence = _evidence(outcome)
    if outcome.verdict == "accepted":
        status, event = (
            (RecipientStatus.DELIVERED, EventType.DELIVERED)
            if final
            else (RecipientStatus.SENT, EventType.SENT)
        )
        record_attempt(conn, _attempt(copy, started, duration_ms, status.value, outcome, None))
        _final(conn, owner, copy, status, event, str(outcome.reply) if outcome.reply else None, evidence, now)
        return
    if outcome.verdict == "temporary":
        record_attempt(conn, _attempt(copy, started, duration_ms, "deferred", outcome, None))
        # The last try is made at the expiry time itself, not one retry interval before it.
        retry_at = min(retry_at, copy.expires_at)
        if now < copy.expires_at:
            detail = outcome.describe()
            set_status(conn, copy.recipient_id, RecipientStatus.DEFERRED.value, detail, now)
            data = {**evidence, "attempt": copy.attempts + 1, "next_attempt_at": retry_at.isoformat()}
            insert_mail_event(conn, _event(copy, EventType.DEFERRED, now, data))
            if not retry_later(conn, owner, copy.recipient_id, retry_at, detail):
                raise LeaseLost(copy.recipient_id)
            return
        # Out of time: the copy bounces, saying why it was never accepted.
        diagnostic = f"delivery time expired after {copy.attempts + 1} attempts; last: {outcome.describe()}"
        _bounce(
            conn, owner, copy, 0, "4.4.7", diagnostic, BounceClass.SOFT, BounceReason.EXPIRED, evidence, now
        )
        return
    record_attempt(conn, _attempt(copy, started, duration_ms, "bounced", outcome, None))
    reply = outcome.reply
    code = reply.code if reply else None
    enhanced = reply.enhanced if reply else None
    diagnostic = reply.text if reply else outcome.describe()
    bounce_class, reason = classify(status=enhanced, remote_code=code, diagnostic=diagnostic, action="failed")
    _bounce(
        conn,
        owner,
        copy,
        code,
        enhanced,
        outcome.describe(),
        bounce_class or BounceClass.HARD,
        reason or BounceReason.OTHER,
        evidence,
        now,
        about_the_address=_about_the_address(outcome),
    )


def _about_the_address(outcome: Outcome) -> bool:
    """Only a refusal of the recipient itself may suppress the address: at RCPT, or at DATA with an
    address status (5.1.x, 5.2.1). A sender rejected at RCPT time is still about the sender."""
    reply = outcome.reply
    text = (reply.text if reply else "").lower()
    if "sender address rejected" in text or outcome.stage in _BEFORE_RECIPIENT:
        return False
    if outcome.stage == "rcpt":
        return True
    enhanced = (reply.enhanced if reply else None) or ""
    return outcome.stage == "data" and (enhanced.startswith("5.1.") or enhanced == "5.2.1")


def _bounce(
    conn: Connection,
    owner: str,
    copy: QueuedCopy,
    code: int | None,
    enhanced: str | None,
    diagnostic: str,
    bounce_class: BounceClass,
    reason: BounceReason,
    evidence: dict[str, Any],
    now: datetime,
    *,
    about_the_address: bool = False,
) -> None:
    data = {
        **evidence,
        "code": code or evidence.get("code"),
        "enhanced_code": enhanced,
        "diagnostic": diagnostic,
        "bounce_class": bounce_class.value,
        "reason": reason.value,
    }
    detail = f"{bounce_class.value} bounce ({reason.value}): {diagnostic}"
    event_id = _final(conn, owner, copy, RecipientStatus.BOUNCED, EventType.BOUNCED, detail, data, now)
    if about_the_address and suppresses(bounce_class, reason):
        ref = load_recipients(conn, [copy.recipient_id]).get(copy.recipient_id)
        if ref is not None:
            suppress(conn, copy.account_id, ref.email, SuppressionReason.HARD_BOUNCE.value, now, event_id)


def _final(
    conn: Connection,
    owner: str,
    copy: QueuedCopy,
    status: RecipientStatus,
    event: EventType,
    detail: str | None,
    data: dict[str, Any],
    now: datetime,
) -> int:
    if not finish(conn, owner, copy.recipient_id):
        raise LeaseLost(copy.recipient_id)
    set_status(conn, copy.recipient_id, status.value, detail, now)
    return insert_mail_event(conn, _event(copy, event, now, data))


def _event(copy: QueuedCopy, type: EventType, at: datetime, data: dict[str, Any]) -> MailEvent:
    return MailEvent(copy.account_id, copy.message_id, copy.recipient_id, type, at, data)


def _evidence(outcome: Outcome) -> dict[str, Any]:
    reply = outcome.reply
    found: dict[str, Any] = {
        "stage": outcome.stage,
        "host": outcome.hop.name if outcome.hop else None,
        "ip": outcome.hop.address if outcome.hop else None,
        "tls": outcome.tls,
        "code": reply.code if reply else None,
        "enhanced_code": reply.enhanced if reply else None,
        "reply": reply.text if reply else None,
    }
    if outcome.tried:
        found["tried"] = outcome.tried
    return found


def _attempt(
    copy: QueuedCopy,
    started: datetime,
    duration_ms: int,
    result: str,
    outcome: Outcome | None,
    failure: str | None,
) -> Attempt:
    reply = outcome.reply if outcome else None
    hop = outcome.hop if outcome else None
    return Attempt(
        account_id=copy.account_id,
        message_id=copy.message_id,
        recipient_id=copy.recipient_id,
        started_at=started,
        duration_ms=duration_ms,
        outcome=result,
        host=hop.name if hop else None,
        ip=hop.address if hop else None,
        port=hop.port if hop else None,
        tls=outcome.tls if outcome else False,
        code=reply.code if reply else None,
        enhanced_code=reply.enhanced if reply else None,
        reply=(outcome.describe() if outcome else failure),
    )

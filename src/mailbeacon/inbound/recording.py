"""Turning one piece of feedback mail into events on the copy it is about, or into the unmatched inbox."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from mailbeacon.dmarc.recording import Recorded, read_report, store_report
from mailbeacon.dmarc.report import ReportStatus
from mailbeacon.events import EventType, RecipientStatus, SuppressionReason
from mailbeacon.inbound import dmarc_mail
from mailbeacon.inbound.classify import suppresses
from mailbeacon.inbound.explain import explain
from mailbeacon.inbound.matching import Match, MatchedCopy, match_report
from mailbeacon.inbound.parse import parse_inbound
from mailbeacon.inbound.report import (
    AffectedRecipient,
    BounceClass,
    BounceReason,
    InboundKind,
    InboundReport,
)
from mailbeacon.store import Store
from mailbeacon.store.deliveries import set_status
from mailbeacon.store.mail_events import MailEvent, insert_mail_event
from mailbeacon.store.suppressions import suppress
from mailbeacon.store.tables import accounts, inbound_messages, recipients
from mailbeacon.tokens import TokenSigner

KEEP_RAW_LIMIT = 2 * 1024 * 1024

# An asynchronous bounce or delay is news only for copies not known to have reached anyone yet...
_DELAY_MAY_CHANGE = frozenset({RecipientStatus.QUEUED.value, RecipientStatus.SENT.value})


@dataclass(frozen=True)
class Received:
    inbound_id: int
    report: InboundReport
    match: Match
    event_type: EventType | None
    dmarc: Recorded | None = None  # mail to the reports address: the DMARC or SMTP TLS report stored


def explain_match(report: InboundReport, match: Match) -> dict[str, Any]:
    found = explain(report)
    copy = match.copy
    found["matched"] = (
        None
        if copy is None
        else {
            "account_id": copy.account_id,
            "message_id": copy.message_id,
            "recipient_id": copy.recipient_id,
            "email": copy.email,
            "how": copy.how,
            "confirmed": copy.confirmed,
            "unsubscribe": match.unsubscribe,
        }
    )
    return found


def receive(
    store: Store,
    raw: bytes,
    *,
    source: str,
    envelope_from: str | None,
    envelope_to: Sequence[str],
    signer: TokenSigner,
    our_domains: Sequence[str],
    account_id: int | None = None,
    report_addresses: Sequence[str] | None = None,
) -> Received:
    """Parse, match and record in one transaction: events, statuses, suppressions, the inbound log.

    With ``account_id`` (mail handed in through one account's API key) only that account's copies
    can be matched: nobody can bounce or complain about another account's mail.

    Mail to a reports address (``report_addresses``, by default ``dmarc@`` each of ``our_domains``) is
    a DMARC or SMTP TLS report: stored as one (dmarc/recording.py), and noted in the inbound log.
    """
    if dmarc_mail.is_report_mail(envelope_to, dmarc_mail.report_addresses(our_domains, report_addresses)):
        return _receive_report(
            store,
            raw,
            source=source,
            envelope_from=envelope_from,
            envelope_to=envelope_to,
            account_id=account_id,
        )
    report = parse_inbound(raw)
    now = datetime.now(UTC)
    with store.write() as conn:
        match = match_report(conn, report, envelope_to, signer, our_domains, account_id)
        event_type = _record(conn, report, match, now) if match.copy is not None else None
        keep_raw = match.copy is None or (
            report.kind is InboundKind.REPLY and _keeps_replies(conn, match.copy.account_id)
        )
        explanation = explain_match(report, match)
        if keep_raw and len(raw) > KEEP_RAW_LIMIT:
            # Anyone on the Internet can mail the bounce domain: big mail is explained, not kept.
            keep_raw = False
            explanation["not_kept"] = f"larger than {KEEP_RAW_LIMIT} bytes"
        inbound_id = _log_inbound(
            conn,
            account_id=match.copy.account_id if match.copy else account_id,
            now=now,
            source=source,
            kind=report.kind.value,
            matched=match.copy is not None,
            envelope_from=envelope_from,
            envelope_to=envelope_to,
            from_address=report.from_address,
            subject=report.subject,
            size=len(raw),
            explanation=explanation,
            raw=raw if keep_raw else None,
        )
    return Received(inbound_id, report, match, event_type)


def _receive_report(
    store: Store,
    raw: bytes,
    *,
    source: str,
    envelope_from: str | None,
    envelope_to: Sequence[str],
    account_id: int | None,
) -> Received:
    parsed = read_report(raw)
    sender, subject = dmarc_mail.sender_and_subject(raw)
    now = datetime.now(UTC)
    with store.write() as conn:
        recorded = store_report(conn, raw, parsed, source=source, account_id=account_id, now=now)
        inbound_id = _log_inbound(
            conn,
            account_id=recorded.account_id,
            now=now,
            source=source,
            kind="dmarc_report",
            matched=recorded.status is ReportStatus.OK and recorded.account_id is not None,
            envelope_from=envelope_from,
            envelope_to=envelope_to,
            from_address=sender,
            subject=subject,
            size=len(raw),
            explanation=dmarc_mail.explanation(recorded),
            raw=None,
        )
    problems = (recorded.error,) if recorded.error else ()
    report = InboundReport(
        InboundKind.UNKNOWN, "dmarc_report", from_address=sender, subject=subject, problems=problems
    )
    return Received(inbound_id, report, Match(None), None, dmarc=recorded)


def _log_inbound(
    conn: Connection,
    *,
    account_id: int | None,
    now: datetime,
    source: str,
    kind: str,
    matched: bool,
    envelope_from: str | None,
    envelope_to: Sequence[str],
    from_address: str | None,
    subject: str | None,
    size: int,
    explanation: dict[str, Any],
    raw: bytes | None,
) -> int:
    inbound_id = conn.execute(
        insert(inbound_messages)
        .values(
            account_id=account_id,
            received_at=now,
            source=source,
            kind=kind,
            matched=matched,
            envelope_from=(envelope_from or "")[:320] or None,
            envelope_to=list(envelope_to)[:100],
            from_address=(from_address or "")[:320] or None,
            subject=subject[:2000] if subject else None,
            size=size,
            explanation=explanation,
            raw=raw,
        )
        .returning(inbound_messages.c.id)
    ).scalar_one()
    return int(inbound_id)


def _record(conn: Connection, report: InboundReport, match: Match, now: datetime) -> EventType | None:
    copy = match.copy
    assert copy is not None
    if match.unsubscribe:
        _event(conn, copy, EventType.UNSUBSCRIBED, now, {"via": "mailto", "from": report.from_address})
        suppress(conn, copy.account_id, copy.email, SuppressionReason.UNSUBSCRIBED.value, now, None)
        return EventType.UNSUBSCRIBED
    if report.kind is InboundKind.BOUNCE:
        return _bounce(conn, report, copy, now)
    if report.kind is InboundKind.DELAY:
        affected = _affected(report, copy)
        data = _recipient_data(affected)
        if _status(conn, copy.recipient_id) in _DELAY_MAY_CHANGE:
            set_status(conn, copy.recipient_id, RecipientStatus.DEFERRED.value, data.get("diagnostic"), now)
        _event(conn, copy, EventType.DEFERRED, now, {**data, "source": "dsn", "format": report.format})
        return EventType.DEFERRED
    if report.kind is InboundKind.COMPLAINT:
        feedback = report.feedback
        data = {
            "feedback_type": feedback.feedback_type if feedback else None,
            "user_agent": feedback.user_agent if feedback else None,
            "reporting_mta": feedback.reporting_mta if feedback else None,
            "source": report.format,
        }
        event_id = _event(conn, copy, EventType.COMPLAINED, now, data)
        if copy.confirmed:
            suppress(conn, copy.account_id, copy.email, SuppressionReason.COMPLAINT.value, now, event_id)
        return EventType.COMPLAINED
    if report.kind is InboundKind.REPLY:
        _event(conn, copy, EventType.REPLIED, now, {"from": report.from_address, "subject": report.subject})
        return EventType.REPLIED
    if report.kind is InboundKind.AUTO_REPLY:
        data = {"from": report.from_address, "subject": report.subject, "why": report.auto_reply_reason}
        _event(conn, copy, EventType.AUTO_REPLIED, now, data)
        return EventType.AUTO_REPLIED
    return None


def _bounce(conn: Connection, report: InboundReport, copy: MatchedCopy, now: datetime) -> EventType:
    affected = _affected(report, copy)
    data = _recipient_data(affected)
    bounce_class = affected.bounce_class if affected else BounceClass.HARD
    reason = affected.reason if affected else BounceReason.OTHER
    data.update(
        {
            "bounce_class": (bounce_class or BounceClass.HARD).value,
            "reason": (reason or BounceReason.OTHER).value,
            "source": "dsn" if report.format == "dsn" else "bounce",
            "format": report.format,
        }
    )
    detail = f"{data['bounce_class']} bounce ({data['reason']}): {data.get('diagnostic') or report.format}"
    set_status(conn, copy.recipient_id, RecipientStatus.BOUNCED.value, detail, now)
    event_id = _event(conn, copy, EventType.BOUNCED, now, data)
    if copy.confirmed and suppresses(bounce_class or BounceClass.HARD, reason):
        suppress(conn, copy.account_id, copy.email, SuppressionReason.HARD_BOUNCE.value, now, event_id)
    return EventType.BOUNCED


def _affected(report: InboundReport, copy: MatchedCopy) -> AffectedRecipient | None:
    """The report's line about this copy: by address, else the first failed (or only) recipient."""
    for recipient in report.recipients:
        if recipient.address and recipient.address.lower() == copy.email.lower():
            return recipient
    failed = [r for r in report.recipients if r.action in (None, "failed", "delayed")]
    return failed[0] if failed else (report.recipients[0] if report.recipients else None)


def _recipient_data(affected: AffectedRecipient | None) -> dict[str, Any]:
    if affected is None:
        return {}
    return {
        "address": affected.address,
        "action": affected.action,
        "enhanced_code": affected.status,
        "code": affected.remote_code,
        "diagnostic": affected.diagnostic,
        "remote_mta": affected.remote_mta,
    }


def _keeps_replies(conn: Connection, account_id: int) -> bool:
    row = conn.execute(select(accounts.c.keep_replies).where(accounts.c.id == account_id)).first()
    return bool(row is not None and row.keep_replies)


def _status(conn: Connection, recipient_id: int) -> str | None:
    row = conn.execute(select(recipients.c.status).where(recipients.c.id == recipient_id)).first()
    return None if row is None else str(row.status)


def _event(conn: Connection, copy: MatchedCopy, type_: EventType, now: datetime, data: dict[str, Any]) -> int:
    return insert_mail_event(
        conn, MailEvent(copy.account_id, copy.message_id, copy.recipient_id, type_, now, data)
    )

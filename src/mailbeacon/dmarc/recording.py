"""Storing a report: whose it is, whether it is already stored, and keeping what could not be read.

Which account a report belongs to: the account it was handed in for (an API key, ``--account``);
otherwise, for mail to the reports address, the one account that sends mail From the report's domain
or a subdomain of it. When no account or several do, the report is kept unmatched (no account) for
the operator to look at: DMARC reports name the IP addresses a domain's mail comes from, which is
not for every account to see.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection

from mailbeacon.dmarc.parse import ReportError, parse_report
from mailbeacon.dmarc.report import DmarcReport, ReportStatus
from mailbeacon.store import Store
from mailbeacon.store.dmarc import accounts_sending_from, find_duplicate, insert_rejected, insert_report

# Raw reports larger than this are not kept (a parsed report is kept whatever its size).
RAW_KEPT_LIMIT = 4 * 1024 * 1024


@dataclass(frozen=True)
class Recorded:
    id: int
    status: ReportStatus
    account_id: int | None
    report: DmarcReport | None  # None when rejected
    error: str | None = None
    duplicate: bool = False  # already stored: nothing was added, ``id`` is the stored one


def read_report(raw: bytes) -> DmarcReport | ReportError:
    """Parse outside any transaction (a large report takes a while); the error is a value to store."""
    try:
        return parse_report(raw)
    except ReportError as exc:
        return exc


def dedup_key(report: DmarcReport) -> str:
    """The same report from the same reporter about the same domain, however often it arrives."""
    parts = (report.kind.value, (report.org_name or "").lower(), report.report_id, report.domain)
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def owner_of(conn: Connection, domain: str) -> int | None:
    senders = accounts_sending_from(conn, domain, limit=2)
    return senders[0] if len(senders) == 1 else None


def store_report(
    conn: Connection,
    raw: bytes,
    parsed: DmarcReport | ReportError,
    *,
    source: str,
    account_id: int | None,
    now: datetime,
) -> Recorded:
    """Store a parsed report (or keep a rejected one) in the caller's transaction."""
    kept = raw if len(raw) <= RAW_KEPT_LIMIT else None
    if isinstance(parsed, ReportError):
        rejected_id = insert_rejected(
            conn,
            account_id=account_id,
            error=str(parsed),
            received_at=now,
            source=source,
            size=len(raw),
            raw=kept,
        )
        return Recorded(rejected_id, ReportStatus.REJECTED, account_id, None, str(parsed))
    owner = account_id if account_id is not None else owner_of(conn, parsed.domain)
    key = dedup_key(parsed)
    for _attempt in range(2):
        existing = find_duplicate(conn, owner, key)
        if existing is not None:
            return Recorded(existing, ReportStatus.OK, owner, parsed, duplicate=True)
        new_id = insert_report(
            conn,
            parsed,
            account_id=owner,
            dedup_key=key,
            received_at=now,
            source=source,
            size=len(raw),
            raw=kept,
        )
        if new_id is not None:
            return Recorded(new_id, ReportStatus.OK, owner, parsed)
        # Stored by a concurrent transaction between the look and the insert: look again. (Reports of
        # no account are not covered by the unique key, NULLs being distinct: on PostgreSQL two copies
        # arriving at the same instant may both be kept; SQLite's writers take turns.)
    raise RuntimeError("a DMARC report was neither stored nor found")


def record_report(store: Store, raw: bytes, *, source: str, account_id: int | None = None) -> Recorded:
    """Parse and store one report file or mail (``account_id``: the account it is handed in for)."""
    parsed = read_report(raw)
    with store.write() as conn:
        return store_report(conn, raw, parsed, source=source, account_id=account_id, now=datetime.now(UTC))

"""Mail to the reports address (``dmarc_report_address``): a DMARC or SMTP TLS report, not feedback on
a copy we sent. Which mail that is, and what the inbound log says about it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parseaddr
from typing import Any

from mailbeacon.dmarc.recording import Recorded

REPORTS_LOCAL_PART = "dmarc"


def report_addresses(our_domains: Iterable[str], configured: Sequence[str] | None) -> frozenset[str]:
    """The configured reports addresses, else ``dmarc@`` each of our (bounce) domains."""
    if configured:
        return frozenset(address.strip().lower() for address in configured)
    return frozenset(f"{REPORTS_LOCAL_PART}@{domain.lower()}" for domain in our_domains)


def is_report_mail(envelope_to: Iterable[str], addresses: frozenset[str]) -> bool:
    return any(address.strip().strip("<>").lower() in addresses for address in envelope_to)


def sender_and_subject(raw: bytes) -> tuple[str | None, str | None]:
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw[: 64 * 1024])
    sender = parseaddr(str(headers.get("From", "")))[1] or None
    subject = headers.get("Subject")
    return sender, (str(subject)[:2000] if subject is not None else None)


def explanation(recorded: Recorded) -> dict[str, Any]:
    """The inbound log's note: where the report went (its raw mail is kept with it, not twice)."""
    report = recorded.report
    return {
        "kind": "dmarc_report",
        "dmarc_report_id": recorded.id,
        "status": recorded.status.value,
        "error": recorded.error,
        "duplicate": recorded.duplicate,
        "report_kind": report.kind.value if report else None,
        "domain": report.domain if report else None,
        "reporter": report.org_name if report else None,
        "account_id": recorded.account_id,
    }

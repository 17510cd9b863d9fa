"""mailbeacon's own typed view of a DMARC aggregate, DMARC failure or SMTP TLS report."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class ReportKind(enum.StrEnum):
    AGGREGATE = "aggregate"  # RFC 7489 / RFC 9990 aggregate (rua) report
    FAILURE = "failure"  # RFC 7489 failure (ruf, forensic) report
    SMTP_TLS = "smtp_tls"  # RFC 8460 SMTP TLS report


class ReportStatus(enum.StrEnum):
    OK = "ok"
    REJECTED = "rejected"


@dataclass(frozen=True)
class PublishedPolicy:
    """The DMARC record the reporter found for the domain (``p=``, ``sp=``, ... as given)."""

    domain: str
    p: str | None
    sp: str | None = None
    np: str | None = None
    pct: str | None = None
    adkim: str | None = None
    aspf: str | None = None
    fo: str | None = None


@dataclass(frozen=True)
class Source:
    """Where the mail came from: the IP address, and who runs it (from the offline IP database)."""

    ip: str
    name: str | None = None  # the organisation, e.g. "Google"
    type: str | None = None  # e.g. "Email Provider", "ISP"
    asn: int | None = None
    as_name: str | None = None
    country: str | None = None


@dataclass(frozen=True)
class DkimResult:
    domain: str
    selector: str | None
    result: str


@dataclass(frozen=True)
class SpfResult:
    domain: str
    scope: str | None
    result: str


@dataclass(frozen=True)
class AggregateRecord:
    """One row of an aggregate report: ``count`` messages from one source with the same outcome.

    ``dkim`` and ``spf`` are the policy-evaluated (aligned) results; ``dkim_results`` and
    ``spf_results`` the raw authentication results, aligned or not.
    """

    source: Source
    count: int
    disposition: str  # the policy applied: none, quarantine, reject (pass in some RFC 9990 reports)
    dkim: str
    spf: str
    dkim_aligned: bool
    spf_aligned: bool
    dmarc_pass: bool
    header_from: str
    envelope_from: str | None
    envelope_to: str | None
    interval_begin: datetime
    interval_end: datetime
    override_reasons: tuple[str | None, ...] = ()
    dkim_results: tuple[DkimResult, ...] = ()
    spf_results: tuple[SpfResult, ...] = ()


@dataclass(frozen=True)
class DmarcReport:
    """A parsed report. Aggregate reports carry records; failure and SMTP TLS reports carry ``details``
    (their fields as JSON: the failed message's identifiers, or the TLS policies and session counts)."""

    kind: ReportKind
    domain: str
    report_id: str
    org_name: str | None
    org_email: str | None
    begin: datetime | None
    end: datetime | None
    policy: PublishedPolicy | None = None
    records: tuple[AggregateRecord, ...] = ()
    errors: tuple[str, ...] = ()
    xml_schema: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def message_count(self) -> int:
        if self.kind is ReportKind.AGGREGATE:
            return sum(record.count for record in self.records)
        if self.kind is ReportKind.FAILURE:
            return 1
        sessions = 0
        for policy in self.details.get("policies", []):
            sessions += int(policy.get("successful_session_count") or 0)
            sessions += int(policy.get("failed_session_count") or 0)
        return sessions

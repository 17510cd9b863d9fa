"""DMARC aggregate and failure reports and SMTP TLS reports: parse (parsedmarc, offline), normalise to
mailbeacon's typed reports, summarise per sending domain, and store.

``parse_report(raw)`` reads XML, gzip, zip, SMTP TLS JSON, or a mail carrying one; ``explain(report)``
gives its JSON; ``record_report(store, raw, ...)`` parses and stores it (dmarc/recording.py says whose
it is); ``summarise`` adds records up (store/dmarc.py: ``domain_summary`` for a stored domain).
"""

from __future__ import annotations

from mailbeacon.dmarc.explain import explain
from mailbeacon.dmarc.parse import ReportError, parse_report
from mailbeacon.dmarc.recording import Recorded, record_report
from mailbeacon.dmarc.report import AggregateRecord, DmarcReport, PublishedPolicy, ReportKind, ReportStatus
from mailbeacon.dmarc.summary import DomainSummary, summarise

__all__ = [
    "AggregateRecord",
    "DmarcReport",
    "DomainSummary",
    "PublishedPolicy",
    "Recorded",
    "ReportError",
    "ReportKind",
    "ReportStatus",
    "explain",
    "parse_report",
    "record_report",
    "summarise",
]

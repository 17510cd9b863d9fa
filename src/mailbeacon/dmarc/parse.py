"""Reading a report with parsedmarc, offline: XML, gzip, zip, SMTP TLS JSON, or mail carrying any of them.

No DNS lookups and no downloads: the source's organisation comes from the IP database bundled with
parsedmarc, and reverse DNS is left empty.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from mailbeacon.dmarc.normalise import aggregate_report, failure_report, smtp_tls_report
from mailbeacon.dmarc.report import DmarcReport, ReportKind

# Largest report parsedmarc may unpack from a gzip or zip (its own default is 100 MiB): the XML is
# then held in memory as a tree, several times its size.
MAX_UNPACKED_BYTES = 32 * 1024 * 1024


class ReportError(ValueError):
    """The input is not a report mailbeacon can read; the message says why, for the sender."""


@cache
def _parser() -> tuple[Any, Any, Any]:
    """parsedmarc, imported on first use (it takes most of a second), and one offline configuration
    whose caches (IP lookups, the reverse DNS map) live as long as the process."""
    import parsedmarc
    from parsedmarc.config import ParserConfig

    parsedmarc.MAX_DECOMPRESSED_REPORT_SIZE = MAX_UNPACKED_BYTES
    config = ParserConfig(offline=True, always_use_local_files=True)
    return parsedmarc.parse_report_file, parsedmarc.ParserError, config


def parse_report(raw: bytes) -> DmarcReport:
    """One report from the bytes of a file or a mail; ``ReportError`` if it is none."""
    if not raw.strip():
        raise ReportError("empty input: send a DMARC aggregate, failure or SMTP TLS report")
    parse_report_file, parser_error, config = _parser()
    try:
        parsed = parse_report_file(raw, config=config)
    except parser_error as exc:
        raise ReportError(_reason(exc)) from exc
    except (ValueError, TypeError, KeyError, LookupError, UnicodeError) as exc:
        raise ReportError(f"not a readable report: {exc}") from exc
    try:
        report = _normalise(parsed["report_type"], parsed["report"])
    except (ValueError, TypeError, KeyError) as exc:
        raise ReportError(f"report is missing a required part: {exc}") from exc
    if not report.domain:
        raise ReportError("report names no domain")
    if not report.report_id:
        raise ReportError("report has no report id")
    return report


def _normalise(kind: str, report: dict[str, Any]) -> DmarcReport:
    if kind == ReportKind.AGGREGATE:
        return aggregate_report(report)
    if kind == ReportKind.FAILURE:
        return failure_report(report)
    return smtp_tls_report(report)


def _reason(exc: Exception) -> str:
    # parsedmarc appends where in its own code an error was raised: no use to whoever sent the report.
    text = str(exc).split(" (raised at ", 1)[0].strip()
    return text or type(exc).__name__

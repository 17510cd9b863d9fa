"""The DMARC commands: explain a report, import report files, list and show them, a domain's summary."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any, BinaryIO

import click

from mailbeacon.cli import _account, _settings, _store, main, store_options
from mailbeacon.dmarc.summary import DomainSummary, Outcome


def _read_capped(source: BinaryIO, limit: int, name: str) -> bytes:
    raw = source.read(limit + 1)
    if len(raw) > limit:
        raise click.ClickException(f"{name}: larger than dmarc_max_report_bytes ({limit} bytes)")
    return raw


def _explain(source: BinaryIO) -> None:
    from mailbeacon.dmarc import ReportError, explain, parse_report

    raw = _read_capped(source, _settings({}).dmarc_max_report_bytes, source.name)
    try:
        report = parse_report(raw)
    except ReportError as exc:
        raise click.ClickException(f"{source.name}: not a readable report: {exc}") from exc
    click.echo(json.dumps(explain(report), indent=2))


@main.group(name="dmarc", invoke_without_command=True)
@click.option(
    "--explain",
    "explain_file",
    type=click.File("rb"),
    help="Print what mailbeacon reads in this report FILE (JSON) and store nothing",
)
@click.pass_context
def dmarc_group(ctx: click.Context, explain_file: BinaryIO | None) -> None:
    """DMARC aggregate and failure reports, SMTP TLS reports."""
    if explain_file is not None:
        if ctx.invoked_subcommand is not None:
            raise click.UsageError("--explain FILE takes no command after it")
        _explain(explain_file)
    elif ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@dmarc_group.command(name="explain")
@click.argument("file", type=click.File("rb"))
def dmarc_explain(file: BinaryIO) -> None:
    """Print a report FILE (or -) as mailbeacon reads it, as JSON; store nothing (same as --explain)."""
    _explain(file)


@dmarc_group.command(name="import")
@store_options
@click.argument("files", nargs=-1, required=True, type=click.File("rb"))
@click.option("--account", help="The account the reports are for (default: the only account)")
def dmarc_import(**options: Any) -> None:
    """Store report files (XML, gzip, zip, TLS JSON or .eml) for an account; exit 1 if any is rejected."""
    from mailbeacon.dmarc import ReportStatus, record_report

    settings = _settings(options)
    store = _store(settings)
    account = _account(store, options["account"])
    rejected = 0
    for source in options["files"]:
        raw = _read_capped(source, settings.dmarc_max_report_bytes, source.name)
        recorded = record_report(store, raw, source="cli", account_id=account.id)
        if recorded.status is ReportStatus.REJECTED:
            rejected += 1
            click.echo(
                f"{source.name}: rejected: {recorded.error} (kept as rejected report {recorded.id})", err=True
            )
            continue
        report = recorded.report
        assert report is not None
        if recorded.duplicate:
            click.echo(f"{source.name}: already stored as report {recorded.id}; nothing added")
            continue
        click.echo(
            f"{source.name}: report {recorded.id}: {report.kind.value} for {report.domain}"
            f" from {report.org_name or '?'}, {len(report.records)} records, {report.message_count} messages"
        )
    if rejected:
        sys.exit(1)


def _utc(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            "give a date or time, e.g. 2026-01-31 or 2026-01-31T12:00:00Z", param_hint=name
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


@dmarc_group.command(name="summary")
@store_options
@click.option("--domain", required=True, help="The sending domain")
@click.option("--since", help="From this date or time (inclusive; UTC unless a zone is given)")
@click.option("--until", help="To this date or time (exclusive)")
@click.option("--account", help="Account name or id (default: the only account)")
@click.option("--top", default=20, show_default=True, type=int, help="Source IPs to list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables")
def dmarc_summary(**options: Any) -> None:
    """A domain's DMARC results: by source organisation, reporter and source IP, alignment, policy applied."""
    from mailbeacon.dmarc.explain import summary_json
    from mailbeacon.store.dmarc import domain_summary

    store = _store(_settings(options))
    account = _account(store, options["account"])
    since, until = _utc(options["since"], "--since"), _utc(options["until"], "--until")
    with store.read(snapshot=True) as conn:
        summary = domain_summary(conn, account.id, options["domain"], since=since, until=until)
    if options["as_json"]:
        click.echo(json.dumps(summary_json(summary), indent=2))
        return
    click.echo(format_summary(summary, options["top"]))


def _outcome(outcome: Outcome) -> str:
    applied = ", ".join(f"{name} {count}" for name, count in sorted(outcome.dispositions.items()))
    return (
        f"{outcome.messages:>8}  dmarc pass {outcome.dmarc_pass} fail {outcome.dmarc_fail}"
        f"  dkim aligned {outcome.dkim_aligned_pass}/{outcome.messages}"
        f"  spf aligned {outcome.spf_aligned_pass}/{outcome.messages}  applied: {applied}"
    )


def format_summary(summary: DomainSummary, top: int) -> str:
    period = "all time"
    if summary.since or summary.until:
        since = summary.since.isoformat() if summary.since else "the start"
        period = f"{since} to {summary.until.isoformat() if summary.until else 'now'}"
    lines = [
        f"{summary.domain}: {summary.reports} aggregate reports, {period}",
        f"  all     {_outcome(summary.totals)}",
    ]
    for policy in summary.published_policies:
        published = f"p={policy.p} sp={policy.sp} pct={policy.pct or 100}"
        lines.append(f"  published {published} in {policy.reports} reports")
    lines.append("by source organisation:")
    lines += [f"  {org.source_name or '(unknown)':<30}{_outcome(org)}" for org in summary.by_source_org]
    lines.append("by reporter:")
    lines += [f"  {rep.reporter or '(unknown)':<30}{_outcome(rep)}" for rep in summary.by_reporter]
    lines.append(f"by source IP (top {top} of {len(summary.by_source_ip)}):")
    lines += [
        f"  {ip.source_ip:<40}{_outcome(ip)}  {ip.source_name or ''}" for ip in summary.by_source_ip[:top]
    ]
    return "\n".join(lines)


@dmarc_group.command(name="list")
@store_options
@click.option("--account", help="This account's reports [default: the reports that reached no account]")
@click.option("--domain", help="Only reports about this domain")
@click.option("--rejected", is_flag=True, help="Only reports that could not be read")
@click.option("--limit", default=50, show_default=True, type=int)
def dmarc_list(**options: Any) -> None:
    """Reports received, newest last: id, status, kind, domain, reporter, period, messages (or the error)."""
    from mailbeacon.store.dmarc import ReportFilter, list_reports

    store = _store(_settings(options))
    owner = _account(store, options["account"]).id if options["account"] else None
    where = ReportFilter(owner, options["domain"], status="rejected" if options["rejected"] else None)
    with store.read() as conn:
        rows = list_reports(conn, where, options["limit"])
    for row in rows:
        begin = row.begin.strftime("%Y-%m-%d") if row.begin else "-"
        what = row.error if row.error else f"{row.message_count} messages"
        fields = (row.id, row.status, row.kind or "-", row.domain or "-", row.org_name or "-", begin, what)
        click.echo("\t".join(str(field) for field in fields))


@dmarc_group.command(name="show")
@store_options
@click.argument("report_id", type=int)
@click.option("--account", help="The report's account [default: the reports that reached no account]")
@click.option("--raw", is_flag=True, help="Print the report as it was received")
def dmarc_show(**options: Any) -> None:
    """One stored report as JSON (with its records), or its raw bytes."""
    from mailbeacon.dmarc.explain import record_json
    from mailbeacon.store.dmarc import get_raw, get_report, report_records

    store = _store(_settings(options))
    owner = _account(store, options["account"]).id if options["account"] else None
    with store.read() as conn:
        row = get_report(conn, owner, options["report_id"])
        if row is None:
            raise click.ClickException(f"no DMARC report {options['report_id']} here")
        if options["raw"]:
            raw = get_raw(conn, owner, row.id)
            if raw is None:
                raise click.ClickException(f"report {row.id} was too large to keep as received")
            sys.stdout.buffer.write(raw)
            return
        records = report_records(conn, row.id)
    shown = {"id": row.id, "status": row.status, "error": row.error, **(row.parsed or {})}
    shown["records"] = [record_json(record) for record in records]
    click.echo(json.dumps(shown, indent=2, default=str))

"""`mailbeacon logs KIND`: one log of an account streamed to standard output as JSON Lines or CSV."""

from __future__ import annotations

import os
import sys
from datetime import datetime
from typing import Any

import click

from mailbeacon.cli import _account, _settings, _store, main, store_options
from mailbeacon.store.logs import LogKind


def _aware_time(_ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        found = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("not an ISO 8601 time, e.g. 2026-01-31T12:00:00Z") from None
    if found.tzinfo is None:
        raise click.BadParameter("give a time zone, e.g. 2026-01-31T12:00:00Z")
    return found


@main.command(name="logs")
@store_options
@click.argument("kind", type=click.Choice([kind.value for kind in LogKind]))
@click.option("--since", callback=_aware_time, help="From this time on (ISO 8601 with time zone)")
@click.option("--until", callback=_aware_time, help="Before this time (ISO 8601 with time zone)")
@click.option("--message", "message_id", type=click.IntRange(min=1), help="One message's rows (its id)")
@click.option("--campaign", help="Messages of this campaign")
@click.option("--recipient", help="One recipient address (case-insensitive)")
@click.option("--tag", help="Messages carrying this tag")
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True, help="Output"
)
@click.option("--account", help="Account name or id (default: the only account)")
def logs(**options: Any) -> None:
    """Print a log (attempts, deliveries, bounces, failures, opens, clicks, unsubscribes, complaints,
    responses, dmarc) as JSON Lines or CSV, oldest first."""
    from mailbeacon.logs_format import ExportFormat, encode
    from mailbeacon.store.logs import SPECS, FilterNotApplicable, LogFilter, check_filters, iter_log
    from mailbeacon.tracking.ingest import catch_up, enricher_from

    settings = _settings(options)
    store = _store(settings)
    account = _account(store, options["account"])
    kind = LogKind(options["kind"])
    where = LogFilter(
        account_id=account.id,
        since=options["since"],
        until=options["until"],
        message_id=options["message_id"],
        campaign=options["campaign"],
        recipient=options["recipient"],
        tag=options["tag"],
    )
    try:
        check_filters(kind, where)
    except FilterNotApplicable as exc:
        raise click.UsageError(str(exc)) from None
    catch_up(store, enricher_from(settings))  # tracking hits answered before now are in the log
    out = sys.stdout
    try:
        for piece in encode(ExportFormat(options["fmt"]), SPECS[kind], iter_log(store, kind, where)):
            out.write(piece)
        out.flush()
    except BrokenPipeError:
        # The reader stopped early (`| head`): not an error; keep Python's flush at exit quiet too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        store.dispose()

"""`mailbeacon classify`: what mailbeacon makes of one open or click, and why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from mailbeacon.cli import main


def _headers(given: tuple[str, ...]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in given:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise click.BadParameter(f"{item!r} is not NAME:VALUE", param_hint="--header")
        headers[name.strip().lower()] = value.strip()
    return headers


@main.command()
@click.option("--user-agent", help="The User-Agent header of the hit (leave out for a hit without one)")
@click.option("--ip", help="The client's address")
@click.option(
    "--header",
    "headers",
    multiple=True,
    metavar="NAME:VALUE",
    help="Another request header, e.g. X-Requested-With:com.google.android.gm or Sec-Purpose:prefetch",
)
@click.option("--method", default="GET", show_default=True, help="HTTP method of the hit")
@click.option(
    "--kind",
    type=click.Choice(["open", "click"]),
    default="open",
    show_default=True,
    help="A hit on the open pixel or on a link",
)
@click.option("--seconds-since-sent", type=float, help="How long after sending the hit came")
@click.option("--trap", is_flag=True, help="The hit is on the message's invisible trap link")
@click.option(
    "--geoip-database",
    type=click.Path(path_type=Path, dir_okay=False),
    help="IPinfo or GeoLite2 Country/City .mmdb [env MAILBEACON_GEOIP_DATABASE]",
)
@click.option(
    "--geoip-asn-database",
    type=click.Path(path_type=Path, dir_okay=False),
    help="GeoLite2 ASN .mmdb [env MAILBEACON_GEOIP_ASN_DATABASE]",
)
def classify(**options: Any) -> None:
    """Print, as JSON, what mailbeacon makes of one hit: place, network, client, machine or human, and why."""
    from mailbeacon.config import Settings
    from mailbeacon.enrich import Enricher, HitFacts, purpose_of

    headers = _headers(options["headers"])
    given = {k: options[k] for k in ("geoip_database", "geoip_asn_database") if options[k] is not None}
    try:
        settings = Settings(**given)
        enricher = Enricher.open(settings.geoip_database, settings.geoip_asn_database)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    hit = HitFacts(
        kind=options["kind"],
        method=options["method"].upper(),
        user_agent=options["user_agent"] or headers.get("user-agent"),
        requested_with=headers.get("x-requested-with"),
        ip=options["ip"],
        purpose=purpose_of(headers),
        seconds_since_sent=options["seconds_since_sent"],
        trap=options["trap"],
    )
    found = enricher.enrich(hit)
    fields = found.event_fields()
    data = fields.pop("data")
    report = {
        "kind": hit.kind,
        "ip": hit.ip,
        "user_agent": hit.user_agent,
        "method": hit.method,
        **fields,
        "evidence": data.pop("evidence"),
        **data,
        "ip_database": enricher.geo.sources,
        "attribution": enricher.geo.attribution,
    }
    report.pop("machine_reason")
    click.echo(json.dumps(report, indent=2))

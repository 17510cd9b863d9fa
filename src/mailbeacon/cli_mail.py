"""The mail path's commands: SMTP access, DKIM keys, feedback mail, suppressions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, BinaryIO

import click

from mailbeacon.cli import _account, _settings, _store, main, store_options


@main.group(name="smtp")
def smtp_group() -> None:
    """Who may submit mail by SMTP: credentials and trusted networks."""


@smtp_group.command(name="credential")
@store_options
@click.argument("username")
@click.option("--account", help="Account name or id (default: the only account)")
@click.option(
    "--track",
    help="What mail sent with this login tracks by default: opens, clicks, unsubscribes (comma-separated),"
    " all or none [default: the account's settings]",
)
def smtp_credential(**options: Any) -> None:
    """Make an SMTP login for an account; the password is shown once."""
    from mailbeacon.intake.options import OptionError, parse_options
    from mailbeacon.store.smtp_access import create_credential

    store = _store(_settings(options))
    account = _account(store, options["account"])
    flags: dict[str, bool | None] = {}
    if options["track"] is not None:
        try:
            parsed = parse_options([("X-Mailbeacon-Track", options["track"])])
        except OptionError as exc:
            raise click.BadParameter(str(exc), param_hint="--track") from exc
        flags = {
            "track_opens": parsed.track_opens,
            "track_clicks": parsed.track_clicks,
            "track_unsubscribes": parsed.track_unsubscribes,
        }
    try:
        with store.write() as conn:
            secret = create_credential(conn, account.id, options["username"], **flags)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"SMTP login for account {account.name!r}")
    click.echo(f"  username: {options['username']}")
    click.echo(f"  password (shown only now): {secret}")


@smtp_group.command(name="revoke")
@store_options
@click.argument("username")
@click.option("--account", help="Account name or id (default: the only account)")
def smtp_revoke(**options: Any) -> None:
    """Revoke an SMTP login."""
    from mailbeacon.store.smtp_access import revoke_credential

    store = _store(_settings(options))
    account = _account(store, options["account"])
    with store.write() as conn:
        if not revoke_credential(conn, account.id, options["username"]):
            raise click.ClickException(f"no active SMTP login {options['username']!r} in {account.name!r}")
    click.echo(f"revoked {options['username']}")


@smtp_group.command(name="trust")
@store_options
@click.argument("network")
@click.option("--account", help="Account name or id (default: the only account)")
def smtp_trust(**options: Any) -> None:
    """Let clients in NETWORK (a CIDR range) submit for an account without AUTH."""
    from mailbeacon.store.smtp_access import add_trusted_network

    store = _store(_settings(options))
    account = _account(store, options["account"])
    try:
        with store.write() as conn:
            added = add_trusted_network(conn, account.id, options["network"])
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{added.network} may now submit without AUTH, for account {account.name!r}")


@smtp_group.command(name="untrust")
@store_options
@click.argument("network")
def smtp_untrust(**options: Any) -> None:
    """Stop trusting a network."""
    from mailbeacon.store.smtp_access import remove_trusted_network

    store = _store(_settings(options))
    try:
        with store.write() as conn:
            removed = remove_trusted_network(conn, options["network"])
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if not removed:
        raise click.ClickException(f"{options['network']} was not trusted")
    click.echo(f"{options['network']} is no longer trusted")


@smtp_group.command(name="list")
@store_options
@click.option("--account", help="Account name or id (default: the only account)")
def smtp_list(**options: Any) -> None:
    """SMTP logins of an account, and all trusted networks."""
    from mailbeacon.store.smtp_access import list_credentials, list_trusted_networks

    store = _store(_settings(options))
    account = _account(store, options["account"])
    with store.read() as conn:
        logins = list_credentials(conn, account.id)
        networks = list_trusted_networks(conn)
    click.echo(f"SMTP logins of {account.name!r}:")
    for login in logins:
        click.echo(f"  {login.username}")
    click.echo("trusted networks:")
    for network in networks:
        click.echo(f"  {network.network} -> account {network.account_id}")


@main.group(name="dkim")
def dkim_group() -> None:
    """DKIM signing keys, one per sending domain."""


@dkim_group.command(name="generate")
@store_options
@click.argument("domain")
@click.option("--selector", default="mailbeacon", show_default=True)
@click.option("--bits", default=2048, show_default=True, type=int)
@click.option("--overwrite", is_flag=True, help="Replace an existing key for this domain and selector")
def dkim_generate(**options: Any) -> None:
    """Make a DKIM key for DOMAIN and print the DNS TXT record to publish."""
    from mailbeacon.delivery.dkim import DkimKeyError, DkimKeyring, generate_key

    settings = _settings(options)
    directory = settings.resolved_dkim_dir()
    try:
        key = generate_key(options["domain"], options["selector"], options["bits"])
        path = DkimKeyring.from_directory(directory).save(key, directory, overwrite=options["overwrite"])
    except (ValueError, DkimKeyError, FileExistsError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"private key written to {path} (readable by this user only)")
    click.echo("publish this DNS TXT record, then mail from the domain is signed:")
    click.echo(key.zone_file_line())


@main.command(name="inbound")
@store_options
@click.argument("file", type=click.File("rb"))
@click.option("--explain", is_flag=True, help="Only print what mailbeacon makes of it (JSON); store nothing")
@click.option("--to", "envelope_to", multiple=True, help="The envelope recipient it was delivered to")
@click.option(
    "--account",
    help="Match only this account's mail, and keep the message in its inbox if it matches nothing",
)
@click.option("--bounce-domain", help="The domain of the return paths [default: the bounce_domain setting]")
def inbound(**options: Any) -> None:
    """Feed one bounce, complaint or reply (a raw message, FILE or -) to mailbeacon."""
    from mailbeacon.inbound.matching import match_report
    from mailbeacon.inbound.parse import parse_inbound
    from mailbeacon.inbound.recording import explain_match, receive
    from mailbeacon.tracking.keyring import Keyring

    settings = _settings(options)
    source: BinaryIO = options["file"]
    raw = source.read(settings.smtp_max_message_bytes + 1)
    if len(raw) > settings.smtp_max_message_bytes:
        raise click.ClickException(f"larger than smtp_max_message_bytes ({settings.smtp_max_message_bytes})")
    store = _store(settings)
    signer = Keyring(store).current_signer()
    domains = [(options["bounce_domain"] or settings.resolved_bounce_domain()).lower()]
    envelope_to = list(options["envelope_to"])
    account_id = _account(store, options["account"]).id if options["account"] else None
    if options["explain"]:
        report = parse_inbound(raw)
        with store.read() as conn:
            match = match_report(conn, report, envelope_to, signer, domains, account_id)
        click.echo(json.dumps(explain_match(report, match), indent=2, default=str))
        return
    received = receive(
        store,
        raw,
        source="cli",
        envelope_from=None,
        envelope_to=envelope_to,
        signer=signer,
        our_domains=domains,
        account_id=account_id,
    )
    copy = received.match.copy
    what = received.event_type.value if received.event_type else "nothing recorded"
    where = (
        f"copy {copy.recipient_id} of message {copy.message_id}"
        if copy
        else "no sent copy (kept as unmatched)"
    )
    click.echo(f"inbound {received.inbound_id}: {received.report.kind.value} -> {what}; {where}")


@main.command(name="unmatched")
@store_options
@click.option("--account", help="This account's unmatched mail [default: mail that reached no account]")
@click.option("--show", "show_id", type=int, help="Print the raw message with this id")
@click.option("--limit", default=50, show_default=True, type=int)
def unmatched(**options: Any) -> None:
    """Feedback mail that matched no sent copy, newest first: what mailbeacon could not place."""
    from sqlalchemy import select

    from mailbeacon.store.tables import inbound_messages

    store = _store(_settings(options))
    owner = _account(store, options["account"]).id if options["account"] else None
    mine = (
        inbound_messages.c.account_id.is_(None) if owner is None else inbound_messages.c.account_id == owner
    )
    query = select(inbound_messages).where(mine, inbound_messages.c.matched.is_(False))
    if options["show_id"] is not None:
        with store.read() as conn:
            row = conn.execute(query.where(inbound_messages.c.id == options["show_id"])).one_or_none()
        if row is None or row.raw is None:
            raise click.ClickException(f"no unmatched inbound message {options['show_id']} here")
        click.echo(row.raw.decode("utf-8", "replace"), nl=False)
        return
    with store.read() as conn:
        rows = conn.execute(query.order_by(inbound_messages.c.id.desc()).limit(options["limit"])).all()
    for row in rows:
        when = row.received_at.strftime("%Y-%m-%d %H:%M:%S")
        click.echo(f"{row.id}\t{when}\t{row.kind}\t{row.from_address or '-'}\t{row.subject or ''}")


@main.group(name="suppressions")
def suppressions_group() -> None:
    """Addresses an account never mails again."""


@suppressions_group.command(name="list")
@store_options
@click.option("--account", help="Account name or id (default: the only account)")
def suppressions_list(**options: Any) -> None:
    from mailbeacon.store.suppressions import list_suppressions

    store = _store(_settings(options))
    account = _account(store, options["account"])
    with store.read() as conn:
        rows = list_suppressions(conn, account.id, limit=1_000_000)
    for row in rows:
        click.echo(f"{row.email}\t{row.reason}\t{row.created_at.isoformat()}")


@suppressions_group.command(name="add")
@store_options
@click.argument("email")
@click.option(
    "--reason", default="manual", show_default=True, help="manual, unsubscribed, hard_bounce, complaint"
)
@click.option("--account", help="Account name or id (default: the only account)")
def suppressions_add(**options: Any) -> None:
    from mailbeacon.events import SuppressionReason
    from mailbeacon.store.suppressions import suppress

    try:
        reason = SuppressionReason(options["reason"])
    except ValueError:
        raise click.BadParameter(f"not one of {', '.join(r.value for r in SuppressionReason)}") from None
    store = _store(_settings(options))
    account = _account(store, options["account"])
    with store.write() as conn:
        suppress(conn, account.id, options["email"], reason.value, datetime.now(UTC), None)
    click.echo(f"{options['email'].lower()} suppressed ({reason.value})")


@suppressions_group.command(name="remove")
@store_options
@click.argument("email")
@click.option("--account", help="Account name or id (default: the only account)")
def suppressions_remove(**options: Any) -> None:
    from mailbeacon.store.suppressions import unsuppress

    store = _store(_settings(options))
    account = _account(store, options["account"])
    with store.write() as conn:
        if not unsuppress(conn, account.id, options["email"]):
            raise click.ClickException(f"{options['email']} is not suppressed")
    click.echo(f"{options['email'].lower()} may be mailed again")

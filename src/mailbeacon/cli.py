"""The `mailbeacon` command: options -> Settings -> a role. No business logic lives here."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from mailbeacon.bootstrap import add_account, demo_account, prepare_store, resolve_account
from mailbeacon.config import Settings
from mailbeacon.store import Store
from mailbeacon.store.accounts import Account

_SETTING_OPTIONS = (
    "data_dir",
    "database_url",
    "host",
    "port",
    "public_base_url",
    "workers",
    "trusted_proxies",
    "roles",
    "smtp_port",
)


def _settings(options: dict[str, Any]) -> Settings:
    given = {k: v for k, v in options.items() if k in _SETTING_OPTIONS and v not in (None, ())}
    for name in ("trusted_proxies", "roles"):
        if name in given:
            given[name] = ",".join(given[name])
    try:
        return Settings(**given)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc


def _store(settings: Settings) -> Store:
    store = Store.from_url(settings.resolved_database_url(), sqlite_synchronous=settings.sqlite_synchronous)
    prepare_store(store)
    return store


def _account(store: Store, name_or_id: str | None) -> Account:
    try:
        return resolve_account(store, name_or_id)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from exc


def store_options(func: Any) -> Any:
    func = click.option(
        "--database-url", help="sqlite:///PATH or postgresql://... [env MAILBEACON_DATABASE_URL]"
    )(func)
    return click.option(
        "--data-dir",
        type=click.Path(path_type=Path),
        help="Where the SQLite store lives [env MAILBEACON_DATA_DIR]",
    )(func)


@click.group()
@click.version_option(package_name="mailbeacon")
def main() -> None:
    """mailbeacon: self-hosted email tracking."""


@main.command()
@store_options
@click.option("--account", "account_name", default="default", show_default=True, help="Name of the account")
@click.option(
    "--self-signed-tls",
    is_flag=True,
    help="Also make a self-signed certificate for SMTP STARTTLS (for trying it out)",
)
def init(**options: Any) -> None:
    """Create the store, an account and an API key (shown once)."""
    settings = _settings(options)
    store = _store(settings)
    if options["self_signed_tls"]:
        from mailbeacon.intake.certificates import make_self_signed

        cert, _key = make_self_signed(settings.smtp_hostname, settings.data_dir / "tls")
        click.echo(f"self-signed SMTP certificate for {settings.smtp_hostname}: {cert}")
    try:
        created = add_account(store, options["account_name"])
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"store ready: {store.engine.url.render_as_string(hide_password=True)}")
    click.echo(f"account {created.account.name!r} (id {created.account.id})")
    click.echo(f"API key (shown only now, keep it safe): {created.api_key}")


@main.command()
@store_options
def migrate(**options: Any) -> None:
    """Bring the store's schema up to date (run once before starting processes at scale)."""
    store = _store(_settings(options))
    click.echo(f"schema up to date: {store.engine.url.render_as_string(hide_password=True)}")


@main.command()
@store_options
@click.option("--host", help="Address to listen on [default 127.0.0.1]")
@click.option("--port", type=int, help="HTTP port [default 8025]")
@click.option(
    "--public-base-url",
    help="The URL recipients reach this server at, e.g. https://track.example.com",
)
@click.option("--workers", type=int, help="HTTP worker processes [default 1]")
@click.option(
    "--trusted-proxy",
    "trusted_proxies",
    multiple=True,
    help="CIDR whose X-Forwarded-For is believed",
)
@click.option("--smtp-port", type=int, help="SMTP port [default 2525]")
@click.option(
    "--role",
    "roles",
    multiple=True,
    type=click.Choice(["web", "smtp", "worker"]),
    help="Run only this part (repeatable) [default: all of them]",
)
@click.option("--demo", is_flag=True, help="Make a demo account with a fresh API key and print how to try it")
def serve(**options: Any) -> None:
    """Run the server: tracking endpoints and REST API, SMTP intake and delivery (or the --role given)."""
    from granian.constants import Interfaces, Loops
    from granian.server import Server

    settings = _settings(options)
    store = _store(settings)
    base = settings.resolved_public_base_url()
    if options["demo"]:
        from mailbeacon.intake.certificates import make_self_signed

        demo = demo_account(store)
        if settings.resolved_tls_files() is None:
            make_self_signed(settings.smtp_hostname, settings.data_dir / "tls")
        click.echo(_demo_banner(base, demo.api_key, settings))
    store.dispose()
    if "web" not in settings.roles:
        import asyncio

        import uvloop

        from mailbeacon.mail_roles import run_mail_roles

        click.echo(f"mailbeacon running {', '.join(settings.roles)}")
        uvloop.install()
        asyncio.run(run_mail_roles(settings))
        return
    os.environ.update(settings.to_environment())
    click.echo(f"mailbeacon serving on {base} (API docs at {base}/docs)")
    Server(
        "mailbeacon.app:create_app",
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        loop=Loops.uvloop,
        log_access=False,
    ).serve()


def _demo_banner(base: str, key: str, settings: Settings) -> str:
    body = json.dumps(
        {
            "from": {"email": "news@example.com", "name": "Example News"},
            "to": [{"email": "reader@example.org"}],
            "subject": "Hello from mailbeacon",
            "html": '<html><body><p>Read <a href="https://example.com/article">the article</a>.</p>'
            "</body></html>",
        }
    )
    return "\n".join(
        [
            "demo account ready",
            f"  API key:   {key}",
            f"  API docs:  {base}/docs",
            "  try it:",
            f"    curl -s -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\",
            f"      -d '{body}' {base}/v1/messages",
            f"    curl -s -H 'Authorization: Bearer {key}' {base}/v1/messages/1/recipients/1/mime",
            f"    curl -s -H 'Authorization: Bearer {key}' {base}/v1/messages/1/stats",
            f"  SMTP:      {settings.resolved_smtp_host()}:{settings.smtp_port}, STARTTLS, AUTH PLAIN/LOGIN"
            " with any user name and the API key as password",
        ]
    )


@main.command()
@store_options
@click.argument("html_file", type=click.File("r", encoding="utf-8"))
@click.option("--to", "recipients", multiple=True, required=True, help="Recipient address (repeatable)")
@click.option("--from", "sender", default="sender@example.com", show_default=True, help="Sender address")
@click.option("--subject", default="", help="Subject, for the message record")
@click.option("--campaign", help="Campaign name")
@click.option("--text-file", type=click.File("r", encoding="utf-8"), help="A text/plain body to track too")
@click.option("--account", help="Account name or id (default: the only account)")
@click.option("--public-base-url", help="The tracking base URL the links point to")
@click.option(
    "--out-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write one file per recipient",
)
def prepare(**options: Any) -> None:
    """Rewrite an HTML email for your own mailer: prints the tracked HTML (a report goes to stderr)."""
    from mailbeacon.cli_prepare import run_prepare

    settings = _settings(options)
    store = _store(settings)
    account = _account(store, options["account"])
    try:
        run_prepare(store, account, settings, options)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
@store_options
@click.argument("message_id", type=int)
@click.option("--account", help="Account name or id (default: the only account)")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table")
def stats(**options: Any) -> None:
    """The numbers of one message."""
    from mailbeacon.store.events import message_stats
    from mailbeacon.store.messages import get_message
    from mailbeacon.tracking.ingest import catch_up, enricher_from

    settings = _settings(options)
    store = _store(settings)
    account = _account(store, options["account"])
    catch_up(store, enricher_from(settings))
    with store.read(snapshot=True) as conn:
        message = get_message(conn, account.id, options["message_id"])
        if message is None:
            raise click.ClickException(f"no message {options['message_id']} in account {account.name!r}")
        numbers = message_stats(conn, account.id, message.id)
    if options["as_json"]:
        click.echo(json.dumps(asdict(numbers), indent=2))
        return
    from mailbeacon.cli_stats import format_stats

    click.echo(format_stats(message.subject, numbers))


@main.group(name="keys")
def keys_group() -> None:
    """Token signing keys."""


@keys_group.command(name="rotate")
@store_options
def keys_rotate(**options: Any) -> None:
    """Add a new signing key; new links use it, old links keep working."""
    from mailbeacon.store.signing_keys import add_signing_key

    store = _store(_settings(options))
    with store.write() as conn:
        key_id = add_signing_key(conn)
    click.echo(f"signing key {key_id} now signs new links; older keys still verify")


@main.group(name="api-key")
def api_key_group() -> None:
    """API keys of an account."""


@api_key_group.command(name="create")
@store_options
@click.option("--account", help="Account name or id (default: the only account)")
@click.option("--name", default="created by mailbeacon api-key create", help="A label for the key")
def api_key_create(**options: Any) -> None:
    """Make another API key for an account (shown once)."""
    from mailbeacon.store.accounts import create_api_key

    store = _store(_settings(options))
    account = _account(store, options["account"])
    with store.write() as conn:
        key = create_api_key(conn, account.id, options["name"])
    click.echo(f"API key for account {account.name!r} (shown only now): {key}")


# The mail path's and the DMARC command groups register themselves on `main`.
import mailbeacon.cli_dmarc  # noqa: E402, F401
from mailbeacon import cli_classify, cli_mail  # noqa: E402, F401
from mailbeacon import cli_logs as _cli_logs  # noqa: E402, F401

if __name__ == "__main__":
    # Run as `python -m mailbeacon.cli`, this file is __main__ while cli_mail registered its commands
    # on the importable mailbeacon.cli: start that one.
    from mailbeacon.cli import main as importable_main

    sys.exit(importable_main())

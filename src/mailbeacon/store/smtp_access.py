"""Who may submit mail by SMTP: credentials made for an account, and trusted networks bound to one."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from mailbeacon.store.accounts import Account, account_for_api_key, get_account
from mailbeacon.store.tables import smtp_credentials, trusted_networks

SMTP_SECRET_PREFIX = "mbs_"  # noqa: S105 (a prefix that marks the secret, not a secret)


@dataclass(frozen=True)
class SmtpCredential:
    id: int
    account_id: int
    username: str
    track_opens: bool | None
    track_clicks: bool | None
    track_unsubscribes: bool | None


@dataclass(frozen=True)
class SmtpLogin:
    """The outcome of a successful AUTH: the account, and the credential when one was used."""

    account: Account
    credential: SmtpCredential | None


@dataclass(frozen=True)
class TrustedNetwork:
    id: int
    account_id: int
    network: ipaddress.IPv4Network | ipaddress.IPv6Network


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def create_credential(
    conn: Connection,
    account_id: int,
    username: str,
    *,
    track_opens: bool | None = None,
    track_clicks: bool | None = None,
    track_unsubscribes: bool | None = None,
) -> str:
    """Make an SMTP login and return its password; only its hash is kept, so it is seen this once."""
    username = username.strip()
    if not username or len(username) > 200 or any(c.isspace() for c in username):
        raise ValueError("an SMTP username is 1 to 200 characters without spaces")
    taken = conn.execute(select(smtp_credentials.c.id).where(smtp_credentials.c.username == username)).first()
    if taken is not None:
        raise ValueError(f"the SMTP username {username!r} is taken")
    secret = SMTP_SECRET_PREFIX + secrets.token_urlsafe(24)
    conn.execute(
        insert(smtp_credentials).values(
            account_id=account_id,
            username=username,
            secret_hash=_hash(secret),
            track_opens=track_opens,
            track_clicks=track_clicks,
            track_unsubscribes=track_unsubscribes,
            created_at=datetime.now(UTC),
        )
    )
    return secret


def list_credentials(conn: Connection, account_id: int) -> list[SmtpCredential]:
    rows = conn.execute(
        select(smtp_credentials)
        .where(smtp_credentials.c.account_id == account_id, smtp_credentials.c.revoked_at.is_(None))
        .order_by(smtp_credentials.c.id)
    )
    return [_credential(row) for row in rows]


def revoke_credential(conn: Connection, account_id: int, username: str) -> bool:
    result = conn.execute(
        update(smtp_credentials)
        .where(
            smtp_credentials.c.account_id == account_id,
            smtp_credentials.c.username == username,
            smtp_credentials.c.revoked_at.is_(None),
        )
        .values(revoked_at=datetime.now(UTC))
    )
    return result.rowcount == 1


def _credential(row: Row[Any]) -> SmtpCredential:
    return SmtpCredential(
        id=row.id,
        account_id=row.account_id,
        username=row.username,
        track_opens=row.track_opens,
        track_clicks=row.track_clicks,
        track_unsubscribes=row.track_unsubscribes,
    )


def authenticate(conn: Connection, username: str, password: str) -> SmtpLogin | None:
    """An SMTP credential (username + its secret), or any username with one of the account's API keys."""
    if len(username) > 320 or len(password) > 200:
        return None
    account = account_for_api_key(conn, password)
    if account is not None:
        return SmtpLogin(account, None)
    row = conn.execute(
        select(smtp_credentials).where(
            smtp_credentials.c.username == username, smtp_credentials.c.revoked_at.is_(None)
        )
    ).one_or_none()
    if row is None or not hmac.compare_digest(row.secret_hash, _hash(password)):
        return None
    owner = get_account(conn, row.account_id)
    return None if owner is None else SmtpLogin(owner, _credential(row))


def add_trusted_network(conn: Connection, account_id: int, network: str) -> TrustedNetwork:
    parsed = ipaddress.ip_network(network.strip(), strict=False)
    taken = conn.execute(
        select(trusted_networks.c.account_id).where(trusted_networks.c.network == str(parsed))
    ).first()
    if taken is not None:
        raise ValueError(f"{parsed} is already trusted (account {taken.account_id})")
    new_id = conn.execute(
        insert(trusted_networks)
        .values(account_id=account_id, network=str(parsed), created_at=datetime.now(UTC))
        .returning(trusted_networks.c.id)
    ).scalar_one()
    return TrustedNetwork(int(new_id), account_id, parsed)


def remove_trusted_network(conn: Connection, network: str) -> bool:
    parsed = ipaddress.ip_network(network.strip(), strict=False)
    result = conn.execute(delete(trusted_networks).where(trusted_networks.c.network == str(parsed)))
    return result.rowcount == 1


def list_trusted_networks(conn: Connection) -> list[TrustedNetwork]:
    rows = conn.execute(select(trusted_networks).order_by(trusted_networks.c.id))
    return [TrustedNetwork(r.id, r.account_id, ipaddress.ip_network(r.network)) for r in rows]


def trusted_account(networks: list[TrustedNetwork], address: str) -> int | None:
    """The account a client address submits for without AUTH, if it lies in a trusted network.

    The most specific network wins, so a /32 inside someone's /8 can belong to another account.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    best: TrustedNetwork | None = None
    for candidate in networks:
        inside = ip.version == candidate.network.version and ip in candidate.network
        if inside and (best is None or candidate.network.prefixlen > best.network.prefixlen):
            best = candidate
    return None if best is None else best.account_id

"""Which sent copy a piece of feedback mail is about.

In order of certainty: the signed VERP return path the copy left with (``bounces+TOKEN@``) or the
signed unsubscribe address of its List-Unsubscribe (``unsubscribe+TOKEN@``); then the Message-ID of the
original quoted inside a bounce or complaint; then, for replies, In-Reply-To/References. A Message-ID
shared by several copies (mail relayed by SMTP keeps the sender's) is narrowed down by the address the
report names, or the reply's sender.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.utils import getaddresses

from sqlalchemy import Connection, select

from mailbeacon.delivery.compose import RETURN_PATH_LOCAL, UNSUBSCRIBE_LOCAL
from mailbeacon.inbound.report import InboundKind, InboundReport
from mailbeacon.store.tables import recipients
from mailbeacon.tokens import TokenKind, TokenSigner


@dataclass(frozen=True)
class MatchedCopy:
    recipient_id: int
    account_id: int
    message_id: int
    email: str
    how: str  # verp, unsubscribe_address, original_message_id, in_reply_to
    # Signed (VERP, unsubscribe address) or named by its exact address in the report. Only a confirmed
    # match may suppress an address: anyone who knows a Message-ID could forge a bounce that quotes it.
    confirmed: bool = True


@dataclass(frozen=True)
class Match:
    copy: MatchedCopy | None
    unsubscribe: bool = False  # mail to a copy's unsubscribe address: the recipient unsubscribes


def address_token(address: str, local: str, domains: Iterable[str]) -> str | None:
    """The token of ``local+TOKEN@domain`` when the domain is one of ours."""
    name, _, domain = address.strip().strip("<>").rpartition("@")
    if domain.lower() not in {d.lower() for d in domains}:
        return None
    prefix = f"{local}+"
    if not name.lower().startswith(prefix):
        return None
    return name[len(prefix) :]


def match_report(
    conn: Connection,
    report: InboundReport,
    envelope_to: Sequence[str],
    signer: TokenSigner,
    our_domains: Sequence[str],
    account_id: int | None = None,
) -> Match:
    """``account_id``: only that account's copies may match (feedback handed in by one account)."""
    found = _match(conn, report, envelope_to, signer, our_domains, account_id)
    if found.copy is not None and account_id is not None and found.copy.account_id != account_id:
        return Match(None)
    return found


def _match(
    conn: Connection,
    report: InboundReport,
    envelope_to: Sequence[str],
    signer: TokenSigner,
    our_domains: Sequence[str],
    account_id: int | None,
) -> Match:
    addresses = [*envelope_to, *report.to_addresses]
    for address in addresses:
        token = address_token(address, UNSUBSCRIBE_LOCAL, our_domains)
        found = _by_token(conn, signer, token, TokenKind.UNSUBSCRIBE, "unsubscribe_address")
        if found is not None:
            return Match(found, unsubscribe=True)
    for address in addresses:
        token = address_token(address, RETURN_PATH_LOCAL, our_domains)
        found = _by_token(conn, signer, token, TokenKind.RETURN_PATH, "verp")
        if found is not None:
            return Match(found)
    # The original's Return-Path, quoted in a bounce or complaint, carries the VERP token too.
    for name, value in report.original_headers:
        if name.lower() == "return-path":
            token = address_token(value, RETURN_PATH_LOCAL, our_domains)
            found = _by_token(conn, signer, token, TokenKind.RETURN_PATH, "verp")
            if found is not None:
                return Match(found)
    named = _named_addresses(report)
    if report.original_message_ids:
        found = _by_message_id(conn, report.original_message_ids, named, "original_message_id", account_id)
        if found is not None:
            return Match(found)
    if report.kind in (InboundKind.REPLY, InboundKind.AUTO_REPLY) and report.in_reply_to:
        reply_from = [report.from_address] if report.from_address else []
        found = _by_message_id(conn, report.in_reply_to, reply_from, "in_reply_to", account_id)
        if found is not None:
            return Match(found)
    return Match(None)


def _named_addresses(report: InboundReport) -> list[str]:
    named = [r.address for r in report.recipients if r.address]
    named += [r.original_address for r in report.recipients if r.original_address]
    if report.feedback is not None:
        named += list(report.feedback.original_rcpt_to)
    named += [value for name, value in report.original_headers if name.lower() == "to"]
    return named


def _by_token(
    conn: Connection, signer: TokenSigner, token: str | None, kind: TokenKind, how: str
) -> MatchedCopy | None:
    if not token:
        return None
    verified = signer.verify(token)
    if verified is None or verified.kind is not kind:
        return None
    row = conn.execute(
        select(recipients.c.id, recipients.c.account_id, recipients.c.message_id, recipients.c.email).where(
            recipients.c.id == verified.recipient_id
        )
    ).first()
    return None if row is None else MatchedCopy(row.id, row.account_id, row.message_id, row.email, how)


def _by_message_id(
    conn: Connection,
    message_ids: Sequence[str],
    addresses: Sequence[str],
    how: str,
    account_id: int | None,
) -> MatchedCopy | None:
    """The copy with this Message-ID whose address the report names exactly; or the only copy with
    it, unconfirmed, when the report names no address of any copy."""
    wanted = [m if m.startswith("<") else f"<{m}>" for m in message_ids][:20]
    query = (
        select(recipients.c.id, recipients.c.account_id, recipients.c.message_id, recipients.c.email)
        .where(recipients.c.message_id_header.in_(wanted))
        .order_by(recipients.c.id)
        .limit(10_000)
    )
    if account_id is not None:
        query = query.where(recipients.c.account_id == account_id)
    rows = conn.execute(query).all()
    if not rows:
        return None
    named = {addr.lower() for _, addr in getaddresses(list(addresses)) if addr}
    for row in rows:
        if row.email.lower() in named:
            return MatchedCopy(row.id, row.account_id, row.message_id, row.email, how)
    if len(rows) == 1:
        row = rows[0]
        return MatchedCopy(row.id, row.account_id, row.message_id, row.email, how, confirmed=False)
    return None

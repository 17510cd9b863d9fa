"""Handing one copy to the next hop over SMTP, reusing connections per destination.

Every reply the other side gives is kept (code, enhanced status code, text) so the attempt log can
say exactly what happened. Connection-level failures (refused, timeout, a 4xx/5xx greeting, a failed
TLS handshake) move on to the next host of the route; once a transaction has started, its outcome
is the outcome: trying another host after DATA was sent could deliver the copy twice.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import aiosmtplib

log = logging.getLogger(__name__)

TlsMode = Literal["starttls", "tls", "opportunistic", "none"]
Verdict = Literal["accepted", "temporary", "permanent"]
_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$)")
IDLE_TIMEOUT_S = 30.0
MAX_IDLE_PER_HOST = 8


@dataclass(frozen=True)
class Hop:
    name: str  # the host name: for TLS server name checks and the attempt log
    address: str  # the IP address (or name) connected to
    port: int


@dataclass(frozen=True)
class TlsPolicy:
    mode: TlsMode
    verify: bool = True


@dataclass(frozen=True)
class Reply:
    code: int | None
    enhanced: str | None
    text: str

    @classmethod
    def parse(cls, code: int | None, message: str) -> Reply:
        text = " ".join(line.strip() for line in message.splitlines()).strip()
        found = _ENHANCED.match(text)
        return cls(code, found.group(0) if found else None, text)

    def __str__(self) -> str:
        return " ".join(part for part in (str(self.code or ""), self.text) if part)


@dataclass
class Outcome:
    verdict: Verdict
    reply: Reply | None
    hop: Hop | None = None
    tls: bool = False
    stage: str = ""  # where it ended: connect, greeting, starttls, auth, mail, rcpt, data
    tried: list[str] = field(default_factory=list)  # what happened at the hosts tried before

    def describe(self) -> str:
        parts = [f"{self.stage}: {self.reply}" if self.reply else self.stage]
        return "; ".join([*self.tried, *parts])


class _Failed(Exception):
    def __init__(self, stage: str, reply: Reply, permanent: bool) -> None:
        super().__init__(f"{stage}: {reply}")
        self.stage = stage
        self.reply = reply
        self.permanent = permanent


@dataclass
class _Session:
    client: aiosmtplib.SMTP
    key: tuple[str, int, str, str]
    hop: Hop
    tls: bool
    idle_since: float = 0.0


class SmtpTransport:
    def __init__(
        self,
        helo_name: str,
        *,
        timeout_s: float = 60.0,
        auth: tuple[str, str] | None = None,
    ) -> None:
        self.helo_name = helo_name
        self.timeout_s = timeout_s
        self.auth = auth
        self._idle: dict[tuple[str, int, str, str], list[_Session]] = {}

    async def deliver(
        self, hops: Sequence[Hop], tls: TlsPolicy, sender: str, recipient: str, data: bytes
    ) -> Outcome:
        tried: list[str] = []
        refusals: list[Outcome] = []
        for hop in hops:
            session = self._take_idle(hop, tls)
            if session is not None:
                outcome = await self._transaction(session, hop, sender, recipient, data)
                if outcome is not None:
                    outcome.tried = tried
                    return outcome
                # The idle connection had been closed by the other side: open a new one.
            try:
                session = await self._connect(hop, tls)
            except _Failed as failed:
                verdict: Verdict = "permanent" if failed.permanent else "temporary"
                refusals.append(Outcome(verdict, failed.reply, hop, False, failed.stage))
                tried.append(f"{hop.name}[{hop.address}]:{hop.port} {failed}")
                continue
            outcome = await self._transaction(session, hop, sender, recipient, data)
            assert outcome is not None  # only a reused connection can turn out stale
            outcome.tried = tried
            return outcome
        if not refusals:
            return Outcome("temporary", None, None, False, "no host to connect to", tried)
        # Every host refused before a transaction began: permanent only if every one said so with a 5xx.
        last = refusals[-1]
        last.verdict = "permanent" if all(r.verdict == "permanent" for r in refusals) else "temporary"
        last.tried = tried[:-1]
        return last

    async def _connect(self, hop: Hop, tls: TlsPolicy) -> _Session:
        try:
            return await self._open(hop, tls, use_starttls=tls.mode in ("starttls", "opportunistic"))
        except _Failed as failed:
            if tls.mode == "opportunistic" and failed.stage == "starttls":
                # Like Postfix's "may": a TLS handshake that fails is retried in plain text.
                return await self._open(hop, tls, use_starttls=False)
            raise

    async def _open(self, hop: Hop, tls: TlsPolicy, *, use_starttls: bool) -> _Session:
        context = _tls_context(tls.verify)
        client = aiosmtplib.SMTP(
            hostname=hop.address,
            port=hop.port,
            local_hostname=self.helo_name,
            timeout=self.timeout_s,
            use_tls=tls.mode == "tls",
            start_tls=False,
            validate_certs=tls.verify,
            tls_context=context if tls.mode == "tls" else None,
        )
        stage = "connect"
        try:
            await client.connect()
            stage = "greeting"
            await client.ehlo()
            secured = tls.mode == "tls"
            if use_starttls:
                if client.supports_extension("starttls"):
                    stage = "starttls"
                    await client.starttls(server_hostname=hop.name, tls_context=context)
                    secured = True
                elif tls.mode == "starttls":
                    raise _Failed("starttls", Reply(None, None, "the server does not offer STARTTLS"), False)
            if self.auth is not None:
                stage = "auth"
                if not secured and tls.mode != "none":
                    # TLS was asked for but not had (STARTTLS missing or stripped): the password
                    # stays home. Only smarthost_tls=none sends it in the clear, as configured.
                    text = "refusing to send the smarthost password without TLS"
                    raise _Failed("auth", Reply(None, None, text), False)
                await client.login(*self.auth)
        except _Failed:
            client.close()
            raise
        except aiosmtplib.SMTPResponseException as exc:
            client.close()
            raise _Failed(stage, Reply.parse(exc.code, exc.message), 500 <= exc.code < 600) from None
        except (TimeoutError, aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
            client.close()
            raise _Failed(stage, Reply(None, None, _error_text(exc)), False) from None
        key = (hop.address, hop.port, tls.mode, self.auth[0] if self.auth else "")
        return _Session(client, key, hop, secured)

    async def _transaction(
        self, session: _Session, hop: Hop, sender: str, recipient: str, data: bytes
    ) -> Outcome | None:
        """``hop`` is the host this copy was routed to; a reused connection to its address may have been
        opened for another name (two domains whose MX hosts share an address)."""
        client, stage = session.client, "mail"
        started = False
        utf8 = not (sender.isascii() and recipient.isascii())
        if utf8 and not client.supports_extension("smtputf8"):
            # RFC 6531: an address that is not ASCII can only go to a server that takes SMTPUTF8.
            text = "5.6.7 the next hop does not support SMTPUTF8, which this address needs"
            return Outcome("permanent", Reply(553, "5.6.7", text), hop, session.tls, "smtputf8")
        options = ["SMTPUTF8"] if utf8 else []
        if client.supports_extension("8bitmime") and _has_8bit(data):
            options.append("BODY=8BITMIME")
        encoding = "utf-8" if utf8 else "ascii"
        try:
            await client.mail(sender, options=options, encoding=encoding)
            started = True
            stage = "rcpt"
            await client.rcpt(recipient, encoding=encoding)
            stage = "data"
            response = await client.data(data)
        except aiosmtplib.SMTPResponseException as exc:
            reply = Reply.parse(exc.code, exc.message)
            if exc.code == 421 or not client.is_connected:
                client.close()
                if not started and session.idle_since:
                    return None
            else:
                await self._reset_and_keep(session)
            verdict: Verdict = "permanent" if 500 <= exc.code < 600 else "temporary"
            return Outcome(verdict, reply, hop, session.tls, stage)
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            client.close()
            if not started and session.idle_since:
                return None  # the idle connection was closed by the other side: open a new one
            return Outcome("temporary", Reply(None, None, _error_text(exc)), hop, session.tls, stage)
        except Exception:
            client.close()  # never leave a connection open (or pooled) in an unknown state
            raise
        self._keep(session)
        return Outcome("accepted", Reply.parse(response.code, response.message), hop, session.tls, "data")

    async def _reset_and_keep(self, session: _Session) -> None:
        try:
            await session.client.rset()
        except (TimeoutError, aiosmtplib.SMTPException, OSError):
            session.client.close()
            return
        self._keep(session)

    def _keep(self, session: _Session) -> None:
        idle = self._idle.setdefault(session.key, [])
        if len(idle) >= MAX_IDLE_PER_HOST or not session.client.is_connected:
            session.client.close()
            return
        session.idle_since = time.monotonic()
        idle.append(session)

    def _take_idle(self, hop: Hop, tls: TlsPolicy) -> _Session | None:
        key = (hop.address, hop.port, tls.mode, self.auth[0] if self.auth else "")
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            session = idle.pop()
            if now - session.idle_since < IDLE_TIMEOUT_S and session.client.is_connected:
                return session
            session.client.close()
        return None

    def close_idle(self, older_than_s: float = IDLE_TIMEOUT_S) -> None:
        now = time.monotonic()
        for key, idle in list(self._idle.items()):
            keep = []
            for session in idle:
                if now - session.idle_since >= older_than_s or not session.client.is_connected:
                    session.client.close()
                else:
                    keep.append(session)
            self._idle[key] = keep

    async def close(self) -> None:
        for idle in self._idle.values():
            for session in idle:
                try:
                    await asyncio.wait_for(session.client.quit(), timeout=2)
                except Exception:  # closing politely is a courtesy; the socket goes either way
                    session.client.close()
        self._idle.clear()


def _has_8bit(data: bytes) -> bool:
    return not data.isascii()


@functools.cache
def _tls_context(verify: bool) -> ssl.SSLContext:
    """One context per kind: building one loads the system's CA store, far too slow per connection."""
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError | aiosmtplib.SMTPTimeoutError):
        return "timed out"
    text = str(exc) or type(exc).__name__
    return text.replace("\n", " ")[:500]

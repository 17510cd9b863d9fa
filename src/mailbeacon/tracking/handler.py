"""The hot path: a bare ASGI handler for /o/, /c/, /u/ and path-preserving links, ahead of the API."""

from __future__ import annotations

import asyncio
import logging
import time
from functools import lru_cache
from urllib.parse import parse_qsl, quote

from mailbeacon.enrich.known import PREFETCH_HEADERS
from mailbeacon.events import EventType, MachineClass
from mailbeacon.messages.urls import PATH_PRESERVING_PARAM
from mailbeacon.tokens import Token, TokenKind
from mailbeacon.tracking import pages
from mailbeacon.tracking.client_address import ClientAddress
from mailbeacon.tracking.keyring import Keyring
from mailbeacon.tracking.pixel import TRANSPARENT_GIF
from mailbeacon.tracking.recorder import EventRecorder, Hit, Outcome
from mailbeacon.types import Receive, Scope, Send

log = logging.getLogger(__name__)

MAX_UNSUBSCRIBE_BODY = 16 * 1024
MAX_HEADER_KEPT = 100
# Headers by which browsers and mail apps announce a prefetch or preview (see enrich/known.py).
_PREFETCH_HEADERS = frozenset(name.encode() for name in PREFETCH_HEADERS)
_READ: tuple[str, ...] = ("GET", "HEAD")
_READ_AND_POST: tuple[str, ...] = ("GET", "HEAD", "POST")
_PATH_PRESERVING_MARK = PATH_PRESERVING_PARAM.encode() + b"="
_NO_STORE = (b"cache-control", b"no-store, no-cache, must-revalidate, private, max-age=0")
_GIF_HEADERS = [
    (b"content-type", b"image/gif"),
    (b"content-length", str(len(TRANSPARENT_GIF)).encode()),
    _NO_STORE,
    (b"pragma", b"no-cache"),
    (b"expires", b"0"),
]
# The pixel's answer never changes: its messages are built once (servers only read them).
_GIF_START = {"type": "http.response.start", "status": 200, "headers": _GIF_HEADERS}
_GIF_BODY = {"type": "http.response.body", "body": TRANSPARENT_GIF}
_EMPTY_BODY = {"type": "http.response.body", "body": b""}
_HTML = (b"content-type", b"text/html; charset=utf-8")
_ROBOTS = (b"x-robots-tag", b"noindex, nofollow")
# Characters a browser drops from URLs (WHATWG), and may never appear in a header.
_DROP_FROM_LOCATION = str.maketrans("", "", "\t\r\n")


@lru_cache(maxsize=65_536)  # a message's links are clicked many times; quoting costs microseconds
def location_header(url: str) -> bytes:
    """The stored URL as an ASCII Location value: non-ASCII and spaces percent-encoded, the rest kept."""
    return quote(url.translate(_DROP_FROM_LOCATION), safe="".join(map(chr, range(0x21, 0x7F)))).encode()


# Paths of mailbeacon's own that a path-preserving link can never stand for.
_OWN_PATHS = ("/v1/", "/docs", "/openapi.json", "/static/", "/healthz")


def is_tracking_request(path: str, query_string: bytes) -> bool:
    if path.startswith(("/o/", "/c/", "/u/")):
        return True
    return not path.startswith(_OWN_PATHS) and _path_preserving_token(query_string) is not None


class TrackingHandler:
    def __init__(self, keyring: Keyring, recorder: EventRecorder, client_address: ClientAddress) -> None:
        self.keyring = keyring
        self.recorder = recorder
        self.client_address = client_address

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        if path.startswith("/o/"):
            endpoint, allowed = "open", _READ
        elif path.startswith("/c/"):
            endpoint, allowed = "click", _READ
        elif path.startswith("/u/"):
            endpoint, allowed = "unsubscribe", _READ_AND_POST
        else:
            endpoint, allowed = "path_preserving", _READ
        if method not in allowed:
            await _respond(send, 405, [(b"allow", ", ".join(allowed).encode()), _HTML], b"")
        elif endpoint == "open":
            await self._open(scope, send, path[3:].removesuffix(".gif"), method)
        elif endpoint == "click":
            await self._click(scope, send, path[3:], method)
        elif endpoint == "unsubscribe":
            await self._unsubscribe(scope, receive, send, path[3:], method)
        else:
            await self._click(scope, send, _path_preserving_token(scope["query_string"]), method)

    async def _verified(self, token: str, kind: TokenKind) -> Token | None:
        found = self.keyring.signer.verify(token)  # the common case, without a coroutine
        if found is not None:
            return found if found.kind is kind else None
        try:
            found = await self.keyring.verify_after_refresh(token)
        except Exception:
            log.exception("could not verify a token")
            return None
        return found if found is not None and found.kind is kind else None

    def _hit(self, scope: Scope, type_: EventType, token: Token, method: str) -> Hit:
        user_agent = forwarded_for = requested_with = purpose = None
        for name, value in scope["headers"]:
            if name == b"user-agent":
                user_agent = value.decode("latin-1")
            elif name == b"x-forwarded-for":
                forwarded_for = value.decode("latin-1")
            elif name == b"x-requested-with":
                requested_with = value.decode("latin-1")[:MAX_HEADER_KEPT]
            elif name in _PREFETCH_HEADERS:
                purpose = value.decode("latin-1")[:MAX_HEADER_KEPT]
        client = scope.get("client")
        ip = self.client_address.resolve(client[0] if client else None, forwarded_for)
        human, machine_class, reason = True, None, None
        if method == "HEAD":
            human, machine_class, reason = False, MachineClass.UNKNOWN.value, "HEAD request"
        elif not user_agent:
            human, machine_class, reason = False, MachineClass.UNKNOWN.value, "no User-Agent header"
        return Hit(
            type=type_,
            recipient_id=token.recipient_id,
            link_position=token.link_position if token.kind is TokenKind.CLICK else None,
            received_us=time.time_ns() // 1000,
            ip=ip,
            user_agent=user_agent,
            method=method,
            human=human,
            machine_class=machine_class,
            machine_reason=reason,
            requested_with=requested_with,
            purpose=purpose,
            future=asyncio.get_running_loop().create_future(),
        )

    async def _record(self, hit: Hit) -> Outcome:
        try:
            self.recorder.submit(hit)
        except RuntimeError:
            log.exception("a tracking hit could not be handed to the event writer")
            return Outcome(False, failed=True)
        # The writer settles every future it is handed, failures included, so no timeout is needed
        # here. A client hanging up cancels only this wait: the hit is already queued and is stored.
        return await hit.future

    async def _open(self, scope: Scope, send: Send, raw_token: str, method: str) -> None:
        token = await self._verified(raw_token, TokenKind.OPEN)
        if token is not None:
            # Whatever happens, the reader gets the image: the pixel never breaks for them.
            await self._record(self._hit(scope, EventType.OPENED, token, method))
        await send(_GIF_START)
        await send(_GIF_BODY if method != "HEAD" else _EMPTY_BODY)

    async def _click(self, scope: Scope, send: Send, raw_token: str | None, method: str) -> None:
        token = await self._verified(raw_token, TokenKind.CLICK) if raw_token else None
        outcome = Outcome(False)
        if token is not None:
            outcome = await self._record(self._hit(scope, EventType.CLICKED, token, method))
        if outcome.url is None and outcome.failed:
            await _unavailable(send, method)
            return
        if outcome.url is None:
            await _respond(send, 404, [_HTML, _NO_STORE, _ROBOTS], pages.invalid_link(), method)
            return
        headers = [
            (b"location", location_header(outcome.url)),
            _NO_STORE,
            _ROBOTS,
            (b"content-length", b"0"),
        ]
        await _respond(send, 302, headers, b"")

    async def _unsubscribe(self, scope: Scope, receive: Receive, send: Send, raw: str, method: str) -> None:
        token = await self._verified(raw, TokenKind.UNSUBSCRIBE)
        if token is None:
            await _respond(send, 404, [_HTML, _NO_STORE, _ROBOTS], pages.invalid_link(), method)
            return
        if method != "POST":
            # A GET only asks: mail scanners fetch links, and must not unsubscribe anyone.
            body = pages.unsubscribe_confirm(scope.get("root_path", "") + scope["path"])
            await _respond(send, 200, [_HTML, _NO_STORE, _ROBOTS], body, method)
            return
        if not await _drain_body(receive, MAX_UNSUBSCRIBE_BODY):
            await _respond(send, 413, [_HTML], b"request body too large")
            return
        outcome = await self._record(self._hit(scope, EventType.UNSUBSCRIBED, token, method))
        if outcome.failed:
            await _unavailable(send, method)
            return
        if not outcome.recorded:
            await _respond(send, 404, [_HTML, _NO_STORE, _ROBOTS], pages.invalid_link())
            return
        await _respond(send, 200, [_HTML, _NO_STORE, _ROBOTS], pages.unsubscribe_done())


def _path_preserving_token(query_string: bytes) -> str | None:
    if _PATH_PRESERVING_MARK not in query_string:
        return None  # the common case, decided without parsing
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name == PATH_PRESERVING_PARAM:
            return value
    return None


async def _unavailable(send: Send, method: str) -> None:
    headers = [_HTML, _NO_STORE, _ROBOTS, (b"retry-after", b"5")]
    await _respond(send, 503, headers, pages.temporarily_unavailable(), method)


async def _drain_body(receive: Receive, limit: int) -> bool:
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return True
        size += len(message.get("body", b""))
        if size > limit:
            return False
        if not message.get("more_body", False):
            return True


async def _respond(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes, method: str = "GET"
) -> None:
    if body and not any(name == b"content-length" for name, _ in headers):
        headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

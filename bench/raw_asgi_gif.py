"""A reference ASGI app: the open pixel's bytes and headers, recording nothing.

Served by granian exactly as `mailbeacon serve` is (ASGI interface, uvloop, no access log), it is the
ceiling of any Python tracking handler on granian: what mailbeacon's pixel costs beyond it is the
cost of verifying the token and recording the event. Used by bench/tracking_vs_nginx.py:

    .venv/bin/granian --interface asgi --loop uvloop --no-access-log --working-dir bench raw_asgi_gif:app
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from mailbeacon.tracking.pixel import TRANSPARENT_GIF

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# The same headers as mailbeacon.tracking.handler sends with the pixel.
GIF_HEADERS = [
    (b"content-type", b"image/gif"),
    (b"content-length", str(len(TRANSPARENT_GIF)).encode()),
    (b"cache-control", b"no-store, no-cache, must-revalidate, private, max-age=0"),
    (b"pragma", b"no-cache"),
    (b"expires", b"0"),
]
_START = {"type": "http.response.start", "status": 200, "headers": GIF_HEADERS}
_BODY = {"type": "http.response.body", "body": TRANSPARENT_GIF}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    await send(_START)
    await send(_BODY)

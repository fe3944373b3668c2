"""One log line per request or socket: client, method and path, status, bytes, time to first byte, duration."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("agent_tts.server.access")


class AccessLog:
    """ASGI middleware writing the access log (logger `agent_tts.server.access`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None
        sent = 0
        first_byte: float | None = None

        async def observed(message: Message) -> None:
            nonlocal status, sent, first_byte
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
            elif kind in ("http.response.body", "websocket.send"):
                size = len(message.get("body") or message.get("bytes") or message.get("text") or "")
                if size and first_byte is None:
                    first_byte = time.perf_counter() - started
                sent += size
            elif kind == "websocket.accept":
                status = 101
            elif kind == "websocket.close" and status is None:
                status = 403
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            client = scope.get("client")
            who = f"{client[0]}:{client[1]}" if client else "-"
            method = scope.get("method", "WS")
            query = scope.get("query_string", b"")
            target = scope["path"] + (f"?{len(query)} bytes of query" if query else "")
            first = "-" if first_byte is None else f"{1000 * first_byte:.0f} ms"
            logger.info('%s "%s %s" %s, %d bytes, first byte %s, %.0f ms', who, method, target,
                        status if status is not None else "-", sent, first, 1000 * (time.perf_counter() - started))

"""API-key check: with a key set, every route but the page and `/health` needs `Authorization: Bearer KEY`.

Browsers cannot set headers on a WebSocket, so the socket also takes the key
as `?api_key=KEY`. A refused HTTP request is 401 with the route's error
shape; a refused socket is closed before it is accepted (HTTP 403).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from agent_tts.server.api_errors import ApiError

PUBLIC_PATHS = frozenset({"/", "/health"})
PUBLIC_PREFIXES = ("/page/",)


class BearerAuth:
    """ASGI middleware refusing calls without the server's API key; `on_refused` counts them."""

    def __init__(self, app: ASGIApp, api_key: str, on_refused: Callable[[], None]) -> None:
        self.app = app
        self._key = api_key.encode()
        self._on_refused = on_refused

    def _public(self, path: str) -> bool:
        return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)

    def _offered_key(self, scope: Scope) -> str | None:
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                return token.strip() if scheme.lower() == "bearer" else None
        if scope["type"] == "websocket":
            keys = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("api_key")
            return keys[0] if keys else None
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self._public(scope["path"]):
            await self.app(scope, receive, send)
            return
        offered = self._offered_key(scope)
        if offered is not None and hmac.compare_digest(offered.encode(), self._key):
            await self.app(scope, receive, send)
            return
        self._on_refused()
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "missing or wrong api_key"})
            return
        error = ApiError(401, "missing or wrong API key: send the header Authorization: Bearer KEY",
                         code="invalid_api_key", kind="auth", headers={"WWW-Authenticate": "Bearer"})
        await error.response(openai_shape=scope["path"].startswith("/v1/"))(scope, receive, send)

"""`x-agent-tts-replica`: which speech replica served an HTTP answer, for operators of a Ray Serve deployment.

`ReplicaHeader` (ASGI middleware of the ingress's app) gives each HTTP request
a holder in a context variable; the speech service notes the replica there
(`note_replica`) when the replica's first item arrives, which is before the
answer starts, since the adapters wait for the first audio. The tasks a
request starts copy its context, so they share the holder. The last replica
noted wins: after a retry, the one that spoke.
"""

from __future__ import annotations

from contextvars import ContextVar

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REPLICA_HEADER = "x-agent-tts-replica"
_SERVED_BY: ContextVar[list[str] | None] = ContextVar("agent_tts_served_by", default=None)


def note_replica(replica: str) -> None:
    """Record the replica serving the current request (a no-op outside an HTTP request, e.g. on a WebSocket)."""
    holder = _SERVED_BY.get()
    if holder is not None:
        holder[:] = [replica]


class ReplicaHeader:
    """ASGI middleware: adds `x-agent-tts-replica` to every HTTP answer a speech replica took part in."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        holder: list[str] = []
        token = _SERVED_BY.set(holder)

        async def send_with_replica(message: Message) -> None:
            if message["type"] == "http.response.start" and holder:
                MutableHeaders(scope=message).append(REPLICA_HEADER, holder[0])
            await send(message)

        try:
            await self.app(scope, receive, send_with_replica)
        finally:
            _SERVED_BY.reset(token)

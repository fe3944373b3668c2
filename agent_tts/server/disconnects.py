"""Noticing a client that went away while its speech is being made, and stopping the work at once.

A streaming response learns of a closed connection only when it next writes,
which can be many AR steps later. `StreamingSpeechResponse` listens for the
ASGI `http.disconnect` message all along and, when it comes, cancels the body
(and so the engine stream, within one AR step). `until_disconnected` does the
same for work whose answer is sent only at the end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

T = TypeVar("T")


class ClientGone(Exception):
    """The client closed the connection before its answer was ready."""


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _race(receive: Receive, work: "asyncio.Task[T]") -> T:
    """`work`'s result, or `ClientGone` after cancelling it (and waiting for its cleanup) if the client leaves."""
    gone = asyncio.ensure_future(_disconnect(receive))
    try:
        await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (work, gone):
            task.cancel()
        await asyncio.gather(work, gone, return_exceptions=True)
    if not work.cancelled():
        return work.result()
    raise ClientGone


async def until_disconnected(receive: Receive, work: Awaitable[T]) -> T:
    """Await `work`; if the client disconnects first, cancel it and raise `ClientGone`."""
    return await _race(receive, asyncio.ensure_future(work))


class StreamingSpeechResponse(StreamingResponse):
    """A `StreamingResponse` whose body is cancelled and closed as soon as the client disconnects."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await _race(receive, asyncio.ensure_future(self.stream_response(send)))
        except (ClientGone, OSError):
            pass
        finally:
            closer = getattr(self.body_iterator, "aclose", None)
            if closer is not None:
                await closer()
        if self.background is not None:
            await self.background()

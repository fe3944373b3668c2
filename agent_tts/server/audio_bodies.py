"""A speech stream as an HTTP body: encoded bytes as each chunk comes, or all of them at the end."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import aclosing

from agent_tts.errors import AgentTTSError
from agent_tts.server.encoding import AudioEncoder
from agent_tts.server.streams import OpenStream

logger = logging.getLogger(__name__)


async def encoded_audio(stream: OpenStream, encoder: AudioEncoder) -> AsyncIterator[bytes]:
    """The stream's audio through `encoder`, sent as it is made.

    A failure after the first bytes cannot change the status any more: it is logged and the transfer is cut
    (raised), so the client sees an incomplete body rather than a clean end.
    """
    async with aclosing(stream.chunks()) as chunks:
        try:
            async for chunk in chunks:
                data = encoder.encode(chunk.pcm)
                if data:
                    yield data
        except AgentTTSError as exc:
            logger.warning("%s stream (%s) failed after its first audio: %s", stream.api, stream.voice, exc)
            raise
    tail = encoder.finish()
    if tail:
        yield tail


async def whole_audio(stream: OpenStream, encoder: AudioEncoder) -> bytes:
    """All of the stream's audio through `encoder`, once it has ended."""
    pieces = [piece async for piece in encoded_audio(stream, encoder)]
    return b"".join(pieces)

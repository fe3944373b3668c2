"""Opening speech streams for the protocol adapters: the first chunk before any answer, and an account of each.

`SpeechStreams.open` starts a stream and waits for its first audio chunk, so
anything that fails before audio (unknown voice, bad option, busy engine,
nothing to speak) is still an error answer, not a 200 followed by silence.
`OpenStream.chunks()` yields that chunk and the rest; however the stream ends
(completed, cancelled by the client's message, the client gone, failed) it
is counted in the metrics and logged with its first-audio time, audio length,
real-time factor, and the engines' count of work begun after a cancel.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from typing import Any

from agent_tts.engine.unit_stream import AudioChunk
from agent_tts.errors import RequestError
from agent_tts.server.metrics import ServerMetrics
from agent_tts.server.speech_service import ReferenceVoice, SpeechService, VoiceSelection

logger = logging.getLogger(__name__)

COMPLETED, CANCELLED, DISCONNECTED, FAILED = "completed", "cancelled", "disconnected", "failed"


class SpeechStreams:
    """The one way adapters start speech: through the service, metered."""

    def __init__(self, service: SpeechService, metrics: ServerMetrics) -> None:
        self.service = service
        self.metrics = metrics

    async def open(self, api: str, voice: VoiceSelection, text: str | AsyncIterable[str], options: Mapping[str, Any],
                   started: float | None = None) -> "OpenStream":
        """A stream whose first chunk has arrived (None: the text had nothing to speak); errors raise here."""
        started = time.perf_counter() if started is None else started
        chunks = aiter(self.service.stream(voice, text, options))
        try:
            first = await anext(chunks, None)
        except BaseException:
            await chunks.aclose()
            raise
        if first is not None:
            self.metrics.first_audio.labels(api).observe(time.perf_counter() - started)
        return OpenStream(self, api, _voice_label(voice), chunks, first, started)


class OpenStream:
    """A started stream, iterated once through `chunks()`; it records how it ended.

    Ending early without `cancelled()` counts as the client having gone away.
    """

    def __init__(self, streams: SpeechStreams, api: str, voice: str, rest: AsyncIterator[AudioChunk],
                 first: AudioChunk | None, started: float) -> None:
        self._streams = streams
        self.api = api
        self.voice = voice
        self._rest = rest
        self.first = first
        self.started = started
        self.first_audio_s = None if first is None else time.perf_counter() - started
        self.audio_seconds = 0.0
        self.semantic_tokens = 0
        self._stop_reason = DISCONNECTED
        self._ended = False

    async def first_audio(self) -> AudioChunk:
        """The first chunk; with none (the text had nothing to speak) the stream is ended and `RequestError`
        raised, the answer an HTTP request gets."""
        if self.first is None:
            await self._end(COMPLETED)
            raise RequestError("the input has nothing this voice can speak (no words in a language it reads)")
        return self.first

    def cancelled(self) -> None:
        """The client asked to stop (barge-in): an early end is a cancel, not a disconnect."""
        self._stop_reason = CANCELLED

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        outcome = None
        try:
            if self.first is not None:
                self._count(self.first)
                yield self.first
                async for chunk in self._rest:
                    self._count(chunk)
                    yield chunk
            outcome = COMPLETED
        except Exception:
            outcome = FAILED
            raise
        finally:
            await self._end(outcome or self._stop_reason)

    async def aclose(self) -> None:
        """End a stream that will not be iterated (or no further): its synthesis is cancelled."""
        await self._end(self._stop_reason)

    async def _end(self, outcome: str) -> None:
        if self._ended:
            return
        self._ended = True
        await self._rest.aclose()
        self._record(outcome)

    def _count(self, chunk: AudioChunk) -> None:
        self.audio_seconds += chunk.seconds
        self.semantic_tokens += len(chunk.semantic_tokens)

    def _record(self, outcome: str) -> None:
        metrics = self._streams.metrics
        wall = time.perf_counter() - self.started
        metrics.streams.labels(self.api, outcome).inc()
        metrics.audio_seconds.labels(self.api).inc(self.audio_seconds)
        if outcome == COMPLETED and self.audio_seconds > 0:
            metrics.rtf.labels(self.api).observe(wall / self.audio_seconds)
        first = "no audio" if self.first_audio_s is None else f"first audio {1000 * self.first_audio_s:.0f} ms"
        line = (f"{self.api} stream ({self.voice}) {outcome}: {first}, {self.audio_seconds:.2f} s of audio "
                f"in {wall:.2f} s")
        if outcome in (CANCELLED, DISCONNECTED):
            line += (f"; generation stopped, engine work begun after a cancel so far: "
                     f"{self._streams.service.counts().work_after_cancel}")
        logger.info("%s", line)


def _voice_label(voice: VoiceSelection) -> str:
    if isinstance(voice, ReferenceVoice):
        return f"reference {voice.ref_audio.name}"
    return voice or "default voice"

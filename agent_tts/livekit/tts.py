"""`TTS`: agent-tts's streaming engine as a LiveKit Agents TTS, with word-aligned transcripts.

`TTS.stream()` returns a `SynthesizeStream`: text pushed with `push_text` goes
to the engine as it comes (the engine cuts it into clause-first units, once),
and each `flush()` ends a segment; audio chunks are pushed as they are made,
each with the words that begin in it as `TimedString`s (`start_time`: seconds
from the segment's first sample), so the framework's transcription
synchronizer shows and records the words as they play and, after an
interruption, only those (`use_tts_aligned_transcript=True`).
`TTS.synthesize(text)` returns a `ChunkedStream` for a whole text.
Cancelling or closing either stops the engine before its next step.
Metrics (time to first byte, audio duration, characters) come from the
framework's own monitoring of the streams.

The engine is any agent-tts engine: a `Voice`, a registered voice name, a
voice TOML, an engine, or None (the user's default voice, else the bundled
one).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from livekit.agents import APIConnectOptions, tts, utils
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, TimedString

from agent_tts.engine.unit_stream import AudioChunk, UnitStreamEngine, WordTime
from agent_tts.engines import open_engine

FRAME_MS = 100


def _engine_for(voice: Any, device: str, backend: str) -> UnitStreamEngine:
    if isinstance(voice, UnitStreamEngine):
        return voice
    from agent_tts.voice import Voice

    if isinstance(voice, Voice):
        from agent_tts.engine.synthesizer import Synthesizer

        return Synthesizer(voice)
    return open_engine(voice, device, backend=backend).engine


def _pcm16(chunk: AudioChunk) -> bytes:
    return (np.clip(chunk.pcm, -1.0, 1.0) * 32767).astype(np.int16).tobytes()


class _TranscriptText:
    """The text of each word for the transcript: its span of the unit's text (so a unit's words add up to the
    unit), after a space where a new unit of a spaced script begins."""

    def __init__(self) -> None:
        self._unit_index: int | None = None
        self._previous_cjk = True  # no space before the first word

    def of(self, chunk: AudioChunk, word: WordTime) -> str:
        text = chunk.unit_text[word.span[0]:word.span[1]]
        if chunk.unit_index != self._unit_index:
            if not (self._previous_cjk or word.is_cjk):
                text = " " + text
            self._unit_index = chunk.unit_index
        self._previous_cjk = word.is_cjk
        return text


class TTS(tts.TTS):
    """agent-tts as a LiveKit Agents TTS (see the module docstring); `options`: `SynthesisOptions` fields for
    every stream (language, speed, seed, ...)."""

    def __init__(self, *, voice: Any = None, device: str = "auto", backend: str = "torch",
                 **options: Any) -> None:
        engine = _engine_for(voice, device, backend)
        engine._options(options)  # a bad option is one clear error now, not on the first turn
        super().__init__(capabilities=tts.TTSCapabilities(streaming=True, aligned_transcript=True),
                         sample_rate=engine.sample_rate, num_channels=1)
        self._engine = engine
        self._stream_options = dict(options)
        self._streams: "weakref.WeakSet" = weakref.WeakSet()

    @property
    def engine(self) -> UnitStreamEngine:
        return self._engine

    @property
    def model(self) -> str:
        voice = getattr(self._engine, "voice", None)
        return getattr(voice, "name", None) or getattr(self._engine, "name", "agent-tts")

    @property
    def provider(self) -> str:
        return "agent-tts"

    def synthesize(self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
                   ) -> "ChunkedStream":
        return ChunkedStream(tts=self, input_text=text, conn_options=conn_options)

    def stream(self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> "SynthesizeStream":
        stream = SynthesizeStream(tts=self, conn_options=conn_options)
        self._streams.add(stream)
        return stream

    def prewarm(self) -> None:
        """Warm the engine up in the background (its first turn is not cold)."""
        asyncio.get_event_loop().run_in_executor(None, self._engine.warm_up)

    async def aclose(self) -> None:
        for stream in list(self._streams):
            await stream.aclose()
        self._engine.close()

    async def _speak(self, text: str | AsyncIterator[str], emitter: tts.AudioEmitter) -> None:
        """Stream the engine's chunks for `text` into `emitter`, each followed by its words."""
        transcript = _TranscriptText()
        async for chunk in self._engine.stream(text, **self._stream_options):
            emitter.push(_pcm16(chunk))
            if chunk.words:
                emitter.push_timed_transcript([TimedString(transcript.of(chunk, word), start_time=word.start_s)
                                               for word in chunk.words])


class ChunkedStream(tts.ChunkedStream):
    """One whole text through the engine (still chunk by chunk)."""

    def __init__(self, *, tts: TTS, input_text: str, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._agent_tts = tts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        output_emitter.initialize(request_id=utils.shortuuid(), sample_rate=self._agent_tts.sample_rate,
                                  num_channels=1, mime_type="audio/pcm", frame_size_ms=FRAME_MS)
        await self._agent_tts._speak(self._input_text, output_emitter)
        output_emitter.flush()


class SynthesizeStream(tts.SynthesizeStream):
    """Text pushed as it comes; each `flush()` ends a segment (one engine stream each)."""

    def __init__(self, *, tts: TTS, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, conn_options=conn_options)
        self._agent_tts = tts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        output_emitter.initialize(request_id=utils.shortuuid(), sample_rate=self._agent_tts.sample_rate,
                                  num_channels=1, mime_type="audio/pcm", frame_size_ms=FRAME_MS, stream=True)
        while (first := await self._first_text()) is not None:
            output_emitter.start_segment(segment_id=utils.shortuuid())
            await self._agent_tts._speak(self._segment_text(first), output_emitter)
            output_emitter.end_segment()

    async def _first_text(self) -> str | None:
        """The next segment's first text (a flush with nothing before it is skipped); None once input ended."""
        async for data in self._input_ch:
            if not isinstance(data, self._FlushSentinel):
                self._mark_started()
                return data
        return None

    async def _segment_text(self, first: str) -> AsyncIterator[str]:
        """The segment's text deltas, up to its flush (or the end of input)."""
        yield first
        async for data in self._input_ch:
            if isinstance(data, self._FlushSentinel):
                return
            yield data

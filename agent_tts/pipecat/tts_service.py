"""`GPTSoVITSTTSService`: agent-tts's streaming engine as a pipecat TTS service, with word timestamps.

Each text unit pipecat hands to `run_tts` (cut clause-first by
`ClauseFirstTextAggregator`) is spoken by the engine as it is: the text is
segmented once, by the aggregator (text the aggregator did not cut, such as
a `TTSSpeakFrame`'s, is segmented by the engine). Its chunks are pushed as
`TTSAudioRawFrame`s the moment they exist, resampled to the pipeline's
output rate when it differs, each followed by the words that begin in it
(`add_word_timestamps`, with `push_text_frames=False`): pipecat times each
word from the start of its audio context, the output transport releases it
when it plays, and on an interruption the words not yet played are dropped,
so the assistant's context holds what was said. A word's time is the audio
of its context before it (the units of a turn are one context), or the time
its chunk was pushed if the player had run dry by then, plus
`word_heard_after_s` (0.1 s): a word counts as said once its first tenth of
a second has played.

The engine is any agent-tts engine: a GPT-SoVITS voice (`Voice`, a
registered name or a TOML path) or the bundled default voice. On an
`InterruptionFrame` every stream of the engine is stopped before its next
step and nothing of the interrupted turn is pushed afterwards. A
`TTSUpdateSettingsFrame` with a new `voice` loads that voice in the
background and switches to it between sentences.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from loguru import logger
from pipecat.audio.utils import create_stream_resampler
from pipecat.frames.frames import ErrorFrame, Frame, InterruptionFrame, StartFrame, TTSAudioRawFrame
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.settings import TTSSettings
from pipecat.services.tts_service import TTSService
from pipecat.transcriptions.language import Language
from pipecat.utils.types import NOT_GIVEN, NotGiven, is_given

from agent_tts.engine.unit_stream import AudioChunk, UnitStreamEngine
from agent_tts.engines import open_engine
from agent_tts.errors import AgentTTSError, OptionError
from agent_tts.pipecat.clause_aggregator import ClauseFirstTextAggregator
from agent_tts.text.segmenter import SegmenterOptions

# A word is reported this long after its audio begins: a word whose first sound was cut off was not heard.
WORD_HEARD_AFTER_S = 0.1
# TTSStoppedFrame is pushed after this many "first audio" times without audio (at least 3 s).
STOP_TIMEOUT_FACTOR = 4.0
MIN_STOP_TIMEOUT_S = 3.0


@dataclass
class GPTSoVITSTTSSettings(TTSSettings):
    """Runtime-updatable settings: `voice` (a registered name or TOML path), language, speed and sampling."""

    speed: float | NotGiven = field(default_factory=lambda: NOT_GIVEN)
    top_k: int | NotGiven = field(default_factory=lambda: NOT_GIVEN)
    top_p: float | NotGiven = field(default_factory=lambda: NOT_GIVEN)
    temperature: float | NotGiven = field(default_factory=lambda: NOT_GIVEN)


def _engine_for(voice: Any, device: str, backend: str = "torch",
                precision: str = "fp32") -> tuple[UnitStreamEngine, str]:
    """An engine and a name for `voice`: an engine, a loaded `Voice`, a name or TOML path, or None (the default)."""
    if isinstance(voice, UnitStreamEngine):
        return voice, getattr(getattr(voice, "voice", None), "name", None) or getattr(voice, "name", "engine")
    from agent_tts.voice import Voice

    if isinstance(voice, Voice):
        from agent_tts.engine.synthesizer import Synthesizer

        return Synthesizer(voice), voice.name
    choice = open_engine(voice, device, backend=backend, precision=precision)
    logger.info(f"agent-tts: {choice.description}")
    return choice.engine, voice or ("default" if choice.is_default_voice else "registered default")


@dataclass
class ContextTimeline:
    """Where the next audio of one pipecat audio context begins, in seconds from its first audio (pipecat's origin
    for that context's word times)."""

    first_audio_at: float | None = None
    audio_end_s: float = 0.0

    def place(self, seconds: float, now: float) -> float:
        """The start of `seconds` of audio pushed at `now`: after the audio before it, or at `now` if that audio
        has played out by then (the player ran dry)."""
        if self.first_audio_at is None:
            self.first_audio_at = now
        start = max(self.audio_end_s, now - self.first_audio_at)
        self.audio_end_s = start + seconds
        return start


async def _units(units: list[str]) -> AsyncIterator[str]:
    for unit in units:
        yield unit


async def _drop_unspeakable(text: str, text_type: str) -> str:
    """Empty for text without a letter or digit in any script, so pipecat skips it."""
    if any(char.isalnum() for char in text):
        return text
    logger.debug(f"agent-tts: nothing to say in {text!r}; skipped")
    return ""


class GPTSoVITSTTSService(TTSService):
    """Streams speech from agent-tts into a pipecat pipeline, clause by clause, with word timestamps and barge-in."""

    Settings = GPTSoVITSTTSSettings
    _settings: Settings

    def __init__(self, *, voice: Any = None, device: str = "auto", backend: str = "torch", precision: str = "fp32",
                 settings: Settings | None = None,
                 segmenter: SegmenterOptions | None = None, engine_options: dict | None = None,
                 warm_up: bool = True, word_heard_after_s: float = WORD_HEARD_AFTER_S, **kwargs) -> None:
        """`voice`: a `Voice`, an engine, a registered voice name, a TOML path, or None for the user's default
        (else the bundled default voice). `device` (auto, cpu, cuda, cuda:N), `backend` ("torch" or "onnx":
        the voice's ONNX export) and `precision` (auto, fp32, bf16, int8, fp16; see `Voice.load`) apply to voices
        loaded by name. `engine_options`: fixed `SynthesisOptions` fields (seed, noise_scale ...).
        `word_heard_after_s`: how far into a word's audio it is reported as spoken."""
        engine, name = _engine_for(voice, device, backend, precision)
        defaults = self.Settings(model=None, voice=name, language="auto", speed=1.0, top_k=15, top_p=1.0,
                                 temperature=1.0)
        if settings is not None:
            defaults.apply_update(settings)
        # Text with nothing to say (emoji, markup) never reaches the engine; a unit that still yields no audio
        # (say, Cyrillic for a Chinese voice) is not a broken service, so pipecat must not write it off.
        kwargs.setdefault("max_consecutive_zero_audio_contexts", 0)
        kwargs["text_transforms"] = [("*", _drop_unspeakable), *kwargs.get("text_transforms", [])]
        super().__init__(push_start_frame=True, push_stop_frames=True, push_text_frames=False, settings=defaults,
                         **kwargs)
        self._text_aggregator = ClauseFirstTextAggregator(segmenter)
        self._segmenter = self._text_aggregator.options
        self._timelines: dict[str, ContextTimeline] = {}
        self._word_heard_after_s = word_heard_after_s
        self._engine = engine
        self._engine_options = dict(engine_options or {})
        self._check_options()  # a bad setting or engine option is one clear error before the pipeline starts
        self._device = device
        self._backend = backend
        self._precision = precision
        self._warm_up = warm_up
        self._pending_engine: asyncio.Task | None = None
        self._pending_voice_name: str | None = None
        self.warm_up_seconds: float | None = None

    @property
    def engine(self) -> UnitStreamEngine:
        return self._engine

    @property
    def pending_voice(self) -> str | None:
        """The voice still loading after a settings update; once loaded it speaks from the next sentence on."""
        task = self._pending_engine
        return None if task is None or task.done() else self._pending_voice_name

    def can_generate_metrics(self) -> bool:
        return True

    def language_to_service_language(self, language: Language) -> str:
        code = str(language.value if isinstance(language, Language) else language).lower()
        base = code.split("-")[0]
        return {"zh": "zh", "cmn": "zh", "en": "en", "ja": "ja"}.get(base, "auto")

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        if self._warm_up:
            started = time.perf_counter()
            await asyncio.to_thread(self._engine.warm_up)
            self.warm_up_seconds = time.perf_counter() - started
            # Idle time before pipecat declares the speech over: generous against the slowest first audio.
            self._stop_frame_timeout_s = max(MIN_STOP_TIMEOUT_S, STOP_TIMEOUT_FACTOR * self.warm_up_seconds)
            logger.info(f"{self}: warmed up in {self.warm_up_seconds:.2f} s; "
                        f"stop_frame_timeout_s={self._stop_frame_timeout_s:.1f}")

    async def stop(self, frame) -> None:
        await super().stop(frame)
        self._engine.close()

    async def cancel(self, frame) -> None:
        self._engine.cancel_active()
        await super().cancel(frame)
        self._engine.close()

    async def _handle_interruption(self, frame: InterruptionFrame, direction: FrameDirection) -> None:
        stopped = self._engine.cancel_active()
        if stopped:
            logger.debug(f"{self}: interruption stopped {stopped} synthesis stream(s)")
        await super()._handle_interruption(frame, direction)
        self._timelines = {key: timeline for key, timeline in self._timelines.items()
                           if self.audio_context_available(key)}  # uninterruptible contexts keep theirs

    async def on_audio_context_completed(self, context_id: str) -> None:
        self._timelines.pop(context_id, None)
        await super().on_audio_context_completed(context_id)

    def _check_options(self) -> None:
        """Raise `OptionError` (one line) when the settings and engine options would not make a valid stream."""
        self._engine._options(self._stream_options())

    async def _update_settings(self, delta: TTSSettings) -> dict[str, Any]:
        changed = await super()._update_settings(delta)
        try:
            self._check_options()
        except OptionError as exc:
            for name, previous in changed.items():
                setattr(self._settings, name, previous)
            logger.error(f"{self}: settings update refused, keeping the previous settings: {exc}")
            await self.push_error(f"settings update refused: {exc}")
            return {}
        if "voice" in changed and is_given(self._settings.voice):
            name = self._settings.voice
            logger.info(f"{self}: loading voice {name!r}; it speaks from the next sentence on")
            self._pending_voice_name = name
            self._pending_engine = asyncio.create_task(asyncio.to_thread(_engine_for, name, self._device, self._backend,
                                                                      self._precision))
        return changed

    async def _switch_voice_if_ready(self) -> None:
        """Between sentences: take a voice that finished loading; a failed load keeps the current voice."""
        task = self._pending_engine
        if task is None or not task.done():
            return
        self._pending_engine = None
        try:
            engine, name = task.result()
        except Exception as exc:  # noqa: BLE001 - the pipeline keeps the voice it has
            logger.error(f"{self}: voice switch failed, keeping the current voice: {exc}")
            await self.push_error(f"voice switch failed: {exc}")
            return
        if self._warm_up:
            await asyncio.to_thread(engine.warm_up)
        old, self._engine = self._engine, engine
        old.close()
        logger.info(f"{self}: now speaking with {name!r}")

    def _stream_options(self) -> dict[str, Any]:
        options = dict(self._engine_options)
        for name in ("language", "speed", "top_k", "top_p", "temperature"):
            value = getattr(self._settings, name)
            if is_given(value) and value is not None:
                options[name] = value
        return options

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame, None]:
        await self._switch_voice_if_ready()
        await self.start_tts_usage_metrics(text)
        pushed = 0
        resampler = None  # one per unit: engines differ in rate, and each unit's tail is flushed
        units = self._text_aggregator.units_of(text)
        source = text if units is None else _units(units)  # the aggregator's units as they are
        timeline = self._timelines.setdefault(context_id, ContextTimeline())
        options = dict(self._stream_options(), segmenter=self._segmenter)
        try:
            async for chunk in self._engine.stream(source, segment=units is None, **options):
                pcm16 = (np.clip(chunk.pcm, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
                if chunk.sample_rate != self.sample_rate:
                    resampler = resampler or create_stream_resampler()
                    pcm16 = await resampler.resample(pcm16, chunk.sample_rate, self.sample_rate)
                if chunk.last and resampler is not None:
                    pcm16 += await resampler.flush()
                    resampler = None
                placed = timeline.place(chunk.seconds, time.perf_counter())
                if pcm16:
                    await self.stop_ttfb_metrics()
                    pushed += 1
                    yield TTSAudioRawFrame(audio=pcm16, sample_rate=self.sample_rate, num_channels=1,
                                           context_id=context_id)
                await self._add_words(chunk, placed, context_id)
        except AgentTTSError as exc:
            logger.error(f"{self}: {exc}")
            yield ErrorFrame(error=str(exc))
        finally:
            await self.stop_ttfb_metrics()
        if not pushed:
            logger.debug(f"{self}: nothing to say in {text!r}")

    async def _add_words(self, chunk: AudioChunk, placed: float, context_id: str) -> None:
        """The chunk's words, timed from the start of the context's audio (the chunk begins at `placed`)."""
        for word in chunk.words:
            at = placed + word.start_s - chunk.start_s + self._word_heard_after_s
            await self.add_word_timestamps([(word.text, at)], context_id, includes_inter_frame_spaces=word.is_cjk)

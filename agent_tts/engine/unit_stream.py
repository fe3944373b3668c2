"""The streaming skeleton every voice engine shares: text or text deltas in, audio chunks out, on a worker thread.

`UnitStreamEngine.stream(text_or_deltas, **options)` segments the text into
units (clause first, then sentences), hands them in order to a worker thread
that speaks them one by one through the subclass, and yields `AudioChunk`s as
they are produced. The worker does not wait for the consumer: while unit N is
being played, unit N+1 is already being synthesized, up to a bound of audio
not yet taken that follows the measured speed (`Lookahead`; at most
`max_buffered_seconds`). Units too short to speak well
are joined to the next one when it is already there. Closing or cancelling the
stream sets its `CancelFlag`, which the subclass checks before every step of
its work, and the worker thread is joined before the generator finishes. A
stream first takes a seat of the engine's `Admission` (a limit on concurrent
streams; waiting in order; `EngineBusyError` when the queue is full).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

import numpy as np

from agent_tts.engine.cancel import CancelFlag
from agent_tts.engine.admission import Admission
from agent_tts.engine.exit_guard import stop_at_exit
from agent_tts.engine.openmp_pool import release_idle_workers
from agent_tts.errors import AgentTTSError, OptionError
from agent_tts.text.segmenter import Segmenter, SegmenterOptions, is_cjk, segment_text
from agent_tts.text.word_map import UnitWord

logger = logging.getLogger(__name__)
# Every stream's worker thread is named so; the process-wide threads (the GPT's scheduler, the PortAudio
# device thread) have other "agent-tts-" names and outlive the streams.
STREAM_THREAD_PREFIX = "agent-tts-stream-"

PAUSE_PHONES = frozenset(",.!?…-")


@dataclass(frozen=True)
class ChunkTimings:
    """perf_counter() instants and durations for one chunk's unit (GPT-only fields are 0 for other engines)."""

    unit_ready: float        # the unit's text was complete and taken by the worker
    frontend_s: float        # text -> phones
    bert_s: float            # BERT features
    prefill_s: float         # GPT prefill up to the first token
    produced: float          # this chunk was ready
    tokens: int              # tokens of the unit decoded so far
    ar_ms_per_token: float   # mean AR step time of the unit so far (SoVITS time excluded)
    decode_ms: float         # waveform decoding time for this chunk
    lookahead_s: float = float("inf")  # the stream's lookahead bound after this chunk (see `Lookahead`)

    @property
    def since_unit_ready_s(self) -> float:
        return self.produced - self.unit_ready


@dataclass(frozen=True)
class WordTime:
    """A word of a unit's text and when its audio begins, in seconds on the stream's audio timeline (0 is the
    stream's first sample)."""

    text: str
    """The word as written in the unit's text, punctuation attached ("Monday," or "好，")."""
    start_s: float
    span: tuple[int, int]
    """Its part of the unit's text: the word and the spaces and unspoken marks up to the next word (from 0 for
    the unit's first word), so the spans of a unit's words cover its whole text."""

    @property
    def is_cjk(self) -> bool:
        """A Chinese, Japanese or Korean character: written without spaces between words."""
        return any(is_cjk(char) for char in self.text)


@dataclass(frozen=True)
class AudioChunk:
    """A piece of audio: float32 mono PCM at `sample_rate`, with its unit, timings and the words it begins.

    `start_s` is where the chunk begins on the stream's audio timeline (the
    audio of every earlier chunk of the stream, back to back); `words` are the
    words whose audio begins in this chunk, each with `start_s <= word.start_s
    < start_s + seconds`, in order. Over a stream every spoken word of the
    text is in exactly one chunk.
    """

    pcm: np.ndarray
    sample_rate: int
    unit_index: int
    unit_text: str
    first: bool
    last: bool
    timings: ChunkTimings
    # GPT-SoVITS: the semantic tokens generated since the unit's previous chunk (the last chunk: through the end),
    # so a unit's chunks together hold its tokens in order. Empty for other engines.
    semantic_tokens: tuple[int, ...] = ()
    start_s: float = 0.0
    words: tuple[WordTime, ...] = ()

    @property
    def seconds(self) -> float:
        return len(self.pcm) / self.sample_rate

    @property
    def end_s(self) -> float:
        return self.start_s + self.seconds


class Cancelled(Exception):
    """Raised inside the worker when the stream was closed or cancelled."""


class Lookahead:
    """Counts audio seconds handed out but not yet taken; the worker waits while it is above a bound that follows
    the measured speed.

    The bound is what the worker needs to stay ahead of a consumer taking audio
    at real-time pace: the slowest unit start seen (text to first chunk) plus
    one chunk's production time (longest chunk x measured real-time factor),
    doubled for jitter, never under `MIN_SECONDS` nor over the stream's
    `max_buffered_seconds`. Until a chunk has been measured, and while the
    measured RTF is 1 or more (the worker cannot get ahead of real time), it is
    the maximum. With RTF < 1 a real-time consumer never starves and a barge-in
    throws away little work.
    """

    MIN_SECONDS = 1.0
    SAFETY = 2.0
    SMOOTHING = 0.3

    def __init__(self, max_seconds: float, cancel: CancelFlag | threading.Event) -> None:
        self.max_seconds = max_seconds
        self.cancel = cancel
        self.buffered = 0.0
        self.unit_start_s = 0.0
        self.rtf: float | None = None
        self.longest_chunk_s = 0.0
        self.condition = threading.Condition()

    @property
    def bound(self) -> float:
        if self.rtf is None or self.rtf >= 1:
            return self.max_seconds
        needed = self.SAFETY * (self.unit_start_s + self.longest_chunk_s * self.rtf)
        return min(self.max_seconds, max(self.MIN_SECONDS, needed))

    def measured(self, seconds: float, wall_s: float, unit_start: bool) -> None:
        """A chunk of `seconds` took `wall_s` to produce (waits excluded); `unit_start`: a unit's first chunk."""
        with self.condition:
            self.longest_chunk_s = max(self.longest_chunk_s, seconds)
            if unit_start:
                self.unit_start_s = max(self.unit_start_s, wall_s)
            if seconds > 0:  # a unit's first chunk counts too (slower: conservative), so one-chunk units measure
                sample = wall_s / seconds
                self.rtf = sample if self.rtf is None else (1 - self.SMOOTHING) * self.rtf + self.SMOOTHING * sample

    def produced(self, seconds: float) -> None:
        with self.condition:
            self.buffered += seconds

    def taken(self, seconds: float) -> None:
        with self.condition:
            self.buffered -= seconds
            self.condition.notify_all()

    def wait_for_room(self) -> None:
        with self.condition:
            while self.buffered > self.bound and not self.cancel.is_set():
                self.condition.wait(timeout=0.05)
        if self.cancel.is_set():
            raise Cancelled


class AudioTimeline:
    """The seconds of audio a stream has produced so far: where its next chunk begins."""

    def __init__(self) -> None:
        self.seconds = 0.0


class UnitOutput:
    """What a subclass uses to deliver one unit's audio: builds chunks, tracks `first`, honours cancel and lookahead,
    and places the unit's word times on the stream's timeline."""

    def __init__(self, text: str, unit_index: int, unit_ready: float, frontend_s: float, sample_rate: int,
                 cancel: CancelFlag, lookahead: Lookahead, deliver: Callable[[Any], None],
                 timeline: AudioTimeline | None = None) -> None:
        self.text = text
        self.unit_index = unit_index
        self.unit_ready = unit_ready
        self.frontend_s = frontend_s
        self.sample_rate = sample_rate
        self.cancel = cancel
        self.lookahead = lookahead
        self._deliver = deliver
        self._first = True
        self._producing_since = unit_ready  # waits for the consumer are not production time
        self.timeline = timeline or AudioTimeline()
        self._unit_start_s = self.timeline.seconds

    def check_cancelled(self) -> None:
        if self.cancel.is_set():
            raise Cancelled

    def emit(self, pcm: np.ndarray, last: bool, *, bert_s: float = 0.0, prefill_s: float = 0.0, tokens: int = 0,
             ar_ms_per_token: float = 0.0, decode_ms: float = 0.0, semantic_tokens: tuple[int, ...] = (),
             words: Sequence[tuple[UnitWord, float]] = ()) -> None:
        """Deliver a chunk; `words`: the words that begin in it, each with its start in seconds from the unit's
        first sample (kept inside the chunk)."""
        self.check_cancelled()
        now = time.perf_counter()
        pcm = np.asarray(pcm, np.float32)
        start_s = self.timeline.seconds
        last_sample_s = start_s + max(0, len(pcm) - 1) / self.sample_rate
        timed: list[WordTime] = []
        for word, seconds in words:  # on the stream's timeline, inside this chunk, never before the word ahead
            earliest = timed[-1].start_s if timed else start_s
            at = min(max(self._unit_start_s + seconds, earliest), last_sample_s)
            timed.append(WordTime(word.text, at, (word.span_start, word.span_end)))
        self.lookahead.measured(len(pcm) / self.sample_rate, now - self._producing_since, unit_start=self._first)
        timings = ChunkTimings(self.unit_ready, self.frontend_s, bert_s, prefill_s, now, tokens,
                               ar_ms_per_token, decode_ms, self.lookahead.bound)
        chunk = AudioChunk(pcm=pcm, sample_rate=self.sample_rate,
                           unit_index=self.unit_index, unit_text=self.text, first=self._first, last=last,
                           timings=timings, semantic_tokens=semantic_tokens, start_s=start_s, words=tuple(timed))
        self.timeline.seconds += chunk.seconds
        self._first = False
        self.lookahead.produced(chunk.seconds)
        self._deliver(chunk)
        self._producing_since = time.perf_counter()

    def wait_for_room(self) -> None:
        self.lookahead.wait_for_room()
        self._producing_since = time.perf_counter()


def _joined(carried: str, unit: str) -> str:
    """A too-short unit and the next one as one text: a space between them unless CJK meets CJK."""
    if not carried or not unit:
        return carried + unit
    if is_cjk(carried[-1]) or is_cjk(unit[0]) or carried[-1].isspace() or unit[0].isspace():
        return carried + unit
    return f"{carried} {unit}"


def _wrapped(exc: Exception) -> AgentTTSError:
    """A worker's unexpected error as the `AgentTTSError` the consumer raises, with the original as its cause."""
    error = AgentTTSError(f"synthesis failed: {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


OptionsT = TypeVar("OptionsT")


class UnitStreamEngine(ABC, Generic[OptionsT]):
    """Base of the voice engines: the stream plumbing; subclasses prepare and speak one unit.

    `OptionsT` is a frozen dataclass with at least `language`, `segmenter`,
    `min_unit_phones` and `max_buffered_seconds`.
    """

    sample_rate: int

    def __init__(self, options: OptionsT, admission: Admission | None = None) -> None:
        self.options = options
        self.admission = admission or Admission()
        self._active: dict[CancelFlag, Callable[[], None]] = {}

    @property
    def active_streams(self) -> int:
        """Streams in progress: started and not yet closed by their consumer."""
        return len(self._active)

    def cancel_active(self) -> int:
        """Stop every stream in progress (barge-in from outside its consumer); returns how many were stopped.

        Each worker stops before its next step, and its stream yields nothing more: chunks
        already produced but not yet taken are dropped.
        """
        stoppers = list(self._active.values())
        for stop in stoppers:
            stop()
        return len(stoppers)

    def _options(self, overrides: dict) -> OptionsT:
        try:
            return replace(self.options, **overrides)
        except TypeError as exc:
            raise OptionError(f"unknown synthesis option: {exc}") from None

    # -- what a subclass provides -------------------------------------------------------------

    def _new_stream_state(self, options: OptionsT) -> Any:
        """Per-stream state handed to every `_speak_unit` call (random generators, for instance)."""
        return None

    def _stream_ended(self, cancel: CancelFlag) -> None:
        """Called once per stream after its worker has finished (counters of work done after a cancel)."""

    @abstractmethod
    def _prepare_unit(self, text: str, options: OptionsT) -> tuple[Any, int]:
        """Text -> (what `_speak_unit` needs, the number of speakable phones)."""

    @abstractmethod
    def _speak_unit(self, prepared: Any, output: UnitOutput, options: OptionsT, state: Any) -> bool:
        """Synthesize one unit through `output.emit`; False when it had nothing to say."""

    def warm_up(self, text: str = "Hello there.") -> None:
        """Speak a short text once, discarding the audio, so the first real turn is not cold."""
        cancel = CancelFlag()
        prepared, _ = self._prepare_unit(text, self.options)
        lookahead = Lookahead(float("inf"), cancel)

        def discard(chunk: AudioChunk) -> None:
            lookahead.taken(chunk.seconds)  # taken at once, so the worker never waits for room

        output = UnitOutput(text, 0, time.perf_counter(), 0.0, self.sample_rate, cancel, lookahead, discard)
        self._speak_unit(prepared, output, self.options, self._new_stream_state(self.options))
        release_idle_workers()

    def close(self) -> None:
        """Release what the engine holds outside Python (helper processes); the default holds nothing."""

    # -- the stream ---------------------------------------------------------------------------

    async def stream(self, text: str | AsyncIterable[str], *, cancel: CancelFlag | None = None,
                     segment: bool = True, **overrides) -> AsyncIterator[AudioChunk]:
        """Audio chunks for `text` (a string, or an async iterable of text deltas), in order.

        `cancel`: a `CancelFlag` of the caller's, to stop this stream from anywhere (setting it ends the stream
        as closing it does); by default the stream makes its own. `segment=False`: the text is already cut into
        units (a framework's aggregator did it): a string is one unit, and each item of an async iterable is one
        unit, spoken as it is.
        """
        options = self._options(overrides)
        loop = asyncio.get_running_loop()
        units: queue.Queue[str | None] = queue.Queue()
        out: asyncio.Queue = asyncio.Queue()
        cancel = cancel or CancelFlag()
        lookahead = Lookahead(options.max_buffered_seconds, cancel)
        feeder = None
        if isinstance(text, str):
            for unit in segment_text(text, options.segmenter) if segment else [text.strip()]:
                if unit:
                    units.put(unit)
            units.put(None)
        else:
            feeder = asyncio.create_task(self._feed_units(text, options.segmenter if segment else None, units, out))

        def deliver(item) -> None:
            try:
                loop.call_soon_threadsafe(out.put_nowait, item)
            except RuntimeError:  # the consumer's event loop is gone: nobody is listening any more
                cancel.set()

        def wake() -> None:  # the cancel, from wherever it came, ends the worker's waits and the consumer's
            units.put(None)
            deliver(None)

        worker = threading.Thread(target=self._work, args=(units, options, cancel, lookahead, deliver),
                                  name=f"{STREAM_THREAD_PREFIX}{type(self).__name__}", daemon=True)
        cancel.add_listener(wake)
        stop_at_exit(worker, cancel.set)
        worker.start()
        self._active[cancel] = cancel.set
        try:
            while True:
                item = await out.get()
                if item is None or cancel.is_set():
                    break
                if isinstance(item, BaseException):
                    raise item
                lookahead.taken(item.seconds)
                yield item
        finally:
            cancel.set()
            cancel.remove_listener(wake)
            self._active.pop(cancel, None)
            if feeder is not None:
                feeder.cancel()
            units.put(None)
            await asyncio.to_thread(worker.join)
            self._stream_ended(cancel)

    @staticmethod
    async def _feed_units(deltas: AsyncIterable[str], options: SegmenterOptions | None, units: queue.Queue,
                          out: asyncio.Queue) -> None:
        """Segment the text deltas into units (with `options` None each delta is a unit); a failing text source
        ends the stream with its error."""
        segmenter = Segmenter(options) if options is not None else None
        try:
            async for delta in deltas:
                if segmenter is None:
                    if delta and delta.strip():
                        units.put(delta.strip())
                    continue
                for unit in segmenter.feed(delta or ""):
                    units.put(unit)
            for unit in segmenter.flush() if segmenter is not None else []:
                units.put(unit)
        except Exception as exc:  # noqa: BLE001 - handed to the consumer
            error = AgentTTSError(f"the text source failed: {type(exc).__name__}: {exc}")
            error.__cause__ = exc
            out.put_nowait(error)
        finally:
            units.put(None)

    def _work(self, units: queue.Queue, options: OptionsT, cancel: CancelFlag, lookahead: Lookahead,
              deliver: Callable[[Any], None]) -> None:
        seated = False
        try:
            seated = self.admission.acquire(cancel)
            if not seated:
                return
            state = self._new_stream_state(options)
            unit_index = 0
            carried = ""
            timeline = AudioTimeline()
            while not cancel.is_set():
                if units.empty():  # waiting for text: the idle OpenMP workers would slow other streams
                    release_idle_workers()
                unit = units.get()
                if unit is None and not carried:
                    break
                unit_ready = time.perf_counter()
                text = _joined(carried, unit or "")
                prepared, speakable = self._prepare_unit(text, options)
                if unit is not None and speakable < options.min_unit_phones and units.qsize() > 0:
                    carried = text
                    continue
                carried = ""
                output = UnitOutput(text, unit_index, unit_ready, time.perf_counter() - unit_ready,
                                    self.sample_rate, cancel, lookahead, deliver, timeline)
                if self._speak_unit(prepared, output, options, state):
                    unit_index += 1
                if unit is None:
                    break
        except Cancelled:
            pass
        except AgentTTSError as exc:  # a problem with a message for the user (busy, bad input): no traceback
            logger.warning("%s", exc)
            deliver(exc)
        except Exception as exc:  # noqa: BLE001 - reported to the consumer, which raises it
            logger.exception("synthesis failed")
            deliver(_wrapped(exc))
        finally:
            if seated:
                self.admission.release()
            deliver(None)

    async def synthesize_async(self, text: str | AsyncIterable[str], **overrides) -> np.ndarray:
        """All chunks of `stream` joined: float32 PCM at `sample_rate`."""
        pieces = [chunk.pcm async for chunk in self.stream(text, **overrides)]
        return np.concatenate(pieces) if pieces else np.zeros(0, np.float32)

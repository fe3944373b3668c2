"""The streaming engine: text (or an LLM's token stream) in, audio chunks out while the rest is generated.

`Synthesizer(voice).stream(text_or_deltas, **options)` is an async generator
of `AudioChunk`s. A worker thread takes the segmenter's units in order and,
for each, runs the frontend and BERT, decodes semantic tokens one AR step at a
time against a preallocated KV cache, and hands tokens to a `ChunkedDecoder`
whose waveform chunks go to the consumer at once. The worker does not wait for
the consumer: while unit N is being played, unit N+1 is already being
synthesized (bounded by `max_buffered_seconds` of audio not yet taken).
Closing or cancelling the stream stops the worker before its next AR step.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from agent_tts.engine.chunked_decoder import ChunkedDecoder, ChunkPlan
from agent_tts.engine.guards import is_looping, max_tokens_for
from agent_tts.engine.sampling import SamplingOptions
from agent_tts.engine.t2s_decoding import DecodeOptions, generate_semantic_tokens
from agent_tts.errors import AgentTTSError
from agent_tts.text.bert_features import phone_level_bert
from agent_tts.text.phonemes import Phonemes
from agent_tts.text.segmenter import Segmenter, SegmenterOptions, segment_text
from agent_tts.voice import Voice

logger = logging.getLogger(__name__)

MAX_TOKENS = 1500


@dataclass(frozen=True)
class SynthesisOptions:
    """How to speak: sampling, speed, seed, chunking, guards and lookahead."""

    language: str = "auto"
    top_k: int = 15
    top_p: float = 1.0
    temperature: float = 1.0
    repetition_penalty: float = 1.35
    speed: float = 1.0
    noise_scale: float = 0.5
    seed: int | None = None
    chunk_plan: ChunkPlan = field(default_factory=ChunkPlan)
    segmenter: SegmenterOptions = field(default_factory=SegmenterOptions)
    # Guards: no unit shorter than this (an instant EOS replays the reference clip) ...
    min_tokens: int = 11
    # ... none longer than this many tokens per phone (a runaway GPT), and no stuck repetition.
    max_tokens_per_phone: float = 8.0
    stop_on_loop: bool = True
    # Units with fewer speakable phones than this are joined to the next unit when it is already there.
    min_unit_phones: int = 4
    # Benchmarks and tests: exactly this many tokens per unit, or per phone of the unit (EOS suppressed).
    fixed_tokens: int | None = None
    fixed_tokens_per_phone: float | None = None
    # Lookahead bound: audio produced but not yet taken by the consumer.
    max_buffered_seconds: float = 10.0

    def __post_init__(self) -> None:
        SamplingOptions(self.top_k, self.top_p, self.temperature, self.repetition_penalty)
        if not 0.25 <= self.speed <= 4.0:
            raise ValueError(f"speed must be in [0.25, 4], got {self.speed}")
        if self.noise_scale < 0:
            raise ValueError("noise_scale cannot be negative")

    @property
    def sampling(self) -> SamplingOptions:
        return SamplingOptions(self.top_k, self.top_p, self.temperature, self.repetition_penalty)


@dataclass(frozen=True)
class ChunkTimings:
    """perf_counter() instants and durations for one chunk's unit."""

    unit_ready: float        # the unit's text was complete and taken by the worker
    frontend_s: float        # text -> phones
    bert_s: float            # BERT features
    prefill_s: float         # GPT prefill up to the first token
    produced: float          # this chunk was ready
    tokens: int              # tokens of the unit decoded so far
    ar_ms_per_token: float   # mean AR step time of the unit so far (SoVITS time excluded)
    decode_ms: float         # SoVITS time for this chunk's window

    @property
    def since_unit_ready_s(self) -> float:
        return self.produced - self.unit_ready


@dataclass(frozen=True)
class AudioChunk:
    """A piece of audio: float32 mono PCM at `sample_rate`, with its unit and timings."""

    pcm: np.ndarray
    sample_rate: int
    unit_index: int
    unit_text: str
    first: bool
    last: bool
    timings: ChunkTimings

    @property
    def seconds(self) -> float:
        return len(self.pcm) / self.sample_rate


class _Cancelled(Exception):
    pass


class _Lookahead:
    """Counts audio seconds handed out but not yet taken; the worker waits while it is above the bound."""

    def __init__(self, bound_seconds: float, cancel: threading.Event) -> None:
        self.bound = bound_seconds
        self.cancel = cancel
        self.buffered = 0.0
        self.condition = threading.Condition()

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
            raise _Cancelled


class Synthesizer:
    """Streams speech in one voice. Each stream has its own worker thread and KV cache."""

    def __init__(self, voice: Voice, options: SynthesisOptions | None = None) -> None:
        self.voice = voice
        self.options = options or SynthesisOptions()
        self.steps_after_cancel = 0  # AR tokens produced after a cancel was requested (tests, diagnostics)

    def _options(self, overrides: dict) -> SynthesisOptions:
        try:
            return replace(self.options, **overrides)
        except TypeError as exc:
            raise AgentTTSError(f"unknown synthesis option: {exc}") from None

    async def stream(self, text: str | AsyncIterable[str], **overrides) -> AsyncIterator[AudioChunk]:
        """Audio chunks for `text` (a string, or an async iterable of text deltas), in order."""
        options = self._options(overrides)
        loop = asyncio.get_running_loop()
        units: queue.Queue[str | None] = queue.Queue()
        out: asyncio.Queue = asyncio.Queue()
        cancel = threading.Event()
        lookahead = _Lookahead(options.max_buffered_seconds, cancel)
        feeder = None
        if isinstance(text, str):
            for unit in segment_text(text, options.segmenter):
                units.put(unit)
            units.put(None)
        else:
            feeder = asyncio.create_task(self._feed_units(text, options.segmenter, units, out))

        def deliver(item) -> None:
            try:
                loop.call_soon_threadsafe(out.put_nowait, item)
            except RuntimeError:  # the consumer's event loop is gone: nobody is listening any more
                cancel.set()

        worker = threading.Thread(target=self._work, args=(units, options, cancel, lookahead, deliver),
                                  name="agent-tts-synthesizer", daemon=True)
        worker.start()
        try:
            while True:
                item = await out.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                lookahead.taken(item.seconds)
                yield item
        finally:
            cancel.set()
            if feeder is not None:
                feeder.cancel()
            units.put(None)
            await asyncio.to_thread(worker.join)

    @staticmethod
    async def _feed_units(deltas: AsyncIterable[str], options: SegmenterOptions, units: queue.Queue,
                          out: asyncio.Queue) -> None:
        """Segment the text deltas into units; a failing text source ends the stream with its error."""
        segmenter = Segmenter(options)
        try:
            async for delta in deltas:
                for unit in segmenter.feed(delta or ""):
                    units.put(unit)
            for unit in segmenter.flush():
                units.put(unit)
        except Exception as exc:  # noqa: BLE001 - handed to the consumer
            out.put_nowait(AgentTTSError(f"the text source failed: {exc}"))
        finally:
            units.put(None)

    def _work(self, units: queue.Queue, options: SynthesisOptions, cancel: threading.Event,
              lookahead: _Lookahead, deliver) -> None:
        try:
            generator = torch.Generator(device=self.voice.device)
            noise_generator = torch.Generator()
            if options.seed is not None:
                generator.manual_seed(options.seed)
                noise_generator.manual_seed(options.seed + 1)
            else:
                generator.seed()
                noise_generator.seed()
            unit_index = 0
            carried = ""
            while not cancel.is_set():
                unit = units.get()
                if unit is None and not carried:
                    break
                unit_ready = time.perf_counter()
                text = carried + (unit or "")
                phonemes = self.voice.frontend(text, options.language)
                speakable = sum(1 for phone in phonemes.phones if phone not in ",.!?…-")
                if unit is not None and speakable < options.min_unit_phones and units.qsize() > 0:
                    carried = text
                    continue
                carried = ""
                frontend_s = time.perf_counter() - unit_ready
                if self._speak_unit(text, phonemes, unit_ready, frontend_s, unit_index, options, cancel, lookahead,
                                    deliver, generator, noise_generator):
                    unit_index += 1
                if unit is None:
                    break
        except _Cancelled:
            pass
        except Exception as exc:  # noqa: BLE001 - reported to the consumer, which raises it
            logger.exception("synthesis failed")
            deliver(exc if isinstance(exc, AgentTTSError) else AgentTTSError(f"synthesis failed: {exc}"))
        finally:
            deliver(None)

    def _speak_unit(self, text: str, phonemes: Phonemes, unit_ready: float, frontend_s: float, unit_index: int,
                    options: SynthesisOptions, cancel: threading.Event, lookahead: _Lookahead, deliver,
                    generator: torch.Generator, noise_generator: torch.Generator) -> bool:
        """Synthesize one unit, delivering its chunks; False when it had nothing to say."""
        voice = self.voice
        if phonemes.is_silent:
            return False
        with torch.inference_mode():
            bert_started = time.perf_counter()
            target_bert = phone_level_bert(voice.bert, phonemes).to(voice.device)
            bert_done = time.perf_counter()
            phone_ids = torch.tensor([voice.ref_phonemes.phone_ids + phonemes.phone_ids], device=voice.device)
            bert = torch.cat([voice.ref_bert, target_bert], dim=1)[None].to(voice.gpt.ar_predict_layer.weight.dtype)
            decode = decode_options(options, len(phonemes.phones))
            decoder = ChunkedDecoder(voice.sovits, torch.tensor([phonemes.phone_ids], device=voice.device),
                                     voice.ge, plan=options.chunk_plan, speed=options.speed,
                                     noise_scale=options.noise_scale, generator=noise_generator)
            state = {"first": True, "prefill_s": 0.0}
            tokens: list[int] = []

            def send(pcm: np.ndarray, last: bool) -> None:
                if cancel.is_set():
                    raise _Cancelled
                now = time.perf_counter()
                ar_time = now - bert_done - state["prefill_s"] - sum(decoder.decode_seconds)
                chunk = AudioChunk(
                    pcm=pcm.astype(np.float32, copy=False), sample_rate=voice.sample_rate, unit_index=unit_index,
                    unit_text=text, first=state["first"], last=last,
                    timings=ChunkTimings(unit_ready, frontend_s, bert_done - bert_started,
                                         state["prefill_s"], now, len(tokens),
                                         1000 * ar_time / max(1, len(tokens)),
                                         1000 * (decoder.decode_seconds[-1] if decoder.decode_seconds else 0.0)))
                state["first"] = False
                lookahead.produced(chunk.seconds)
                deliver(chunk)

            started = time.perf_counter()
            for token in generate_semantic_tokens(voice.gpt, phone_ids, bert, voice.prompt_codes, decode,
                                                  generator=generator, should_stop=cancel.is_set):
                if cancel.is_set():
                    self.steps_after_cancel += 1
                if not tokens:
                    state["prefill_s"] = time.perf_counter() - started
                tokens.append(token)
                for pcm in decoder.push(token):
                    send(pcm, last=False)
                    lookahead.wait_for_room()
                if options.stop_on_loop and not decode.suppress_eos and is_looping(tokens):
                    logger.warning("unit %d: the GPT repeats itself; stopping the unit at %d tokens",
                                   unit_index, len(tokens))
                    break
            if cancel.is_set():
                raise _Cancelled
            if not tokens:
                return False
            send(decoder.finish(), last=True)
        return True

    def synthesize(self, text: str, **overrides) -> tuple[np.ndarray, int]:
        """The whole utterance at once (AR to the end, then one decode per unit): (pcm, sample_rate)."""
        options = self._options(overrides)
        return whole_utterance(self.voice, text, options), self.voice.sample_rate


def decode_options(options: SynthesisOptions, n_phones: int) -> DecodeOptions:
    """Stopping rules for one unit: a fixed length for benchmarks, else EOS within the token budget."""
    if options.fixed_tokens is not None:
        return DecodeOptions(options.sampling, max_tokens=options.fixed_tokens, suppress_eos=True)
    if options.fixed_tokens_per_phone is not None:
        count = max(options.min_tokens + 1, round(n_phones * options.fixed_tokens_per_phone))
        return DecodeOptions(options.sampling, max_tokens=count, suppress_eos=True)
    budget = max_tokens_for(n_phones, options.max_tokens_per_phone, MAX_TOKENS, options.min_tokens + 1)
    return DecodeOptions(options.sampling, max_tokens=budget, min_tokens=options.min_tokens)


def whole_utterance(voice: Voice, text: str, options: SynthesisOptions) -> np.ndarray:
    """The non-streaming path: for each unit, every token first, then one SoVITS decode."""
    generator = torch.Generator(device=voice.device)
    noise_generator = torch.Generator()
    if options.seed is not None:
        generator.manual_seed(options.seed)
        noise_generator.manual_seed(options.seed + 1)
    pieces = []
    with torch.inference_mode():
        for unit in segment_text(text, options.segmenter):
            phonemes = voice.frontend(unit, options.language)
            if phonemes.is_silent:
                continue
            target_bert = phone_level_bert(voice.bert, phonemes).to(voice.device)
            phone_ids = torch.tensor([voice.ref_phonemes.phone_ids + phonemes.phone_ids], device=voice.device)
            bert = torch.cat([voice.ref_bert, target_bert], dim=1)[None]
            decode = decode_options(options, len(phonemes.phones))
            tokens = list(generate_semantic_tokens(voice.gpt, phone_ids, bert, voice.prompt_codes, decode,
                                                   generator=generator))
            if not tokens:
                continue
            decoder = ChunkedDecoder(voice.sovits, torch.tensor([phonemes.phone_ids], device=voice.device), voice.ge,
                                     speed=options.speed, noise_scale=options.noise_scale, generator=noise_generator)
            pieces.append(decoder.decode_all(tokens))
    return np.concatenate(pieces) if pieces else np.zeros(0, np.float32)

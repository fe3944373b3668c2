"""The GPT-SoVITS streaming engine: text (or an LLM's token stream) in, audio chunks out while the rest is generated.

`Synthesizer(voice).stream(text_or_deltas, **options)` is an async generator
of `AudioChunk`s (the plumbing is `UnitStreamEngine`'s). For each unit the
stream's worker thread runs the frontend and BERT, submits the unit to the
GPT's scheduler, which decodes the semantic tokens of every concurrent
stream in one batched AR step (`scheduler.py`), and hands the tokens as they
come to a `ChunkedDecoder` whose waveform chunks go to the consumer at once.
With `batching=False` each stream decodes its tokens in its own thread
instead (one row of the same decoder): the engine as it was before
batching, kept for comparison (`agent-tts bench-concurrency`).

Closing or cancelling the stream stops its work before its next AR step or
SoVITS window. On a CUDA device the AR step is replayed as a CUDA graph.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from agent_tts.engine.ar_batch import ARRequest, BatchDecoder, DecodeOptions, StepRunner, default_step_runner
from agent_tts.engine.attention_alignment import WordClock
from agent_tts.engine.cancel import CancelFlag
from agent_tts.engine.chunked_decoder import ChunkedDecoder, ChunkPlan
from agent_tts.engine.guards import is_looping, max_tokens_for
from agent_tts.engine.openmp_pool import release_idle_workers
from agent_tts.engine.sampling import SamplingOptions
from agent_tts.engine.admission import Admission
from agent_tts.engine.scheduler import ARScheduler, scheduler_for
from agent_tts.engine.t2s_decoding import generate_semantic_tokens
from agent_tts.engine.unit_stream import PAUSE_PHONES, AudioChunk, ChunkTimings, UnitOutput, UnitStreamEngine
from agent_tts.errors import OptionError
from agent_tts.text.bert_features import phone_level_bert
from agent_tts.text.phonemes import Phonemes
from agent_tts.text.english.g2p import english_word_count
from agent_tts.text.segmenter import SegmenterOptions, segment_text
from agent_tts.text.word_map import unit_words
from agent_tts.voice import Voice

logger = logging.getLogger(__name__)

__all__ = ["AudioChunk", "ChunkTimings", "SynthesisOptions", "Synthesizer", "decode_options", "whole_utterance"]

MAX_TOKENS = 1500


@dataclass(frozen=True)
class SynthesisOptions:
    """How to speak. Every field can be given to `stream(...)` by name; the defaults here are the only ones."""

    language: str = "auto"
    """zh, en, ja or auto (detected per span)."""
    top_k: int = 15
    """Sampling: the k most likely semantic tokens (1: greedy)."""
    top_p: float = 1.0
    """Sampling: nucleus mass kept (1: all)."""
    temperature: float = 1.0
    """Sampling temperature."""
    repetition_penalty: float = 1.35
    """Sampling: penalty on semantic tokens already seen (the reference prompt included)."""
    speed: float = 1.0
    """Speaking rate, 0.25 to 4 (SoVITS stretches its latent frames)."""
    noise_scale: float = 0.5
    """SoVITS noise (0: deterministic decoding)."""
    seed: int | None = None
    """Seed of the stream's random generators: the same seed gives the same audio, alone or in a batch."""
    chunk_plan: ChunkPlan = field(default_factory=ChunkPlan)
    """Chunk sizes of the streaming decoder."""
    segmenter: SegmenterOptions = field(default_factory=SegmenterOptions)
    """How text is cut into units."""
    min_tokens: int = 11
    """Guard: no unit shorter than this many tokens (an instant EOS replays the reference clip)."""
    max_tokens_per_phone: float = 8.0
    """Guard: no unit longer than this many tokens per phone (a runaway GPT)."""
    stop_on_loop: bool = True
    """Guard: stop a unit whose tokens repeat one short pattern."""
    min_unit_phones: int = 4
    """Units with fewer speakable phones are joined to the next unit when it is already there."""
    fixed_tokens: int | None = None
    """Benchmarks and tests: exactly this many tokens per unit (EOS suppressed)."""
    fixed_tokens_per_phone: float | None = None
    """Benchmarks and tests: exactly this many tokens per phone of the unit (EOS suppressed)."""
    max_buffered_seconds: float = 10.0
    """The most audio produced but not yet taken by the consumer; below it the bound follows the measured speed."""

    def __post_init__(self) -> None:
        self.sampling  # validates the sampling fields
        if not 0.25 <= self.speed <= 4.0:
            raise OptionError(f"speed must be between 0.25 and 4, got {self.speed:g}")
        if self.noise_scale < 0:
            raise OptionError(f"noise_scale cannot be negative, got {self.noise_scale:g}")
        if self.max_tokens_per_phone <= 0:
            raise OptionError(f"max_tokens_per_phone must be above 0, got {self.max_tokens_per_phone:g}")

    @property
    def sampling(self) -> SamplingOptions:
        return SamplingOptions(top_k=self.top_k, top_p=self.top_p, temperature=self.temperature,
                               repetition_penalty=self.repetition_penalty)


class TokenSource(Protocol):
    """A unit's semantic tokens as they are decoded, whichever thread decodes them; `attention[k]` is token k's
    attention over the unit's phones (None without a probe), there once token k has been yielded."""

    attention: list[np.ndarray | None]

    def tokens(self) -> Iterator[int]: ...

    def decoding(self) -> AbstractContextManager[None]:
        """Entered around each SoVITS decode of the unit's chunks (the scheduler may wait meanwhile)."""
        ...

    def close(self) -> None: ...


class Synthesizer(UnitStreamEngine[SynthesisOptions]):
    """Streams speech in one GPT-SoVITS voice; concurrent streams share one batched AR step.

    `batching=False`: each stream decodes in its own thread (no shared batch).
    `max_streams` / `max_waiting` bound the concurrent streams of the voice's
    GPT (shared by every voice using that GPT): beyond `max_streams` a stream
    waits for a seat, in order, and beyond `max_waiting` waiting ones a new
    stream fails with `EngineBusyError`.
    """

    def __init__(self, voice: Voice, options: SynthesisOptions | None = None, *, batching: bool = True,
                 max_streams: int | None = None, max_waiting: int | None = None) -> None:
        self.voice = voice
        self.scheduler: ARScheduler | None = None
        if batching:
            self.scheduler = scheduler_for(voice.gpt, lambda: ARScheduler(voice.gpt, step_runner_for(voice)))
            admission = self.scheduler.admission
        else:
            admission = Admission()
        if max_streams is not None:
            admission.max_streams = max_streams
        if max_waiting is not None:
            admission.max_waiting = max_waiting
        super().__init__(options or SynthesisOptions(), admission)
        self.sample_rate = voice.sample_rate
        # Prefills, AR steps and SoVITS window decodes begun after their stream's cancel flag was set.
        self.steps_after_cancel = 0
        self.decodes_after_cancel = 0

    def _new_stream_state(self, options: SynthesisOptions) -> StreamState:
        return StreamState.new(self.voice, options)

    def _stream_ended(self, cancel: CancelFlag) -> None:
        self.steps_after_cancel += cancel.begun_after_set("prefill") + cancel.begun_after_set("ar_step")
        self.decodes_after_cancel += cancel.begun_after_set("decode")

    def _prepare_unit(self, text: str, options: SynthesisOptions) -> tuple[Phonemes, int]:
        phonemes = self.voice.frontend(text, options.language)
        return phonemes, sum(1 for phone in phonemes.phones if phone not in PAUSE_PHONES)

    def _token_source(self, request: ARRequest, state: StreamState, options: SynthesisOptions) -> TokenSource:
        if self.scheduler is not None:
            plan = options.chunk_plan
            return self.scheduler.submit(request, max_ahead=plan.max_tokens + plan.holdback)
        return InlineTokens(self.voice, request, state.decoder)

    def _speak_unit(self, phonemes: Phonemes, output: UnitOutput, options: SynthesisOptions,
                    state: StreamState) -> bool:
        """Synthesize one unit, delivering its chunks with the words that begin in them; False when it had
        nothing to say."""
        voice = self.voice
        if phonemes.is_silent:
            return False
        cancel = output.cancel
        english = bool(phonemes.parts) and all(part.language == "en" for part in phonemes.parts)
        words = unit_words(output.text, phonemes.spoken_words(), len(phonemes.phones),
                           english_word_count if english else None)
        clock = WordClock(words, len(phonemes.phones))
        if self.scheduler is not None:  # BERT on the thread count the scheduler chose (intraop_threads.py)
            self.scheduler.threads.apply()
        with torch.inference_mode():
            bert_started = time.perf_counter()
            request = unit_request(voice, phonemes, decode_options(options, len(phonemes.phones)), state.generator,
                                   cancel, align=True)
            bert_done = time.perf_counter()
            decoder = ChunkedDecoder(voice.sovits, torch.tensor([phonemes.phone_ids], device=voice.engine_device),
                                     voice.ge, plan=options.chunk_plan, speed=options.speed,
                                     noise_scale=options.noise_scale, generator=state.noise_generator,
                                     may_decode=lambda: cancel.try_begin("decode"),
                                     around_decode=lambda: source.decoding())
            prefill_s = 0.0
            tokens: list[int] = []
            sent = 0  # tokens already handed out with a chunk
            chunks_sent = 0

            def send(pcm: np.ndarray, last: bool) -> None:
                nonlocal sent, chunks_sent
                ar_time = time.perf_counter() - bert_done - prefill_s - sum(decoder.decode_seconds)
                token_end = len(tokens) if last else decoder.chunk_token_ends[chunks_sent]
                seconds_per_token = decoder.samples_per_token / voice.sample_rate
                words = [(word, token * seconds_per_token) for word, token in clock.chunk_words(token_end, last)]
                output.emit(pcm, last, bert_s=bert_done - bert_started, prefill_s=prefill_s, tokens=len(tokens),
                            ar_ms_per_token=1000 * ar_time / max(1, len(tokens)),
                            decode_ms=1000 * (decoder.decode_seconds[-1] if decoder.decode_seconds else 0.0),
                            semantic_tokens=tuple(tokens[sent:]), words=words)
                sent = len(tokens)
                chunks_sent += 1

            source = self._token_source(request, state, options)
            try:
                for token in source.tokens():
                    if not tokens:
                        prefill_s = time.perf_counter() - bert_done
                    tokens.append(token)
                    clock.add(source.attention[len(tokens) - 1])
                    for pcm in decoder.push(token):
                        send(pcm, last=False)
                        output.wait_for_room()
                    if options.stop_on_loop and not request.options.suppress_eos and is_looping(tokens):
                        logger.warning("unit %d: the GPT repeats itself; stopping the unit at %d tokens",
                                       output.unit_index, len(tokens))
                        break
            finally:
                source.close()
            output.check_cancelled()
            if not tokens:
                return False
            send(decoder.finish(), last=True)
        return True

    def synthesize(self, text: str, **overrides) -> tuple[np.ndarray, int]:
        """The whole utterance at once (AR to the end, then one decode per unit): (pcm, sample_rate)."""
        options = self._options(overrides)
        return whole_utterance(self.voice, text, options), self.voice.sample_rate


class InlineTokens:
    """A unit's tokens decoded in the calling thread, one AR step each time the consumer asks for more."""

    def __init__(self, voice: Voice, request: ARRequest, decoder: BatchDecoder) -> None:
        self.attention: list[np.ndarray | None] = []
        self._tokens = generate_semantic_tokens(voice.gpt, request.phone_ids[None], request.bert[None],
                                                request.prompt[None], request.options, decoder=decoder,
                                                generator=request.generator, cancel=request.cancel,
                                                align_text=request.align_text, attention=self.attention)

    def tokens(self) -> Iterator[int]:
        return self._tokens

    def decoding(self) -> AbstractContextManager[None]:
        return nullcontext()  # the steps are made here, between decodes

    def close(self) -> None:
        self._tokens.close()


def unit_request(voice: Voice, phonemes: Phonemes, decode: DecodeOptions, generator: torch.Generator | None,
                 cancel: CancelFlag | None = None, align: bool = False) -> ARRequest:
    """The AR inputs of one unit: the reference's phones and BERT, then the unit's; the reference's codes.
    `align`: record each token's attention over the unit's phones (word timing)."""
    target_bert = phone_level_bert(voice.bert, phonemes).to(voice.engine_device)
    n_reference = len(voice.ref_phonemes.phone_ids)
    phone_ids = torch.tensor(voice.ref_phonemes.phone_ids + phonemes.phone_ids, device=voice.engine_device)
    bert = torch.cat([voice.ref_bert, target_bert], dim=1).to(voice.gpt.compute_dtype)
    align_text = (n_reference, n_reference + len(phonemes.phone_ids)) if align else None
    return ARRequest(phone_ids, bert, voice.prompt_codes[0], decode, generator, cancel, align_text=align_text)


def decode_options(options: SynthesisOptions, n_phones: int) -> DecodeOptions:
    """Stopping rules for one unit: a fixed length for benchmarks, else EOS within the token budget."""
    if options.fixed_tokens is not None:
        return DecodeOptions(options.sampling, max_tokens=options.fixed_tokens, suppress_eos=True)
    if options.fixed_tokens_per_phone is not None:
        count = max(options.min_tokens + 1, round(n_phones * options.fixed_tokens_per_phone))
        return DecodeOptions(options.sampling, max_tokens=count, suppress_eos=True)
    budget = max_tokens_for(n_phones, options.max_tokens_per_phone, MAX_TOKENS, options.min_tokens + 1)
    return DecodeOptions(options.sampling, max_tokens=budget, min_tokens=options.min_tokens)


def step_runner_for(voice: Voice) -> StepRunner:
    """How the voice's AR step runs: a CUDA graph for a torch voice on CUDA, else its GPT's own way."""
    if voice.backend == "torch" and voice.device.type == "cuda":
        from agent_tts.engine.cuda_graphs import CudaGraphStep

        return CudaGraphStep(voice.gpt)
    return default_step_runner(voice.gpt)


@dataclass
class StreamState:
    """What one stream keeps across its units: its random generators and, decoding inline, its decoder."""

    generator: torch.Generator
    noise_generator: torch.Generator
    voice: Voice
    _decoder: BatchDecoder | None = None

    @classmethod
    def new(cls, voice: Voice, options: SynthesisOptions) -> "StreamState":
        generator = torch.Generator(device=voice.engine_device)
        noise_generator = torch.Generator()
        if options.seed is not None:
            generator.manual_seed(options.seed)
            noise_generator.manual_seed(options.seed + 1)
        else:
            generator.seed()
            noise_generator.seed()
        return cls(generator, noise_generator, voice)

    @property
    def decoder(self) -> BatchDecoder:
        """A one-row decoder for this stream, made on first use and reused (with its cache) across units."""
        if self._decoder is None:
            self._decoder = BatchDecoder(self.voice.gpt, step_runner_for(self.voice))
        return self._decoder


def whole_utterance(voice: Voice, text: str, options: SynthesisOptions) -> np.ndarray:
    """The non-streaming path: for each unit, every token first, then one SoVITS decode."""
    state = StreamState.new(voice, options)
    pieces = []
    with torch.inference_mode():
        for unit in segment_text(text, options.segmenter):
            phonemes = voice.frontend(unit, options.language)
            if phonemes.is_silent:
                continue
            request = unit_request(voice, phonemes, decode_options(options, len(phonemes.phones)), state.generator)
            tokens = list(InlineTokens(voice, request, state.decoder).tokens())
            if not tokens:
                continue
            decoder = ChunkedDecoder(voice.sovits, torch.tensor([phonemes.phone_ids], device=voice.engine_device),
                                     voice.ge, speed=options.speed, noise_scale=options.noise_scale,
                                     generator=state.noise_generator)
            pieces.append(decoder.decode_all(tokens))
    release_idle_workers()  # the caller's OpenMP workers would slow other streams' steps (openmp_pool.py)
    return np.concatenate(pieces) if pieces else np.zeros(0, np.float32)

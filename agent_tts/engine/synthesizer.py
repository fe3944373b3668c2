"""The GPT-SoVITS streaming engine: text (or an LLM's token stream) in, audio chunks out while the rest is generated.

`Synthesizer(voice).stream(text_or_deltas, **options)` is an async generator
of `AudioChunk`s (the plumbing is `UnitStreamEngine`'s). For each unit the
worker thread runs the frontend and BERT, decodes semantic tokens one AR step
at a time against a preallocated KV cache, and hands tokens to a
`ChunkedDecoder` whose waveform chunks go to the consumer at once. Closing or
cancelling the stream stops the worker before its next AR step. On a CUDA
device each stream replays its AR step as a CUDA graph (`StreamState`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from agent_tts.engine.chunked_decoder import ChunkedDecoder, ChunkPlan
from agent_tts.engine.guards import is_looping, max_tokens_for
from agent_tts.engine.sampling import SamplingOptions
from agent_tts.engine.static_step import GraphedSteps
from agent_tts.engine.t2s_decoding import DecodeOptions, StepRunner, generate_semantic_tokens, positions_needed
from agent_tts.errors import OptionError
from agent_tts.engine.unit_stream import PAUSE_PHONES, AudioChunk, ChunkTimings, UnitOutput, UnitStreamEngine
from agent_tts.text.bert_features import phone_level_bert
from agent_tts.text.phonemes import Phonemes
from agent_tts.text.segmenter import SegmenterOptions, segment_text
from agent_tts.voice import Voice

logger = logging.getLogger(__name__)

__all__ = ["AudioChunk", "ChunkTimings", "SynthesisOptions", "Synthesizer", "decode_options", "whole_utterance"]

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
    # The most audio produced but not yet taken by the consumer; below it the bound follows the measured speed.
    max_buffered_seconds: float = 10.0
    # A torch voice on a CUDA device replays its AR step as a CUDA graph (engine/static_step.py).
    cuda_graphs: bool = True

    def __post_init__(self) -> None:
        SamplingOptions(self.top_k, self.top_p, self.temperature, self.repetition_penalty)
        if not 0.25 <= self.speed <= 4.0:
            raise OptionError(f"speed must be between 0.25 and 4, got {self.speed:g}")
        if self.noise_scale < 0:
            raise OptionError(f"noise_scale cannot be negative, got {self.noise_scale:g}")

    @property
    def sampling(self) -> SamplingOptions:
        return SamplingOptions(self.top_k, self.top_p, self.temperature, self.repetition_penalty)


class Synthesizer(UnitStreamEngine[SynthesisOptions]):
    """Streams speech in one GPT-SoVITS voice. Each stream has its own worker thread and KV cache."""

    def __init__(self, voice: Voice, options: SynthesisOptions | None = None) -> None:
        super().__init__(options or SynthesisOptions())
        self.voice = voice
        self.sample_rate = voice.sample_rate
        # Prefills and AR steps, and SoVITS window decodes, started while the stream's cancel flag was set.
        self.steps_after_cancel = 0
        self.decodes_after_cancel = 0

    def _new_stream_state(self, options: SynthesisOptions) -> StreamState:
        return StreamState.new(self.voice, options)

    def _prepare_unit(self, text: str, options: SynthesisOptions) -> tuple[Phonemes, int]:
        phonemes = self.voice.frontend(text, options.language)
        return phonemes, sum(1 for phone in phonemes.phones if phone not in PAUSE_PHONES)

    def _speak_unit(self, phonemes: Phonemes, output: UnitOutput, options: SynthesisOptions,
                    state: StreamState) -> bool:
        """Synthesize one unit, delivering its chunks; False when it had nothing to say."""
        voice = self.voice
        if phonemes.is_silent:
            return False
        with torch.inference_mode():
            bert_started = time.perf_counter()
            target_bert = phone_level_bert(voice.bert, phonemes).to(voice.device)
            bert_done = time.perf_counter()
            phone_ids = torch.tensor([voice.ref_phonemes.phone_ids + phonemes.phone_ids], device=voice.device)
            bert = torch.cat([voice.ref_bert, target_bert], dim=1)[None].to(voice.gpt.compute_dtype)
            decode = decode_options(options, len(phonemes.phones))
            decoder = ChunkedDecoder(voice.sovits, torch.tensor([phonemes.phone_ids], device=voice.device),
                                     voice.ge, plan=options.chunk_plan, speed=options.speed,
                                     noise_scale=options.noise_scale, generator=state.noise_generator,
                                     should_stop=output.cancel.is_set,
                                     on_decode_start=lambda: self._count_after_cancel(output, "decodes_after_cancel"))
            prefill_s = 0.0
            tokens: list[int] = []

            def send(pcm: np.ndarray, last: bool) -> None:
                ar_time = time.perf_counter() - bert_done - prefill_s - sum(decoder.decode_seconds)
                output.emit(pcm, last, bert_s=bert_done - bert_started, prefill_s=prefill_s, tokens=len(tokens),
                            ar_ms_per_token=1000 * ar_time / max(1, len(tokens)),
                            decode_ms=1000 * (decoder.decode_seconds[-1] if decoder.decode_seconds else 0.0))

            started = time.perf_counter()
            for token in generate_semantic_tokens(voice.gpt, phone_ids, bert, voice.prompt_codes, decode,
                                                  step_runner=state.step_runner(phone_ids, voice.prompt_codes, decode),
                                                  generator=state.generator, should_stop=output.cancel.is_set,
                                                  on_step_start=lambda: self._count_after_cancel(
                                                      output, "steps_after_cancel")):
                if not tokens:
                    prefill_s = time.perf_counter() - started
                tokens.append(token)
                for pcm in decoder.push(token):
                    send(pcm, last=False)
                    output.wait_for_room()
                if options.stop_on_loop and not decode.suppress_eos and is_looping(tokens):
                    logger.warning("unit %d: the GPT repeats itself; stopping the unit at %d tokens",
                                   output.unit_index, len(tokens))
                    break
            output.check_cancelled()
            if not tokens:
                return False
            send(decoder.finish(), last=True)
        return True

    def _count_after_cancel(self, output: UnitOutput, counter: str) -> None:
        if output.cancel.is_set():
            setattr(self, counter, getattr(self, counter) + 1)

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


@dataclass
class StreamState:
    """What one stream keeps across its units: its random generators and, on CUDA, its captured AR step."""

    generator: torch.Generator
    noise_generator: torch.Generator
    graphed_steps: GraphedSteps | None

    @classmethod
    def new(cls, voice: Voice, options: SynthesisOptions) -> "StreamState":
        generator = torch.Generator(device=voice.device)
        noise_generator = torch.Generator()
        if options.seed is not None:
            generator.manual_seed(options.seed)
            noise_generator.manual_seed(options.seed + 1)
        else:
            generator.seed()
            noise_generator.seed()
        graphed = options.cuda_graphs and voice.backend == "torch" and voice.device.type == "cuda"
        return cls(generator, noise_generator, GraphedSteps(voice.gpt) if graphed else None)

    def step_runner(self, phone_ids: torch.Tensor, prompt: torch.Tensor, decode: DecodeOptions) -> StepRunner | None:
        if self.graphed_steps is None:
            return None
        return self.graphed_steps.for_positions(positions_needed(phone_ids, prompt, decode))


def whole_utterance(voice: Voice, text: str, options: SynthesisOptions) -> np.ndarray:
    """The non-streaming path: for each unit, every token first, then one SoVITS decode."""
    state = StreamState.new(voice, options)
    pieces = []
    with torch.inference_mode():
        for unit in segment_text(text, options.segmenter):
            phonemes = voice.frontend(unit, options.language)
            if phonemes.is_silent:
                continue
            target_bert = phone_level_bert(voice.bert, phonemes).to(voice.device)
            phone_ids = torch.tensor([voice.ref_phonemes.phone_ids + phonemes.phone_ids], device=voice.device)
            bert = torch.cat([voice.ref_bert, target_bert], dim=1)[None].to(voice.gpt.compute_dtype)
            decode = decode_options(options, len(phonemes.phones))
            tokens = list(generate_semantic_tokens(voice.gpt, phone_ids, bert, voice.prompt_codes, decode,
                                                   step_runner=state.step_runner(phone_ids, voice.prompt_codes, decode),
                                                   generator=state.generator))
            if not tokens:
                continue
            decoder = ChunkedDecoder(voice.sovits, torch.tensor([phonemes.phone_ids], device=voice.device), voice.ge,
                                     speed=options.speed, noise_scale=options.noise_scale,
                                     generator=state.noise_generator)
            pieces.append(decoder.decode_all(tokens))
    return np.concatenate(pieces) if pieces else np.zeros(0, np.float32)

"""Chunk-wise SoVITS decoding of a growing token sequence, with joins that do not click.

A unit's first chunk is small, so its first sound comes early; each later
chunk is `growth` times the one before, up to `max_tokens`. While the
real-time factor is well under 1, a chunk twice the size of the last is ready
before the audio already handed out has played; and long chunks re-decode
less left context per second of audio.

Each chunk is decoded over a window that starts `left_context` tokens before
the new audio and ends at the newest token. The last `holdback` tokens of a
window are not emitted yet, because their audio still changes once tokens to
their right exist; the next window re-decodes them. Where two windows meet,
`crossfade` samples of the old tail and the new head are blended with
equal-power curves. Noise (noise_scale > 0) is drawn once per latent frame of
the utterance, so overlapping windows add the same noise.

A decoder with a `window_granule` above 1 (OpenVINO's, which compiles its
kernels anew for every input length it has not seen: 0.7-1 s in bf16) gets
windows whose length is a multiple of it, by taking more left context, so
that few lengths occur; a window that begins at the unit's first token keeps
its length. `window_lengths` lists the lengths a chunk plan then gives.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import numpy as np
import torch

from agent_tts.errors import OptionError
from agent_tts.models.sovits import SoVITSModel

FRAMES_PER_TOKEN = 2


@dataclass(frozen=True)
class ChunkPlan:
    """Chunk sizes in semantic tokens (25 per second of audio)."""

    first_tokens: int = 10        # the first chunk: 0.4 s of audio, so first sound comes early
    growth: float = 2.0           # each later chunk this many times the one before ...
    max_tokens: int = 100         # ... up to this many (4 s)
    left_context: int = 25        # tokens re-decoded before each chunk for continuity
    holdback: int = 3             # newest tokens held until right context exists
    crossfade_samples: int = 640  # 20 ms at 32 kHz

    def __post_init__(self) -> None:
        if self.first_tokens < 1:
            raise OptionError("chunk sizes must be at least one token")
        if self.max_tokens < self.first_tokens:
            raise OptionError(f"max_tokens ({self.max_tokens}) cannot be less than first_tokens ({self.first_tokens})")
        if self.growth < 1:
            raise OptionError(f"growth must be at least 1, got {self.growth}")
        if self.left_context < 0 or self.holdback < 0 or self.crossfade_samples < 0:
            raise OptionError("left_context, holdback and crossfade_samples cannot be negative")

    def chunk_tokens(self, index: int) -> int:
        """The size of a unit's chunk number `index` (0 is the first)."""
        size = float(self.first_tokens)
        for _ in range(index):
            if size >= self.max_tokens:
                break
            size *= self.growth
        return min(self.max_tokens, math.ceil(size))


def _round_up(value: int, granule: int) -> int:
    return -(-value // granule) * granule


def window_start(emitted: int, end: int, plan: ChunkPlan, granule: int) -> int:
    """Where the window ending at token `end` begins, `emitted` tokens having been emitted: `left_context`
    before them, or, for a decoder of `window_granule` `granule` > 1, further back to a multiple of it."""
    start = max(0, emitted - plan.left_context)
    return max(0, end - _round_up(end - start, granule)) if granule > 1 else start


def window_lengths(plan: ChunkPlan, granule: int) -> list[int]:
    """The window lengths `ChunkedDecoder` decodes with `plan` for a decoder of `window_granule` `granule` (see
    there), for units long enough to fill them; shorter units add their own lengths. Empty for granule 1."""
    if granule <= 1:
        return []
    lengths: set[int] = set()
    emitted, index = 0, 0
    while True:  # the windows of a long unit's chunks, until their lengths repeat
        wanted = plan.chunk_tokens(index)
        end = emitted + wanted + plan.holdback
        lengths.add(end - window_start(emitted, end, plan, granule))
        if wanted == plan.max_tokens and emitted >= plan.left_context:
            break
        emitted += wanted
        index += 1
    longest = _round_up(plan.left_context + plan.max_tokens + plan.holdback, granule)
    lengths.update(range(granule, longest + 1, granule))
    return sorted(lengths)


class ChunkedDecoder:
    """Turns semantic tokens, pushed as the GPT makes them, into waveform chunks (float32 numpy)."""

    def __init__(self, sovits: SoVITSModel, phone_ids: torch.Tensor, ge: torch.Tensor, *,
                 plan: ChunkPlan = ChunkPlan(), speed: float = 1.0, noise_scale: float = 0.0,
                 generator: torch.Generator | None = None, may_decode: Callable[[], bool] | None = None,
                 around_decode: Callable[[], AbstractContextManager[object]] = nullcontext) -> None:
        self.sovits = sovits
        self.phone_ids = phone_ids
        self.ge = ge
        self.plan = plan
        self.speed = speed
        self.noise_scale = noise_scale
        self.generator = generator
        # Asked immediately before every window decode; False (the stream was cancelled) stops decoding for good.
        self.may_decode = may_decode or (lambda: True)
        # Entered around every window decode (the AR scheduler may wait meanwhile: `ScheduledUnit.decoding`).
        self.around_decode = around_decode
        self.stopped = False
        self.tokens: list[int] = []
        self.emitted_tokens = 0
        self._tail: np.ndarray | None = None
        self._noise: torch.Tensor | None = None
        self.chunks_decoded = 0
        self.decode_seconds: list[float] = []  # wall time of each window decode
        self.chunk_token_ends: list[int] = []  # for each chunk returned, the tokens emitted through it
        fade = np.linspace(0.0, 1.0, plan.crossfade_samples, dtype=np.float32) * (math.pi / 2)
        self._fade_in, self._fade_out = np.sin(fade) ** 2, np.cos(fade) ** 2

    @property
    def samples_per_token(self) -> float:
        return FRAMES_PER_TOKEN * self.sovits.config.samples_per_frame / self.speed

    def push(self, tokens: list[int] | int) -> list[np.ndarray]:
        """Add new tokens; return the chunks that became ready (often none)."""
        self.tokens.extend([tokens] if isinstance(tokens, int) else tokens)
        ready = []
        while True:
            wanted = self.plan.chunk_tokens(self.chunks_decoded)
            if len(self.tokens) - self.plan.holdback - self.emitted_tokens < wanted:
                return ready
            body = self._decode(self.emitted_tokens + wanted, final=False)
            if body is None:
                return ready
            ready.append(body)

    def finish(self) -> np.ndarray:
        """Everything not emitted yet, including the held-back tail (nothing once stopped)."""
        if len(self.tokens) <= self.emitted_tokens:
            tail, self._tail = self._tail, None
            return tail if tail is not None and not self.stopped else np.zeros(0, np.float32)
        body = self._decode(len(self.tokens), final=True)
        return np.zeros(0, np.float32) if body is None else body

    def decode_all(self, tokens: list[int]) -> np.ndarray:
        """The whole utterance in one window (the non-streaming path), with the same noise as streaming."""
        self.tokens = list(tokens)
        self.emitted_tokens = 0
        self._tail = None
        return self._decode(len(self.tokens), final=True)

    def _frame_noise(self, frames: int) -> torch.Tensor | None:
        if not self.noise_scale:
            return None
        channels = self.sovits.config.inter_channels
        have = 0 if self._noise is None else self._noise.shape[-1]
        if frames > have:
            # Drawn frame by frame ([frames, channels]), so drawing in pieces gives the same noise as at once.
            more = torch.randn(frames - have, channels, generator=self.generator).T[None]
            self._noise = more if self._noise is None else torch.cat([self._noise, more], dim=-1)
        return self._noise

    @torch.inference_mode()
    def _decode(self, emit_until: int, final: bool) -> np.ndarray | None:
        if self.stopped or not self.may_decode():
            self.stopped = True
            return None
        granule = getattr(self.sovits, "window_granule", 1)
        start = window_start(self.emitted_tokens, len(self.tokens), self.plan, granule)
        window = self.tokens[start:]
        codes = torch.tensor(window, dtype=torch.long, device=self.phone_ids.device)[None, None]
        noise = None
        if self.noise_scale:
            first_frame = int(start * FRAMES_PER_TOKEN / self.speed)
            all_noise = self._frame_noise(first_frame + int(len(window) * FRAMES_PER_TOKEN / self.speed) + 2)
            noise = all_noise[..., first_frame:].to(self.phone_ids.device)
        with self.around_decode():
            started = time.perf_counter()
            wav = self.sovits.decode(codes, self.phone_ids, self.ge, noise_scale=self.noise_scale, speed=self.speed,
                                     noise=noise)[0, 0].float().cpu().numpy()
            self.decode_seconds.append(time.perf_counter() - started)
        self.chunks_decoded += 1
        per_token = len(wav) / len(window)
        begin = round((self.emitted_tokens - start) * per_token)
        end = len(wav) if final else round((emit_until - start) * per_token)
        fade = len(self._fade_in)
        body = wav[begin:end].copy()
        if self._tail is not None and fade:
            n = min(fade, len(body), len(self._tail))
            body[:n] = self._tail[:n] * self._fade_out[:n] + body[:n] * self._fade_in[:n]
        self._tail = None if final else wav[end: end + fade].copy()
        if not final and len(self._tail) < fade:
            # Not enough held-back audio to fade with: emit it as it is next time instead.
            self._tail = None
        self.emitted_tokens = len(self.tokens) if final else emit_until
        self.chunk_token_ends.append(self.emitted_tokens)
        return body

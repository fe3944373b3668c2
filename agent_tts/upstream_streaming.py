"""Upstream's fixed-length-chunk streaming mode, reproduced on our SoVITS model so parity can check it.

``TTS.run(streaming_mode=True, fixed_length_chunk=True)`` hands SoVITS the
tokens generated so far every ``min_chunk_length`` tokens and calls
``decode_streaming``: the text encoder runs over every token so far, its
output is cut to the newest ``result_length`` tokens (the new ones plus an
overlap), whose first frames are blended with the previous call's last
frames on a sine ramp, and only that window goes through the flow and the
generator. The chunks are then joined by SOLA (the best-correlated offset
within 320 samples, then a Hann crossfade over the overlap), except the
last one, which upstream appends as it is, and written as int16. This module is the reference protocol, not agent-tts's streaming
engine (that is ``engine/chunked_decoder.py``); parity compares the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from agent_tts.models.sovits import SoVITSModel

SOLA_SEARCH_SAMPLES = 320
INT16_SCALE = 32768


@dataclass(frozen=True)
class StreamCall:
    """One ``decode_streaming`` call: tokens decoded so far and the window kept (None for the first call)."""

    tokens_in: int
    result_tokens: int | None
    overlap_frames: int | None


def decode_streaming_call(sovits: SoVITSModel, tokens: torch.Tensor, phone_ids: torch.Tensor, ge: torch.Tensor,
                          call: StreamCall, previous_hidden: torch.Tensor | None
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """One call at speed 1 without noise: (waveform [samples], the kept hidden window for the next call's blend)."""
    hidden = sovits.content(tokens[: call.tokens_in][None, None], phone_ids, ge)
    if call.result_tokens is not None:
        hidden = hidden[..., -2 * call.result_tokens:]
    if call.overlap_frames and previous_hidden is not None:
        frames = call.overlap_frames
        ramp = torch.sin(torch.arange(2 * frames, device=hidden.device) * math.pi / (2 * frames)).to(hidden)
        hidden = hidden.clone()
        hidden[..., :frames] = ramp[:frames] * hidden[..., :frames] + ramp[frames:] * previous_hidden[..., -frames:]
    return sovits.waveform(hidden, ge)[0, 0], hidden


def sola_join(previous: np.ndarray, current: np.ndarray, overlap: int,
              search: int = SOLA_SEARCH_SAMPLES) -> np.ndarray:
    """``previous`` minus its overlap, then ``current`` from its best-matching offset, crossfaded over ``overlap``."""
    head = torch.from_numpy(current[: overlap + search]).view(1, 1, -1)
    tail = torch.from_numpy(previous[-overlap:]).view(1, 1, -1)
    correlation = F.conv1d(head, tail).view(-1)
    energy = F.conv1d(head ** 2, torch.ones_like(tail)).view(-1) + 1e-8
    offset = int((correlation / energy.sqrt()).argmax())
    shifted = current[offset:].copy()
    window = torch.hann_window(2 * overlap, dtype=torch.float32).numpy()
    shifted[:overlap] = window[:overlap] * shifted[:overlap] + window[overlap:] * previous[-overlap:]
    return np.concatenate([previous[:-overlap], shifted])


def to_int16(audio: np.ndarray) -> np.ndarray:
    """Upstream's output conversion: divided by its peak when above 1, times 32768, truncated to int16."""
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak > 1:
        audio = audio / peak
    return (audio * INT16_SCALE).astype(np.int16)


def fixed_chunk_stream(call_audio: list[np.ndarray], calls: list[StreamCall], overlap_tokens: int,
                       samples_per_token: int) -> list[np.ndarray]:
    """The float chunks ``TTS.run`` yields from the calls' raw outputs (before int16 and the closing silence)."""
    overlap = math.ceil(overlap_tokens * samples_per_token)
    chunks, last = [], None
    for index, (audio, call) in enumerate(zip(call_audio, calls)):
        final = index == len(calls) - 1
        new_tokens = call.tokens_in - (calls[index - 1].tokens_in if index else 0)
        if call.overlap_frames and call.overlap_frames // 2 > overlap_tokens:
            audio = audio[-int((overlap_tokens + new_tokens) * samples_per_token):]
        if final:
            chunk = audio  # upstream joins no final chunk: it follows the previous one's held-back tail as it is
        elif last is None:
            chunk = audio[:-overlap]
        else:
            chunk = sola_join(last, audio, overlap)[len(last) - overlap:-overlap]
        chunks.append(chunk)
        last = audio
    return chunks

"""Audio chunks to bytes as they are produced: one encoder per stream, one module per kind of output.

An `AudioEncoder` takes float32 mono PCM at the stream's rate chunk by chunk
and gives back the bytes to send now (possibly none yet); `finish()` gives
the rest. `encoder_for` builds one for a kind of output, resampling first
when the output rate differs from the voice's.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

KINDS = ("mp3", "opus", "aac", "flac", "wav", "pcm")


class AudioEncoder(Protocol):
    """Streams one audio stream as bytes of one format."""

    def encode(self, pcm: np.ndarray) -> bytes:
        """Bytes for this chunk of float32 mono PCM (an encoder may hold some back until later chunks)."""

    def finish(self) -> bytes:
        """The bytes still held back; the encoder is done after this."""


def encoder_for(kind: str, input_rate: int, output_rate: int | None = None, *, streamed: bool = True) -> AudioEncoder:
    """An encoder of `kind` (see `KINDS`) for PCM at `input_rate`, writing `output_rate` (default: the same).

    `streamed` matters for WAV only: a streamed WAV header cannot know the length and says 0xFFFFFFFF.
    """
    from agent_tts.server.encoding.containers import ContainerEncoder
    from agent_tts.server.encoding.pcm import Pcm16Encoder
    from agent_tts.server.encoding.resample import ResamplingEncoder
    from agent_tts.server.encoding.wav import StreamedWavEncoder, WholeWavEncoder

    rate = output_rate or input_rate
    if kind == "pcm":
        encoder: AudioEncoder = Pcm16Encoder()
    elif kind == "wav":
        encoder = StreamedWavEncoder(rate) if streamed else WholeWavEncoder(rate)
    elif kind in KINDS:
        encoder = ContainerEncoder(kind, rate)
    else:
        raise ValueError(f"unknown audio kind {kind!r} (one of {', '.join(KINDS)})")
    return encoder if rate == input_rate else ResamplingEncoder(encoder, input_rate, rate)

"""Raw PCM: 16-bit signed little-endian mono, the samples as they come."""

from __future__ import annotations

import numpy as np


def pcm16_bytes(pcm: np.ndarray) -> bytes:
    """float32 samples in [-1, 1] (clipped) as 16-bit little-endian integers."""
    return (np.clip(pcm, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


class Pcm16Encoder:
    """Headerless 16-bit little-endian mono PCM."""

    def encode(self, pcm: np.ndarray) -> bytes:
        return pcm16_bytes(pcm)

    def finish(self) -> bytes:
        return b""

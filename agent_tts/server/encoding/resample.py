"""Change the sample rate of a stream on its way to another encoder (soxr, chunk by chunk, no seams)."""

from __future__ import annotations

import numpy as np
import soxr

from agent_tts.server.encoding import AudioEncoder


class ResamplingEncoder:
    """Resamples each chunk from `input_rate` to `output_rate`, then hands it to `encoder`."""

    def __init__(self, encoder: AudioEncoder, input_rate: int, output_rate: int) -> None:
        self.encoder = encoder
        self._resampler = soxr.ResampleStream(input_rate, output_rate, 1, dtype="float32", quality="HQ")

    def encode(self, pcm: np.ndarray) -> bytes:
        return self.encoder.encode(self._resampler.resample_chunk(np.asarray(pcm, np.float32)))

    def finish(self) -> bytes:
        tail = self._resampler.resample_chunk(np.zeros(0, np.float32), last=True)
        return (self.encoder.encode(tail) if len(tail) else b"") + self.encoder.finish()

"""WAV: 16-bit mono PCM after a 44-byte RIFF header.

A streamed WAV is sent before its length is known; its RIFF and data sizes
are 0xFFFFFFFF ("until the end of the stream"), which Python's `wave`,
libsndfile (`soundfile`), ffmpeg and browsers read to the end of the data.
(A size of 0, as upstream api_v2 streams it, makes `wave` and `soundfile` read
0 frames.) A whole WAV carries its real sizes.
"""

from __future__ import annotations

import struct

import numpy as np

from agent_tts.server.encoding.pcm import pcm16_bytes

UNKNOWN_SIZE = 0xFFFFFFFF


def wav_header(sample_rate: int, data_bytes: int | None) -> bytes:
    """The header of a 16-bit mono WAV with `data_bytes` of samples (None: a stream of unknown length)."""
    riff_size = UNKNOWN_SIZE if data_bytes is None else 36 + data_bytes
    data_size = UNKNOWN_SIZE if data_bytes is None else data_bytes
    return (b"RIFF" + struct.pack("<I", riff_size) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, 2 * sample_rate, 2, 16)
            + b"data" + struct.pack("<I", data_size))


class StreamedWavEncoder:
    """A WAV sent as it is made: the header with unknown sizes first, then the samples."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._header_sent = False

    def encode(self, pcm: np.ndarray) -> bytes:
        header = b"" if self._header_sent else wav_header(self.sample_rate, None)
        self._header_sent = True
        return header + pcm16_bytes(pcm)

    def finish(self) -> bytes:
        return b"" if self._header_sent else wav_header(self.sample_rate, None)


class WholeWavEncoder:
    """A WAV with its real sizes: everything is held until `finish()`."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._samples: list[bytes] = []

    def encode(self, pcm: np.ndarray) -> bytes:
        self._samples.append(pcm16_bytes(pcm))
        return b""

    def finish(self) -> bytes:
        data = b"".join(self._samples)
        return wav_header(self.sample_rate, len(data)) + data

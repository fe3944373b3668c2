"""Compressed audio through PyAV (FFmpeg's encoders and muxers, bundled in the `av` wheel), written as it is made.

mp3 (LAME, raw MPEG frames), opus (Opus in Ogg, a page per 20 ms so pages
leave at once), aac (AAC-LC in ADTS frames), flac (native FLAC). The muxer
writes into a sink that cannot seek, so nothing is rewritten at the end: the
FLAC header leaves its total length unknown, which decoders accept.
"""

from __future__ import annotations

import av
import numpy as np

# kind: (muxer, encoder, bit rate, muxer options)
CODECS: dict[str, tuple[str, str, int | None, dict[str, str]]] = {
    "mp3": ("mp3", "libmp3lame", 64_000, {}),
    "opus": ("ogg", "libopus", 32_000, {"page_duration": "20000"}),
    "aac": ("adts", "aac", 64_000, {}),
    "flac": ("flac", "flac", None, {}),
}
OPUS_RATES = (48000, 24000, 16000, 12000, 8000)


class _Sink:
    """A write-only, unseekable file for the muxer; `take()` empties it."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def write(self, data: bytes) -> int:
        self._buffer += data
        return len(data)

    def seekable(self) -> bool:
        return False

    def take(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


class ContainerEncoder:
    """Encodes float32 mono PCM at `sample_rate` into `kind` (mp3, opus, aac or flac), chunk by chunk."""

    def __init__(self, kind: str, sample_rate: int) -> None:
        muxer, codec, bit_rate, options = CODECS[kind]
        if kind == "opus" and sample_rate not in OPUS_RATES:
            raise ValueError(f"Opus runs at {', '.join(map(str, OPUS_RATES))} Hz, not {sample_rate}: resample first")
        self.sample_rate = sample_rate
        self._sink = _Sink()
        self._container = av.open(self._sink, "w", format=muxer, options=options)
        self._stream = self._container.add_stream(codec, rate=sample_rate, layout="mono")
        if bit_rate is not None:
            self._stream.bit_rate = bit_rate

    def encode(self, pcm: np.ndarray) -> bytes:
        if len(pcm):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm, np.float32)[None], format="flt",
                                               layout="mono")
            frame.sample_rate = self.sample_rate
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        return self._sink.take()

    def finish(self) -> bytes:
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        return self._sink.take()

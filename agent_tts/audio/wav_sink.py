"""A stand-in for the sound device when there is none: turns are written to a WAV file as they arrive."""

from __future__ import annotations

import time
from collections.abc import AsyncIterable
from pathlib import Path

import numpy as np
import soundfile

from agent_tts.audio.player import PlaybackStats
from agent_tts.engine.unit_stream import AudioChunk


class WavSink:
    """Same `play(chunks)` as `Player`, writing 16-bit PCM at `sample_rate`; `gap_seconds` of silence between turns."""

    def __init__(self, path: str | Path, sample_rate: int, gap_seconds: float = 0.5) -> None:
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.gap_seconds = gap_seconds
        self._file = soundfile.SoundFile(self.path, "w", samplerate=sample_rate, channels=1, subtype="PCM_16")
        self._turns = 0

    async def play(self, chunks: AsyncIterable[AudioChunk]) -> PlaybackStats:
        stats = PlaybackStats(started=time.perf_counter())
        if self._turns:
            self._file.write(np.zeros(int(self.gap_seconds * self.sample_rate), np.float32))
        self._turns += 1
        async for chunk in chunks:
            if chunk.sample_rate != self.sample_rate:
                import soxr
                pcm = soxr.resample(chunk.pcm, chunk.sample_rate, self.sample_rate)
            else:
                pcm = chunk.pcm
            if stats.first_audio is None:
                stats.first_audio = time.perf_counter()
            self._file.write(np.clip(pcm, -1.0, 1.0))
            stats.played_seconds += len(pcm) / self.sample_rate
        self._file.flush()
        return stats

    def stop(self) -> None:
        """Nothing is queued in a file: a stop only matters to a real device."""

    def close(self) -> None:
        self._file.close()

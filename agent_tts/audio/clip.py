"""Reading audio files into float32 mono at a chosen sample rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from agent_tts.errors import ReferenceAudioError


def read_clip(path: str | Path) -> tuple[np.ndarray, int]:
    """Read ``path`` as float32 mono in [-1, 1] (channels averaged) at its own rate: (samples, rate)."""
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise ReferenceAudioError(f"{path}: no such audio file")
    try:
        audio, source_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises its own LibsndfileError and RuntimeError
        raise ReferenceAudioError(f"{path}: not a readable audio file ({exc})") from exc
    audio = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    return np.ascontiguousarray(audio, dtype=np.float32), int(source_rate)


def load_clip(path: str | Path, sample_rate: int) -> np.ndarray:
    """Read ``path`` as float32 mono in [-1, 1] at ``sample_rate`` (soxr high quality resampling).

    Matches ``librosa.load(path, sr=sample_rate)``, which the reference uses.
    """
    import soxr

    audio, source_rate = read_clip(path)
    if source_rate != sample_rate:
        expected = int(np.ceil(len(audio) * sample_rate / source_rate))
        audio = soxr.resample(audio, source_rate, sample_rate, quality="soxr_hq")
        audio = _fix_length(audio, expected)
    return np.ascontiguousarray(audio, dtype=np.float32)


def _fix_length(audio: np.ndarray, length: int) -> np.ndarray:
    if len(audio) >= length:
        return audio[:length]
    return np.pad(audio, (0, length - len(audio)))

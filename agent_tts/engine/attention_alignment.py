"""Word timing for GPT-SoVITS: a monotonic alignment of a unit's semantic tokens to its phones, from the GPT's
attention, decided chunk by chunk as the tokens come.

Each token comes with the attention of the query that produced it over the
unit's own phones (the model's `TextAttentionProbe`: the softmax over those
keys, averaged over the probed layers and all heads). `MonotonicAligner`
finds the best path through the phones that only moves forward, by at most
`max_advance` phones a token (a Viterbi pass over the log attention), starting
at the first phone. When a chunk is emitted the path is fixed up to the
chunk's last token, so words already handed out never move; the next pass
starts from where it was fixed. The last chunk's pass must end at one of the
last phones. A word begins at the first token whose phone is at or past the
word's first phone; a token is `samples_per_token` of audio.

Without attention (the ONNX Runtime GPT has no probe) each token gets a guess
instead: a bell around the phone a steady rate of `TOKENS_PER_PHONE` would
have reached, so words are placed at an average speaking rate and the last
chunk still ends at the last phone.

Limits: the attention is a by-product of training, not a trained aligner; it
lags or smears where the GPT hesitates, drawls or skips (and random weights,
as in the tests, give no alignment at all, only a valid one). A token lasts
40 ms (at speed 1), so times are at best to the token; the audio of a token
is also shaped by its neighbours through SoVITS.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from agent_tts.text.word_map import UnitWord

TOKENS_PER_PHONE = 2.3  # about 11 phones a second at 25 tokens a second: the rate assumed without attention
FALLBACK_SPREAD = 1.5   # phones: the width of the guessed bell
EPSILON = 1e-6
SKIP_PENALTY = 2.0      # log-probability cost of each phone skipped in one token


class MonotonicAligner:
    """The phone of each token of one unit, decided as tokens arrive (see the module docstring)."""

    def __init__(self, n_phones: int, max_advance: int = 2) -> None:
        self.n_phones = max(1, n_phones)
        self.max_advance = max_advance
        self._emissions: list[np.ndarray] = []
        self.phones: list[int] = []  # the decided phone of each token so far

    def add(self, attention: np.ndarray | None) -> None:
        """The next token's attention over the unit's phones (None: no attention, a guess is used)."""
        index = len(self._emissions)
        if attention is None or attention.shape[0] != self.n_phones or not np.isfinite(attention).all() \
                or attention.sum() <= 0:
            centre = index / TOKENS_PER_PHONE
            attention = np.exp(-0.5 * ((np.arange(self.n_phones) - centre) / FALLBACK_SPREAD) ** 2)
        weights = np.asarray(attention, dtype=np.float64)
        self._emissions.append(np.log(weights / weights.sum() + EPSILON))

    @property
    def tokens(self) -> int:
        return len(self._emissions)

    def decide(self, through: int, final: bool = False) -> None:
        """Fix the phones of the tokens up to `through` (all of them when `final`) from the best path over every
        token seen so far."""
        start = len(self.phones)
        end = self.tokens
        through = end if final else min(through, end)
        if through <= start:
            return
        path = self._best_path(start, end, final)
        self.phones.extend(path[: through - start])

    def _best_path(self, start: int, end: int, final: bool) -> list[int]:
        n = self.n_phones
        advance = np.arange(self.max_advance + 1)
        penalty = np.where(advance > 1, -SKIP_PENALTY * (advance - 1), 0.0)
        score = np.full(n, -np.inf)
        if start == 0:
            score[0] = self._emissions[0][0]
        else:
            previous = self.phones[-1]
            reach = np.full(n, -np.inf)
            for step, cost in zip(advance, penalty):
                if previous + step < n:
                    reach[previous + step] = cost
            score = reach + self._emissions[start]
        back = np.zeros((end - start, n), dtype=np.int64)
        for t in range(start + 1, end):
            best = np.full(n, -np.inf)
            choice = np.zeros(n, dtype=np.int64)
            for step, cost in zip(advance, penalty):
                shifted = np.full(n, -np.inf)
                shifted[step:] = score[: n - step] + cost
                better = shifted > best
                best = np.where(better, shifted, best)
                choice = np.where(better, np.arange(n) - step, choice)
            back[t - start] = choice
            score = best + self._emissions[t]
        if final:
            tail = np.full(n, -np.inf)
            tail[max(0, n - 1 - self.max_advance):] = score[max(0, n - 1 - self.max_advance):]
            if np.isfinite(tail).any():
                score = tail
        state = int(np.argmax(score))
        path = [state]
        for t in range(end - 1, start, -1):
            state = int(back[t - start, state])
            path.append(state)
        return path[::-1]


class WordClock:
    """A unit's words and the tokens they begin at, chunk by chunk: `chunk_words` hands each word out once, with
    the chunk its first token falls in."""

    def __init__(self, words: Sequence[UnitWord], n_phones: int) -> None:
        self.words = list(words)
        self.aligner = MonotonicAligner(n_phones)
        self._next_word = 0
        self._handed_to = 0  # tokens of the chunks handed out so far

    def add(self, attention: np.ndarray | None) -> None:
        self.aligner.add(attention)

    def chunk_words(self, token_end: int, final: bool) -> list[tuple[UnitWord, int]]:
        """The words that begin in the chunk of tokens up to `token_end` (the last chunk: all that are left),
        each with its first token."""
        aligner = self.aligner
        aligner.decide(token_end, final)
        phones = aligner.phones
        chunk_start = self._handed_to
        self._handed_to = max(self._handed_to, token_end if not final else len(phones))
        out: list[tuple[UnitWord, int]] = []
        token = chunk_start
        while self._next_word < len(self.words):
            word = self.words[self._next_word]
            while token < len(phones) and phones[token] < word.first_phone:
                token += 1
            if token >= len(phones) or token >= self._handed_to:
                break
            out.append((word, token))
            self._next_word += 1
        if final and self._next_word < len(self.words):  # the path never reached them: spread over the rest
            left = self.words[self._next_word:]
            first = max(chunk_start, out[-1][1] if out else chunk_start)
            span = max(0, len(phones) - first)
            out.extend((word, first + (k + 1) * span // (len(left) + 1)) for k, word in enumerate(left))
            self._next_word = len(self.words)
        return out

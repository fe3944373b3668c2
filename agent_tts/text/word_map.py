"""Which words of a unit's text the engine speaks, and where each begins among the phones it speaks.

An engine speaks normalised text ("Dr." is read "Doctor", "$5" "five
dollars", "2024年" "二零二四年"), but word timing is reported in the words of
the text it was given, so a framework can match them against what the LLM
wrote. `unit_words(text, spoken)` maps the two: the unit's text is cut into
words (runs of non-space characters; each CJK character is a word of its own;
marks touching a word belong to it; a run without a letter or digit on its
own, such as an emoji, is no word), the spoken words (each with the index of its first phone) are
aligned to them by a minimum-edit alignment on their letters and digits, and
every written word gets the first phone of the spoken word it stands for.
A written word with no spoken counterpart of its own ("$5" against "five
dollars", "#42" against "number forty-two") takes the first of its share of
the spoken words of the gap between its neighbours; one with nothing spoken
in its gap (markup the frontend drops) is not timed. Each word keeps its span of the text, up to the
next word, so the spans of a unit's words cover the whole text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agent_tts.text.segmenter import is_cjk

_RUN = re.compile(r"\S+")


@dataclass(frozen=True)
class UnitWord:
    """A word of a unit's text that is spoken: as written, where it lies in the text, and its first phone."""

    text: str
    """The word as written, with the punctuation attached to it ("Monday," or "好，")."""
    span_start: int
    """Where the word begins in the unit's text (0 for the unit's first word, so text before it is covered)."""
    span_end: int
    """Where the next word begins (the end of the text for the last one): [span_start, span_end) holds the word
    and the spaces and unspoken marks after it, so the spans of a unit's words cover its whole text."""
    first_phone: int
    """The index of its first phone among the phones the engine speaks for the unit."""


def key(text: str) -> str:
    """What two spellings of a word are compared by: its letters and digits, lower-cased, accents removed."""
    stripped = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    return "".join(ch for ch in stripped.lower() if ch.isalnum())


def written_words(text: str) -> list[tuple[int, int]]:
    """(start, end) of each word of `text`: non-space runs, CJK characters one by one. Marks without a letter or
    digit join the word they touch ("好，", "(Leeds)"); others (an emoji on its own) belong to no word."""
    pieces: list[tuple[int, int]] = []
    for run in _RUN.finditer(text):
        start = run.start()
        for index in range(run.start(), run.end()):
            if is_cjk(text[index]):
                if index > start:
                    pieces.append((start, index))
                pieces.append((index, index + 1))
                start = index + 1
        if start < run.end():
            pieces.append((start, run.end()))
    words: list[tuple[int, int]] = []
    leading: int | None = None
    for start, end in pieces:
        if key(text[start:end]):
            words.append((leading if leading is not None else start, end))
            leading = None
        elif words and words[-1][1] == start:
            words[-1] = (words[-1][0], end)
        elif not words and (leading is None and (end == len(text) or not text[end].isspace())):
            leading = start  # an opening mark touching the first word
    return words


def _spread_cjk(spoken: Sequence[tuple[str, int]], phone_count: int) -> list[tuple[str, int]]:
    """Spoken words with several CJK characters (a Japanese word) as one entry per character, the word's phones
    shared evenly between them."""
    out: list[tuple[str, int]] = []
    for index, (word, first) in enumerate(spoken):
        chars = [char for char in word if is_cjk(char)]
        if len(chars) <= 1 or len(chars) != len(key(word)):
            out.append((word, first))
            continue
        following = next((later for _, later in spoken[index + 1:] if later > first), phone_count)
        share = max(0, following - first) / len(chars)
        out.extend((char, first + int(k * share)) for k, char in enumerate(chars))
    return out


def _edit_pairs(written: list[str], spoken: list[str]) -> list[tuple[int | None, int | None]]:
    """A minimum-edit alignment: (written index or None, spoken index or None), in order; equal keys match."""
    rows, cols = len(written) + 1, len(spoken) + 1
    cost = [[0] * cols for _ in range(rows)]
    for i in range(rows):
        cost[i][0] = i
    for j in range(cols):
        cost[0][j] = j
    for i in range(1, rows):
        for j in range(1, cols):
            cost[i][j] = min(cost[i - 1][j - 1] + (written[i - 1] != spoken[j - 1]),
                             cost[i - 1][j] + 1, cost[i][j - 1] + 1)
    pairs: list[tuple[int | None, int | None]] = []
    i, j = len(written), len(spoken)
    while i or j:
        if i and j and cost[i][j] == cost[i - 1][j - 1] + (written[i - 1] != spoken[j - 1]):
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif i and cost[i][j] == cost[i - 1][j] + 1:
            pairs.append((i - 1, None))
            i -= 1
        else:
            pairs.append((None, j - 1))
            j -= 1
    return pairs[::-1]


def unit_words(text: str, spoken: Sequence[tuple[str, int]], phone_count: int | None = None,
               spoken_count: Callable[[str], int] | None = None) -> list[UnitWord]:
    """The spoken words of `text` as written, each with its first phone (see the module docstring).

    `spoken`: the words the engine speaks, in order, each with the index of its first phone (entries without a
    letter or digit, pause marks, are skipped). `phone_count`: the unit's phones (for sharing a multi-character
    CJK word's phones among its characters). `spoken_count(word)`: how many spoken words a written word becomes
    (the engine's normaliser), which shares the spoken words of a gap between its written words; without it they
    are shared evenly.
    """
    spans = written_words(text)
    if not spans:
        return []
    entries = [(word, first) for word, first in spoken if key(word)]
    total = phone_count if phone_count is not None else (max((f for _, f in entries), default=0) + 1)
    entries = _spread_cjk(entries, total)
    written_keys = [key(text[start:end]) for start, end in spans]
    spoken_keys = [key(word) for word, _ in entries]
    anchor: list[int | None] = [None] * len(spans)  # the spoken word spelt the same, where there is one
    for w, s in _edit_pairs(written_keys, spoken_keys):
        if w is not None and s is not None and written_keys[w] == spoken_keys[s]:
            anchor[w] = s
    firsts: list[int | None] = [None] * len(spans)
    index = 0
    while index < len(spans):
        if anchor[index] is not None:
            firsts[index] = entries[anchor[index]][1]
            index += 1
            continue
        gap_end = index
        while gap_end < len(spans) and anchor[gap_end] is None:
            gap_end += 1
        low = anchor[index - 1] + 1 if index > 0 else 0
        high = anchor[gap_end] if gap_end < len(spans) else len(entries)
        if high > low:  # the written words of the gap share its spoken words, in order
            gap = range(index, gap_end)
            weights = [max(1, spoken_count(text[spans[k][0]:spans[k][1]])) if spoken_count else 1 for k in gap]
            before = 0
            for k, weight in zip(gap, weights):
                firsts[k] = entries[low + min(high - low - 1, before * (high - low) // sum(weights))][1]
                before += weight
        index = gap_end
    words: list[UnitWord] = []
    timed = [k for k, first in enumerate(firsts) if first is not None]
    for position, k in enumerate(timed):
        span_start = 0 if position == 0 else spans[k][0]
        span_end = spans[timed[position + 1]][0] if position + 1 < len(timed) else len(text)
        first = firsts[k]
        if words and first < words[-1].first_phone:  # never before the word ahead of it
            first = words[-1].first_phone
        words.append(UnitWord(text[spans[k][0]:spans[k][1]], span_start, span_end, first))
    return words

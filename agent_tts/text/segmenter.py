"""Incremental segmentation of an LLM's text stream into speakable units.

Fed text deltas, :class:`Segmenter` emits units as early as it safely can:

* the first unit at the first clause boundary (``，、,;：`` ...) once it holds
  a minimum amount of speech (6 CJK characters or 4 words by default), so the
  first audio depends on the first clause only;
* later units at sentence ends (``。！？.!?`` and line breaks);
* a hard split when a unit grows past the maximum without a boundary, at the
  last clause boundary, else the last space, else between CJK characters
  (``max_chars`` bounds even a run with no spaces or marks);
* never inside a number (``3.5``, ``1,000``, ``7:30``), an abbreviation
  (``Dr.``, ``e.g.``), a URL or an e-mail address: ASCII punctuation only ends
  a unit when followed by white space, a CJK character or the end of the stream.

A mark is decided by the character after it (and after any closing quotes),
so a unit is released one character after its last mark, or at the end of the
stream. The result never depends on how the stream was split into deltas.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass
from enum import Enum

from agent_tts.errors import OptionError

SENTENCE_END_FULLWIDTH = set("。！？")
CLAUSE_FULLWIDTH = set("，、；：…")
SENTENCE_END_ASCII = set(".!?")
CLAUSE_ASCII = set(",;:")
SENTENCE_END = SENTENCE_END_ASCII | SENTENCE_END_FULLWIDTH
LEADING_PUNCTUATION = " .,;:!?…，、；：。！？"
CLOSERS = set("\"')]}”’）」』】》〉")
ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "e.g", "i.e", "no", "fig",
    "approx", "dept", "est", "inc", "ltd", "co", "corp", "jan", "feb", "mar", "apr", "jun", "jul",
    "aug", "sep", "sept", "oct", "nov", "dec", "mon", "tue", "wed", "thu", "fri", "sat", "sun",
    "a.m", "p.m", "u.s", "u.k", "ph.d",
}


def is_cjk(char: str) -> bool:
    """Chinese characters, kana and Hangul: each counts as one unit of speech."""
    code = ord(char)
    return (0x3040 <= code <= 0x30FF or 0x3400 <= code <= 0x4DBF or 0x4E00 <= code <= 0x9FFF
            or 0xF900 <= code <= 0xFAFF or 0xAC00 <= code <= 0xD7AF or 0x20000 <= code <= 0x2FA1F)


def _is_word_char(char: str) -> bool:
    return char.isalnum() and not is_cjk(char)


@dataclass(frozen=True)
class SegmenterOptions:
    """Unit sizes, in CJK characters and words; mixed text counts proportionally."""

    first_min_cjk_chars: int = 6
    first_min_words: int = 4
    max_cjk_chars: int = 60
    max_words: int = 40
    # Bounds a unit (and the work per delta) even for text with no spaces or marks.
    max_chars: int = 300

    def __post_init__(self) -> None:
        if min(self.first_min_cjk_chars, self.first_min_words) < 1:
            raise OptionError("segmenter: first-unit minimums must be at least 1")
        if self.max_cjk_chars < self.first_min_cjk_chars or self.max_words < self.first_min_words:
            raise OptionError("segmenter: the maximum unit size must be at least the first-unit minimum")
        if self.max_chars < max(self.max_cjk_chars, 2 * self.max_words):
            raise OptionError("segmenter: max_chars must allow a unit of max_cjk_chars or max_words")


class _Boundary(Enum):
    NONE = 0
    CLAUSE = 1
    SENTENCE = 2
    UNDECIDED = 3  # needs text that has not arrived yet


@dataclass
class _Size:
    cjk: int = 0
    words: int = 0

    def add(self, text: str, index: int) -> None:
        char = text[index]
        if is_cjk(char):
            self.cjk += 1
        elif _is_word_char(char) and (index == 0 or not _is_word_char(text[index - 1])):
            self.words += 1

    def fraction(self, cjk_limit: int, word_limit: int) -> float:
        return self.cjk / cjk_limit + self.words / word_limit


class Segmenter:
    """Turns text deltas into speakable units; a pure synchronous core.

    Call :meth:`feed` with each delta and :meth:`flush` at the end of the stream.
    """

    def __init__(self, options: SegmenterOptions | None = None) -> None:
        self.options = options or SegmenterOptions()
        self._buffer = ""
        self._units_emitted = 0

    @property
    def pending(self) -> str:
        """Text received but not yet part of a unit."""
        return self._buffer

    def feed(self, delta: str) -> list[str]:
        """Add text; return the units that are complete now."""
        self._buffer += delta
        return self._drain(final=False)

    def flush(self) -> list[str]:
        """End of stream: return every remaining unit."""
        units = self._drain(final=True)
        rest, self._buffer = self._buffer, ""
        units.extend(self._accept(rest))
        return units

    def reset(self) -> None:
        """Drop buffered text (e.g. on interruption)."""
        self._buffer = ""
        self._units_emitted = 0

    def _drain(self, final: bool) -> list[str]:
        units: list[str] = []
        while (cut := self._next_cut(final)) is not None:
            unit, self._buffer = self._buffer[:cut], self._buffer[cut:]
            units.extend(self._accept(unit))
        return units

    def _accept(self, unit: str) -> list[str]:
        unit = " ".join(unit.split()).lstrip(LEADING_PUNCTUATION)
        if not any(char.isalnum() for char in unit):
            return []
        self._units_emitted += 1
        return [unit]

    def _next_cut(self, final: bool) -> int | None:
        """End index of the next unit in the buffer, or None if it is not complete yet."""
        text, options = self._buffer, self.options
        size = _Size()
        last_clause_end: int | None = None
        for index in range(len(text)):
            size.add(text, index)
            if size.fraction(options.max_cjk_chars, options.max_words) > 1 or index >= options.max_chars:
                return _hard_cut(text, index, last_clause_end)
            kind = _boundary_at(text, index, final)
            if kind is _Boundary.UNDECIDED:
                return None
            if kind is _Boundary.NONE:
                continue
            end = index + 1 if text[index] == "\n" else _end_after_closers(text, index)
            if kind is _Boundary.SENTENCE:
                return end
            last_clause_end = end
            if self._units_emitted == 0 and self._first_unit_ready(size):
                return end
        return None

    def _first_unit_ready(self, size: _Size) -> bool:
        options = self.options
        return size.fraction(options.first_min_cjk_chars, options.first_min_words) >= 1


def _end_after_closers(text: str, index: int) -> int:
    end = index + 1
    while end < len(text) and text[end] in CLOSERS:
        end += 1
    return end


def _word_before(text: str, index: int) -> str:
    start = index
    while start > 0 and not text[start - 1].isspace() and not is_cjk(text[start - 1]):
        start -= 1
    return text[start:index].lstrip("\"'(“‘[").lower()


def _boundary_at(text: str, index: int, final: bool) -> _Boundary:
    char = text[index]
    if char == "\n":
        return _Boundary.SENTENCE
    fullwidth = char in SENTENCE_END_FULLWIDTH or char in CLAUSE_FULLWIDTH
    if not fullwidth and char not in SENTENCE_END_ASCII and char not in CLAUSE_ASCII:
        return _Boundary.NONE
    # Decided by what follows the mark and any closing quotes after it.
    after = _end_after_closers(text, index)
    if after >= len(text):
        if not final:
            return _Boundary.UNDECIDED
        return _mark_kind(char)
    following = text[after]
    if fullwidth:
        return _Boundary.NONE if char == following == "…" else _mark_kind(char)
    if following in SENTENCE_END_ASCII or following in CLAUSE_ASCII:
        return _Boundary.NONE  # "?!", "...": the run ends at its last mark
    if not (following.isspace() or is_cjk(following) or following in SENTENCE_END_FULLWIDTH
            or following in CLAUSE_FULLWIDTH):
        return _Boundary.NONE  # 3.5, 1,000, 7:30, example.com, https://
    if char == ".":
        if index > 0 and text[index - 1] == ".":
            return _Boundary.CLAUSE  # an ASCII ellipsis
        word = _word_before(text, index)
        if word in ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
            return _Boundary.NONE  # Dr. Smith, e.g. this, J. R. R. Tolkien
    return _mark_kind(char)


def _mark_kind(char: str) -> _Boundary:
    return _Boundary.SENTENCE if char in SENTENCE_END else _Boundary.CLAUSE


def _hard_cut(text: str, index: int, last_clause_end: int | None) -> int:
    """Where to split ``text[: index + 1]``, which has outgrown the maximum unit."""
    if last_clause_end is not None:
        return last_clause_end
    space = text.rfind(" ", 0, index + 1)
    if space > 0 and text[:space].strip():
        return space + 1
    # Size grows only at a CJK character or the first character of a word, so
    # cutting before ``index`` splits a word only when max_chars is what overflowed.
    return max(index, 1)


def segment_text(text: str, options: SegmenterOptions | None = None) -> list[str]:
    """All units of a complete text."""
    segmenter = Segmenter(options)
    return segmenter.feed(text) + segmenter.flush()


async def segment_stream(deltas: AsyncIterable[str] | Iterable[str],
                         options: SegmenterOptions | None = None) -> AsyncIterator[str]:
    """Async wrapper: units from a stream of text deltas, each as soon as it is complete."""
    segmenter = Segmenter(options)
    if isinstance(deltas, AsyncIterable):
        async for delta in deltas:
            for unit in segmenter.feed(delta):
                yield unit
    else:
        for delta in deltas:
            for unit in segmenter.feed(delta):
                yield unit
    for unit in segmenter.flush():
        yield unit

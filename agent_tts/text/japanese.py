"""Japanese G2P through OpenJTalk (pyopenjtalk-plus, which ships its dictionary), with accent marks.

Each run of Japanese text becomes OpenJTalk phonemes plus the pitch marks
GPT-SoVITS v2 was trained with: `[` rise, `]` fall, `#` accent-phrase
boundary (not in the symbol table, so it maps to UNK, as it did in training).
Punctuation between runs becomes the phone set's marks.
"""

from __future__ import annotations

import re
import threading

_JAPANESE_RUN = re.compile(r"[A-Za-z\d\u3005\u3040-\u30ff\u4e00-\u9fff\uff11-\uff19\uff21-\uff3a\uff41-\uff5a\uff66-\uff9d]+")
_MARKS = {"、": ",", "，": ",", ",": ",", "：": ",", "；": ",", "·": ",", "。": ".", ".": ".", "！": "!", "!": "!",
          "？": "?", "?": "?", "…": "…", "-": "-", "ー": "-"}
_FEATURE = {name: re.compile(pattern) for name, pattern in {
    "phoneme": r"\-(.*?)\+", "a1": r"/A:([0-9\-]+)\+", "a2": r"\+(\d+)\+", "a3": r"\+(\d+)/",
    "f1": r"/F:(\d+)_"}.items()}
_VOWELS_AND_MORA = "aeiouAEIOUNcl"

_openjtalk_lock = threading.Lock()


def _number(name: str, label: str) -> int:
    match = _FEATURE[name].search(label)
    return -50 if match is None or not match.group(1).lstrip("-").isdigit() else int(match.group(1))


def _labelled_phones(labels: list[str]) -> list[tuple[int, str]]:
    """The phones of OpenJTalk's labels with pitch marks, each with the index of the label it comes from."""
    phones: list[tuple[int, str]] = []
    for index, label in enumerate(labels):
        match = _FEATURE["phoneme"].search(label)
        phoneme = match.group(1) if match else "sil"
        if phoneme in ("A", "E", "I", "O", "U"):
            phoneme = phoneme.lower()
        if phoneme == "sil":
            continue
        if phoneme == "pau":
            phones.append((index, "_"))
            continue
        phones.append((index, phoneme))
        if index + 1 >= len(labels):
            continue
        a1, a2, a3 = _number("a1", label), _number("a2", label), _number("a3", label)
        f1 = _number("f1", label)
        a2_next = _number("a2", labels[index + 1])
        if a3 == 1 and a2_next == 1 and phoneme in _VOWELS_AND_MORA:
            phones.append((index, "#"))
        elif a1 == 0 and a2_next == a2 + 1 and a2 != f1:
            phones.append((index, "]"))
        elif a2 == 1 and a2_next == 2:
            phones.append((index, "["))
    return phones


def _analyse(text: str) -> tuple[list[dict], list[str]]:
    import pyopenjtalk

    with _openjtalk_lock:
        features = pyopenjtalk.run_frontend(text)
        return features, pyopenjtalk.make_label(features)


def prosody_phones(text: str) -> list[str]:
    """OpenJTalk phonemes of one Japanese run with pitch marks (devoiced vowels as plain vowels)."""
    return [phone for _, phone in _labelled_phones(_analyse(text)[1])]


def _word_phones(text: str) -> list[tuple[str, list[str]]]:
    """The words of one Japanese run (OpenJTalk's) with their phones: a word takes the phones of as many morae
    as it has (a mora ends at a vowel, N or cl); the run as one word if the counts disagree."""
    features, labels = _analyse(text)
    phones = _labelled_phones(labels)
    words = [(str(feature.get("string", "")), int(feature.get("mora_size", 0) or 0)) for feature in features]
    grouped: list[tuple[str, list[str]]] = [(word, []) for word, _ in words]
    current, morae_left = 0, words[0][1] if words else 0
    for _, phone in phones:
        while current < len(words) - 1 and morae_left <= 0 and phone not in "#[]":
            current += 1
            morae_left = words[current][1]
        if not grouped:
            break
        grouped[current][1].append(phone)
        if phone in ("a", "i", "u", "e", "o", "N", "cl"):
            morae_left -= 1
    if not grouped or morae_left > 0 or current != len(words) - 1 and any(m for _, m in words[current + 1:]):
        return [(text, [phone for _, phone in phones])]
    return grouped


def japanese_g2p_words(text: str) -> list[tuple[str, list[str]]]:
    """The words and marks of Japanese text with their phones; characters that are neither Japanese nor
    punctuation are dropped."""
    words: list[tuple[str, list[str]]] = []
    position = 0
    for run in _JAPANESE_RUN.finditer(text):
        words.extend((char, [_MARKS[char]]) for char in text[position: run.start()] if char in _MARKS)
        words.extend(_word_phones(run.group(0).lower()))
        position = run.end()
    words.extend((char, [_MARKS[char]]) for char in text[position:] if char in _MARKS)
    return words


def japanese_g2p(text: str) -> list[str]:
    """Phones for Japanese text (`japanese_g2p_words` without the words)."""
    return [phone for _, phones in japanese_g2p_words(text) for phone in phones]

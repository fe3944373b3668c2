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


def prosody_phones(text: str) -> list[str]:
    """OpenJTalk phonemes of one Japanese run with pitch marks (devoiced vowels as plain vowels)."""
    import pyopenjtalk

    with _openjtalk_lock:
        labels = pyopenjtalk.make_label(pyopenjtalk.run_frontend(text))
    phones: list[str] = []
    for index, label in enumerate(labels):
        match = _FEATURE["phoneme"].search(label)
        phoneme = match.group(1) if match else "sil"
        if phoneme in ("A", "E", "I", "O", "U"):
            phoneme = phoneme.lower()
        if phoneme == "sil":
            continue
        if phoneme == "pau":
            phones.append("_")
            continue
        phones.append(phoneme)
        if index + 1 >= len(labels):
            continue
        a1, a2, a3 = _number("a1", label), _number("a2", label), _number("a3", label)
        f1 = _number("f1", label)
        a2_next = _number("a2", labels[index + 1])
        if a3 == 1 and a2_next == 1 and phoneme in _VOWELS_AND_MORA:
            phones.append("#")
        elif a1 == 0 and a2_next == a2 + 1 and a2 != f1:
            phones.append("]")
        elif a2 == 1 and a2_next == 2:
            phones.append("[")
    return phones


def japanese_g2p(text: str) -> list[str]:
    """Phones for Japanese text; characters that are neither Japanese nor punctuation are dropped."""
    phones: list[str] = []
    position = 0
    for run in _JAPANESE_RUN.finditer(text):
        phones.extend(_MARKS[char] for char in text[position: run.start()] if char in _MARKS)
        phones.extend(prosody_phones(run.group(0).lower()))
        position = run.end()
    phones.extend(_MARKS[char] for char in text[position:] if char in _MARKS)
    return phones

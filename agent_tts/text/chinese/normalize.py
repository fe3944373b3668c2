"""Chinese text normalisation: numbers, dates, times, money, units and punctuation to speakable Han text.

`verbalize_numbers` reads every number in its context, rule after rule
(`_RULES`; the rules live in dates.py, identifiers.py and quantities.py, their
word tables in data/). The frontend runs it on each Chinese sentence before
the language split, so its output may keep Latin letters (20GB -> 二十G).
`normalize_chinese` then gives only Han characters and the phone set's
punctuation (`, . ! ? … -`), which is what the Chinese G2P and the BERT
features expect.
"""

from __future__ import annotations

import re
from typing import Callable

from agent_tts.text.chinese.dates import read_dates, read_times
from agent_tts.text.chinese.identifiers import (read_long_codes, read_marked_codes, read_numbers_in_names,
                                                read_phone_numbers)
from agent_tts.text.chinese.numbers import read_digits, read_model_number, read_number
from agent_tts.text.chinese.quantities import (read_arithmetic, read_fractions, read_money, read_percentages,
                                               read_quantities, read_ranges, read_units)
from agent_tts.text.symbols import PUNCTUATION

_FULL_WIDTH_ASCII = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
# Full-width punctuation keeps its own meaning below; only letters, digits and number signs are folded.
_KEEP_FULL_WIDTH = set("，。！？；：、（）【】《》“”‘’～")
_FOLD = {code: target for code, target in _FULL_WIDTH_ASCII.items() if chr(code) not in _KEEP_FULL_WIDTH}
_FOLD[0x3000] = 0x20

# Web and e-mail addresses are left as they are, for the English reader ("dot", "at").
_ADDRESS = re.compile(r"([A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
                      r"|(?:https?://)?(?:www\.)?[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
                      r"\.(?:com|cn|net|org|edu|gov|io|ai|co|uk|jp|de|dev|app)(?![A-Za-z0-9])(?:/[!-~]*)?)")
_DIGIT = re.compile(r"\d")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_TIMES_SIGN = re.compile(r"(?<=\d)[xX](?=\d)")
_NEGATIVE = re.compile(r"(?<![\w.])-(?=\d)")
_NUMBER = re.compile(r"\d+(?:\.\d+)*|\.\d+")
# What a range between two readings looks like once they are words: 3月1日-3月31日, 9:00-18:00.
_READ_RANGE = re.compile(r"(?<=[日号点分半秒年月])\s*[-~～—–]\s*(?=[零一二两三四五六七八九十])")
# "/" between a unit and what it is per: 39元/月 三十九元每月, 3次/天 三次每天.
_PER = re.compile(r"(?<=[元块角毛米克升秒时吨斤度瓦次件个份])/(?=天|日|月|年|周|晚|次|人|件|个|斤|公斤|千克|克|小时"
                  r"|分钟|秒|台|份|瓶|杯|位|平米|平方米|米|公里|吨|张|盒|袋|包|箱)")

_SYMBOL_WORDS = {"&": "和", "@": "艾特", "+": "加", "α": "阿尔法", "β": "贝塔", "γ": "伽玛", "δ": "德尔塔",
                 "θ": "西塔", "λ": "拉姆达", "μ": "缪", "π": "派", "σ": "西格玛", "ω": "欧米伽", "Ω": "欧姆"}

_PUNCTUATION_MAP = {
    "，": ",", "、": ",", "；": ",", ";": ",", "：": ",", ":": ",", "·": ",", "/": ",",
    "。": ".", "．": ".", "！": "!", "？": "?", "\n": ".", "~": "…", "～": "…", "—": "-", "–": "-",
}
_ELLIPSIS = re.compile(r"\.{3,}|…+")
_HAN = "\u4e00-\u9fff\u3400-\u4dbf"
_UNSPEAKABLE = re.compile(r"[^" + _HAN + re.escape("".join(PUNCTUATION)) + r"]+")
_REPEATED_PUNCTUATION = re.compile(r"([" + re.escape("".join(PUNCTUATION)) + r"])[" + re.escape("".join(PUNCTUATION)) + r"]+")


def _drop_separators(text: str) -> str:
    """1,299 -> 1299; 7x24 -> 7×24."""
    return _TIMES_SIGN.sub("×", _THOUSANDS.sub("", text))


def _read_plain_number(match: re.Match) -> str:
    text = match.group(0)
    if text.startswith("."):
        return "零点" + read_digits(text[1:])
    if text.count(".") > 1:
        return read_model_number(text)
    return read_number(text)


def _read_remaining_numbers(text: str) -> str:
    """Whatever no rule claimed: -5 负五, 3.60 三点六零, 3.2.1 三点二点一, 199 一百九十九."""
    return _NUMBER.sub(_read_plain_number, _NEGATIVE.sub("负", text))


def _join_readings(text: str) -> str:
    """到 between read dates and times (3月1日-3月31日), 每 for "/" after a unit (39元/月)."""
    return _PER.sub("每", _READ_RANGE.sub("到", text))


# In this order: each rule reads the digits that the rules before it left (docs/frontend.md lists them).
_RULES: tuple[Callable[[str], str], ...] = (
    _drop_separators, read_phone_numbers, read_ranges, read_dates, read_times, read_marked_codes, read_money,
    read_percentages, read_units, read_fractions, read_arithmetic, read_quantities, read_numbers_in_names,
    read_long_codes, _read_remaining_numbers, _join_readings,
)


def _apply_rules(text: str) -> str:
    for rule in _RULES:
        text = rule(text)
    return text


def verbalize_numbers(text: str) -> str:
    """Every number written as Chinese words, read in its context; letters, symbols and punctuation untouched.

    Units keep the letters people say (20GB -> 二十G), so the result may hold
    Latin letters; the frontend reads them as English. Web and e-mail
    addresses are kept whole for the English reader.
    """
    text = text.translate(_FOLD)
    if not _DIGIT.search(text):
        return text
    # The address pattern is one group, so split() alternates text and addresses.
    pieces = _ADDRESS.split(text)
    return "".join(piece if index % 2 else _apply_rules(piece) for index, piece in enumerate(pieces))


def verbalize(text: str) -> str:
    """Numbers, dates, times, money, units and symbols written as Chinese words; punctuation untouched."""
    text = verbalize_numbers(text)
    for symbol, word in _SYMBOL_WORDS.items():
        text = text.replace(symbol, word)
    return text


def to_phone_punctuation(text: str) -> str:
    """Map punctuation to the phone set's marks and drop everything that is neither Han nor a mark."""
    text = text.replace("嗯", "恩").replace("呣", "母")
    text = _ELLIPSIS.sub("…", text)
    text = "".join(_PUNCTUATION_MAP.get(char, char) for char in text)
    text = _UNSPEAKABLE.sub("", text)
    return _REPEATED_PUNCTUATION.sub(r"\1", text)


def normalize_chinese(text: str) -> str:
    """Speakable Han text with phone-set punctuation: "气温23.5度。" -> "气温二十三点五度."."""
    return to_phone_punctuation(verbalize(text))

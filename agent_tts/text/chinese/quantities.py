"""Chinese readings of amounts: ranges, money, percentages, temperatures, units, fractions, counts, ordinals.

A number before a measure word or a unit is a count: a lone 2 is 两 before
counting words (两个, 两天, 两公斤) and 二 before naming ones (二号, 二楼,
二月), and a leading 2 before 百/千/万 is 两 (两百元). After 第 it is a
plain ordinal (第二名). Money drops trailing zeros (￥1,299.00 一千二百九十九元)
and reads the rest with 点 (12.50元 十二点五元). A range "3-5" becomes
"3到5" first, so each end is then read like the numbers around it.
"""

from __future__ import annotations

import re

from agent_tts.text.chinese.number_words import number_words
from agent_tts.text.chinese.numbers import read_cardinal, read_digits, read_number

_WORDS = number_words()
_NUMBER = r"\d+(?:\.\d+)?"
# A number, or a range of two, written "3到5" by read_ranges.
_SPAN = rf"(?<![\d.])({_NUMBER})(?:到({_NUMBER}))?"

_RANGE = re.compile(
    rf"(?<![\d.:/A-Za-z-])(-?{_NUMBER})(%|‰|℃|°C)?\s*[-~～—–]\s*(?={_NUMBER}(?![\d.:/-]|\s*[-~～—–]\s*\d))")
_CURRENCY = {"HK$": "港元", "US$": "美元", "$": "美元", "¥": "元", "￥": "元", "€": "欧元", "£": "英镑"}
_PREFIXED_MONEY = re.compile(rf"(HK\$|US\$|[$¥￥€£])\s?({_NUMBER})")
_MONEY_WORDS = "元|块|美元|欧元|英镑|日元|港元|港币|韩元"
_DECIMAL_MONEY = re.compile(rf"(?<![\d.])(\d+\.\d+)(?=(?:{_MONEY_WORDS}))")
_PERCENT = re.compile(rf"(?<![\d.])(-?)({_NUMBER})(?:到(-?)({_NUMBER}))?\s?([%‰])")
_BELOW_ZERO = re.compile(rf"(?<![\d.])-({_NUMBER})(?=(?:到-?{_NUMBER})?(?:摄氏度|度|℃|°C|°F|℉))")
_SINGLE_LETTER_UNITS = [unit for unit in _WORDS.units if len(unit) == 1 and unit.isascii()]
_OTHER_UNITS = [unit for unit in _WORDS.units if unit not in _SINGLE_LETTER_UNITS]
_UNIT = re.compile(
    rf"{_SPAN}(?:\s?({_WORDS.pattern(_OTHER_UNITS)})|({_WORDS.pattern(_SINGLE_LETTER_UNITS)}))(?![A-Za-z])")
_FRACTION = re.compile(r"(?<![\d/])(-?)(\d+)/(\d+)(?![\d/])")
_APPROXIMATE = re.compile(r"(?<![\d.])(\d+)\+(?![\d+])")
_ARITHMETIC = re.compile(rf"({_NUMBER})\s*([+×÷*=])\s*(?=-?\d)")
_ARITHMETIC_WORDS = {"+": "加", "×": "乘", "*": "乘", "÷": "除以", "=": "等于"}
_ORDINAL = re.compile(r"第(\d+)")
_QUANTITY = re.compile(rf"{_SPAN}([多余几])?(?=({_WORDS.pattern(_WORDS.measure_words)}))")


def _read_span(first: str, last: str | None, count: bool) -> str:
    """One number, or both ends of a range ("3到5"), read alike."""
    spoken = read_number(first, count=count)
    return spoken + "到" + read_number(last, count=count) if last else spoken


def read_ranges(text: str) -> str:
    """3-5天, 10~20, 5%-10%: the dash or tilde between two numbers becomes 到."""
    return _RANGE.sub(lambda m: m[1] + (m[2] or "") + "到", text)


def read_money(text: str) -> str:
    """￥1,299.00 一千二百九十九元, $9.99 九点九九美元, 12.50元 十二点五元, ¥2 两元."""
    text = _PREFIXED_MONEY.sub(lambda m: read_number(m[2], count=True, trailing_zeros=False) + _CURRENCY[m[1]], text)
    return _DECIMAL_MONEY.sub(lambda m: read_number(m[1], trailing_zeros=False), text)


def _read_percent(match: re.Match) -> str:
    sign, value, last_sign, last, mark = match.groups()
    prefix = "百分之" if mark == "%" else "千分之"

    def one(sign: str, value: str) -> str:
        return ("负" if sign else "") + prefix + ("百" if mark == "%" and value == "100" else read_number(value))

    return one(sign, value) + ("到" + one(last_sign, last) if last else "")


def read_percentages(text: str) -> str:
    """85% 百分之八十五, 100% 百分之百, 3‰ 千分之三, 5-10% 百分之五到百分之十."""
    return _PERCENT.sub(_read_percent, text)


def _read_unit(match: re.Match) -> str:
    first, last, unit, letter_unit = match.groups()
    unit = unit or letter_unit
    return _read_span(first, last, count=True) + _WORDS.units[unit]


def read_units(text: str) -> str:
    """Numbers before units (data/zh_units.tsv): 5kg 五公斤, 120km/h 一百二十公里每小时, -5℃ 零下五摄氏度, 20GB 二十G."""
    text = _BELOW_ZERO.sub(lambda m: "零下" + m[1], text)
    return _UNIT.sub(_read_unit, text)


def read_fractions(text: str) -> str:
    """2/3 三分之二."""
    return _FRACTION.sub(lambda m: ("负" if m[1] else "") + read_cardinal(m[3]) + "分之" + read_cardinal(m[2]), text)


def read_arithmetic(text: str) -> str:
    """5+3=8 五加三等于八, 7×24 七乘二十四; 99+ (more than) 九十九多."""
    text = _APPROXIMATE.sub(lambda m: m[1] + "多", text)
    return _ARITHMETIC.sub(lambda m: read_number(m[1]) + _ARITHMETIC_WORDS[m[2]], text)


def _read_quantity(match: re.Match) -> str:
    first, last, approximate, measure_word = match.groups()
    if last is None and len(first) > 1 and first.startswith("0") and "." not in first:
        return read_digits(first)
    return _read_span(first, last, count=_WORDS.measure_words[measure_word] == "两") + (approximate or "")


def read_quantities(text: str) -> str:
    """Ordinals (第2名 第二名), then counts before measure words: 2个 两个, 200个 两百个, 12个 十二个, 2号 二号."""
    text = _ORDINAL.sub(lambda m: "第" + read_cardinal(m[1]), text)
    return _QUANTITY.sub(_read_quantity, text)

"""Reading numbers aloud in Mandarin: cardinals, digit strings, decimals."""

from __future__ import annotations

DIGIT_NAMES = "零一二三四五六七八九"
_SMALL_UNITS = ("千", "百", "十", "")
_GROUP_UNITS = ("", "万", "亿", "万亿")


def read_digits(digits: str, one_as_yao: bool = False) -> str:
    """Each digit by name: "2024" -> 二零二四; phone numbers say 幺 for 1."""
    names = "".join(DIGIT_NAMES[int(d)] for d in digits if d.isdigit())
    return names.replace("一", "幺") if one_as_yao else names


def _read_group(group: int) -> str:
    """0 < group < 10000, with inner zeros read once ("1005" -> 一千零五)."""
    digits = f"{group:04d}"
    spoken: list[str] = []
    zero_pending = False
    for digit, unit in zip(digits, _SMALL_UNITS):
        if digit == "0":
            zero_pending = bool(spoken)
            continue
        if zero_pending:
            spoken.append("零")
            zero_pending = False
        spoken.append(DIGIT_NAMES[int(digit)] + unit)
    return "".join(spoken)


def read_cardinal(number: str | int) -> str:
    """An integer as a Mandarin cardinal: 15 -> 十五, 199 -> 一百九十九, 100000 -> 十万."""
    value = int(number)
    if value == 0:
        return "零"
    if value >= 10 ** 16:
        return read_digits(str(value))
    groups: list[int] = []
    while value:
        groups.append(value % 10000)
        value //= 10000
    spoken: list[str] = []
    zero_pending = False
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            zero_pending = bool(spoken)
            continue
        if spoken and (zero_pending or group < 1000):
            spoken.append("零")
        spoken.append(_read_group(group) + _GROUP_UNITS[index])
        zero_pending = False
    text = "".join(spoken)
    return text[1:] if text.startswith("一十") else text


def read_number(text: str) -> str:
    """A plain number, possibly signed or with a decimal part: "-23.5" -> 负二十三点五."""
    sign = ""
    if text.startswith("-"):
        sign, text = "负", text[1:]
    whole, _, fraction = text.partition(".")
    spoken = read_cardinal(whole) if whole else "零"
    if fraction:
        spoken += "点" + read_digits(fraction)
    return sign + spoken

"""Reading numbers aloud in Mandarin: cardinals, counts (with 两), digit strings, decimals, model numbers."""

from __future__ import annotations

DIGIT_NAMES = "零一二三四五六七八九"
_SMALL_UNITS = ("千", "百", "十", "")
_GROUP_UNITS = ("", "万", "亿", "万亿")
# Longer integers are read digit by digit (and int() of a very long string is refused by Python).
_MAX_CARDINAL_DIGITS = 16
# Model and version numbers: up to this many digits are a cardinal (iPhone 15), longer ones digit by digit (RTX 4090).
_MODEL_CARDINAL_DIGITS = 2


def read_digits(digits: str, one_as_yao: bool = False) -> str:
    """Each digit by name: "2024" -> 二零二四; identifiers (phone, order, room numbers) say 幺 for 1."""
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
    text = str(number).lstrip("0") if isinstance(number, str) else str(number)
    if len(text) > _MAX_CARDINAL_DIGITS:
        return read_digits(text)
    value = int(text or "0")
    if value == 0:
        return "零"
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


def read_count(number: str | int) -> str:
    """A cardinal as a count, before a measure word: 2 -> 两, 200 -> 两百, 2000 -> 两千; 12 -> 十二, 22 -> 二十二."""
    spoken = read_cardinal(number)
    if spoken == "二":
        return "两"
    if spoken.startswith("二") and spoken[1:2] in ("百", "千", "万", "亿"):
        return "两" + spoken[1:]
    return spoken


def read_number(text: str, count: bool = False, trailing_zeros: bool = True) -> str:
    """A plain number, possibly signed or with a decimal part: "-23.5" -> 负二十三点五.

    `count` reads a whole number as a count (两); a decimal's whole part stays
    a cardinal (二点五). Without `trailing_zeros`, as for money, "12.50"
    reads 十二点五 and "1299.00" 一千二百九十九.
    """
    sign = ""
    if text.startswith("-"):
        sign, text = "负", text[1:]
    whole, _, fraction = text.partition(".")
    if not trailing_zeros:
        fraction = fraction.rstrip("0")
    if not fraction:
        return sign + (read_count(whole) if count else read_cardinal(whole or "0"))
    return sign + read_cardinal(whole or "0") + "点" + read_digits(fraction)


def read_model_number(text: str) -> str:
    """A number in a product or version name: short parts as cardinals, long ones digit by digit.

    "15" -> 十五 (iPhone 15), "4090" -> 四零九零 (RTX 4090), "3.11" -> 三点一一,
    "3.2.1" -> 三点二点一. A leading zero is always read digit by digit.
    """
    whole, *rest = text.split(".")
    if len(whole) <= _MODEL_CARDINAL_DIGITS and not (len(whole) > 1 and whole.startswith("0")):
        spoken = read_cardinal(whole)
    else:
        spoken = read_digits(whole)
    if len(rest) == 1:
        return spoken + "点" + read_digits(rest[0])
    return "点".join([spoken] + [read_model_number(part) for part in rest])

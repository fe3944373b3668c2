"""English number words: cardinals, ordinals, years, digit strings."""

from __future__ import annotations

_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SCALES = ((10 ** 12, "trillion"), (10 ** 9, "billion"), (10 ** 6, "million"), (1000, "thousand"))
_IRREGULAR_ORDINALS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                       "nine": "ninth", "twelve": "twelfth"}


def _below_hundred(value: int) -> str:
    if value < 20:
        return _ONES[value]
    tens, ones = divmod(value, 10)
    return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")


def _below_thousand(value: int) -> str:
    hundreds, rest = divmod(value, 100)
    words = []
    if hundreds:
        words.append(f"{_ONES[hundreds]} hundred")
    if rest or not hundreds:
        words.append(_below_hundred(rest))
    return " ".join(words)


def cardinal(value: int) -> str:
    """1250 -> "one thousand two hundred fifty"; negative numbers say "minus"."""
    if value < 0:
        return "minus " + cardinal(-value)
    if value >= 10 ** 15:
        return digits(str(value))
    words: list[str] = []
    for scale, name in _SCALES:
        if value >= scale:
            count, value = divmod(value, scale)
            words.append(f"{_below_thousand(count)} {name}")
    if value or not words:
        words.append(_below_thousand(value))
    return " ".join(words)


def ordinal(value: int) -> str:
    """5 -> "fifth", 21 -> "twenty-first"."""
    words = cardinal(value)
    head, separator, last = max(words.rpartition(" "), words.rpartition("-"), key=lambda parts: len(parts[0]))
    if last in _IRREGULAR_ORDINALS:
        last = _IRREGULAR_ORDINALS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + separator + last


def year(value: int) -> str:
    """A year in pairs: 1999 -> "nineteen ninety-nine", 2005 -> "two thousand five", 1900 -> "nineteen hundred"."""
    if 2000 <= value < 2010:
        return cardinal(value)
    high, low = divmod(value, 100)
    if low == 0:
        return f"{cardinal(high)} hundred"
    return f"{cardinal(high)} {'oh ' + _ONES[low] if low < 10 else _below_hundred(low)}"


def digits(text: str) -> str:
    """Each digit by name: "0199" -> "zero one nine nine"."""
    return " ".join(_ONES[int(char)] for char in text if char.isdigit())

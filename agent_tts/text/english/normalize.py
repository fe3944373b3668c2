"""English text normalisation: numbers, money, times, units, abbreviations, URLs to plain words.

The output holds only ASCII letters, apostrophes, spaces and the phone set's
punctuation, which is what the English G2P reads.
"""

from __future__ import annotations

import re
import unicodedata

from agent_tts.text.english.numbers import cardinal, digits, ordinal, year

_PUNCTUATION_MAP = {"，": ",", "；": ",", "：": ",", "、": ",", "。": ".", "！": "!", "？": "?",
                    "—": "-", "–": "-", "’": "'", "‘": "'", "～": "…", "~": "…", "_": " "}
_LINE_BREAK = re.compile(r"\s*\n\s*")
# ASCII ":" and ";" mean something inside times and URLs, so they become commas only after those are read.
_LATE_PUNCTUATION = {";": ",", ":": ","}
_QUOTES = re.compile(r"[\"“”«»「」『』]|(?<![A-Za-z])'|'(?![A-Za-z])")

_TITLES = {"dr": "Doctor", "mr": "Mister", "mrs": "Missus", "ms": "Miz", "prof": "Professor", "st": "Saint",
           "gen": "General", "gov": "Governor", "capt": "Captain", "sgt": "Sergeant", "rev": "Reverend"}
_PLACES = {"dr": "Drive", "st": "Street", "ave": "Avenue", "rd": "Road", "blvd": "Boulevard", "mt": "Mount"}
_ALWAYS = {"jr": "Junior", "sr": "Senior", "vs": "versus", "etc": "et cetera", "approx": "approximately",
           "dept": "department", "est": "established", "inc": "incorporated", "ltd": "limited", "no": "number"}
_MONTHS = {"jan": "January", "feb": "February", "mar": "March", "apr": "April", "jun": "June", "jul": "July",
           "aug": "August", "sep": "September", "sept": "September", "oct": "October", "nov": "November",
           "dec": "December"}
_UNITS = {
    "ms": ("millisecond", "milliseconds"), "s": ("second", "seconds"), "sec": ("second", "seconds"),
    "min": ("minute", "minutes"), "h": ("hour", "hours"), "hr": ("hour", "hours"), "hrs": ("hour", "hours"),
    "km/h": ("kilometer per hour", "kilometers per hour"), "mph": ("mile per hour", "miles per hour"),
    "km": ("kilometer", "kilometers"), "m": ("meter", "meters"), "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"), "mi": ("mile", "miles"), "ft": ("foot", "feet"),
    "kg": ("kilogram", "kilograms"), "g": ("gram", "grams"), "mg": ("milligram", "milligrams"),
    "lb": ("pound", "pounds"), "lbs": ("pound", "pounds"), "oz": ("ounce", "ounces"),
    "L": ("liter", "liters"), "l": ("liter", "liters"), "ml": ("milliliter", "milliliters"), "mL": ("milliliter", "milliliters"),
    "tbsp": ("tablespoon", "tablespoons"), "tsp": ("teaspoon", "teaspoons"),
    "KB": ("kilobyte", "kilobytes"), "MB": ("megabyte", "megabytes"), "GB": ("gigabyte", "gigabytes"),
    "TB": ("terabyte", "terabytes"), "Hz": ("hertz", "hertz"), "kHz": ("kilohertz", "kilohertz"),
    "MHz": ("megahertz", "megahertz"), "GHz": ("gigahertz", "gigahertz"), "kW": ("kilowatt", "kilowatts"),
    "°C": ("degree Celsius", "degrees Celsius"), "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "℃": ("degree Celsius", "degrees Celsius"), "°": ("degree", "degrees"),
}
_UNIT_PATTERN = "|".join(re.escape(unit) for unit in sorted(_UNITS, key=len, reverse=True))
_CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
               "€": ("euro", "euros", "cent", "cents"), "¥": ("yen", "yen", "sen", "sen")}
_SYMBOL_WORDS = {"%": " percent", "&": " and ", "+": " plus ", "=": " equals ", "@": " at ",
                 "×": " times ", "÷": " divided by "}

_URL = re.compile(r"\b(?:https?://)?(?:www\.)?[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.(?:com|org|net|edu|gov|io|ai|co|uk|cn|jp|de|dev|app)\b(?:/[^\s]*)?", re.I)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\b")
_ABBREVIATION = re.compile(r"\b([A-Za-z]{2,5})\.(?=\s|$)")
_AM_PM_TIME = re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)\s*([AaPp])\.?\s*[Mm]\b\.?")
_TIME = re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)\b")
_AM_PM = re.compile(r"\b([AaPp])\.[Mm]\.")
_PHONE = re.compile(r"(?<![\d.,])(?:\(?(\d{3})\)?[-. ])?(\d{3})-(\d{4})(?![\d])")
# Digits after these words identify something and are read one by one: "code 483920", "card ending in 4321".
_CODE = re.compile(
    r"\b((?:verification |security |confirmation |promo |access )?codes?|PIN|passcode|"
    r"(?:order|account|tracking|confirmation|reference|ticket|case|booking|member|membership|policy|invoice|"
    r"serial|transaction) (?:number|no\.?|ID)|ending (?:in|with))(\s+(?:is|was|are)\s+|\s*:\s*|\s+)(\d{3,})\b", re.I)
_RANGE = re.compile(r"(?<![\d.,:-])(\d+)\s?[-–~]\s?(\d+)(?!\d|[.,:-]\d)(?=\s*(?:[A-Za-z%]|$))")
_VERSION = re.compile(r"(?<![\d.])\d+(?:\.\d+){2,}(?!\d|\.\d)")
_MONTH_DAY = re.compile(r"\b(January|February|March|April|May|June|July|August|September|October|November|December)"
                        r"\s+(\d{1,2})\b(?!:)")
_MONEY = re.compile(r"([$£€¥])\s?(\d[\d,]*)(?:\.(\d{1,2}))?(?!\d)(?:\s?(million|billion|thousand|trillion)\b)?")
_PERCENT = re.compile(r"(-?\d[\d,]*(?:\.\d+)?)\s?%")
_MEASURE = re.compile(r"(?<![\w.])(\d[\d,]*(?:\.\d+)?)\s?(" + _UNIT_PATTERN + r")(?![A-Za-z])")
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.I)
_ROUND_THE_CLOCK = re.compile(r"\b24/7\b")
_FRACTION = re.compile(r"(?<![\d/])(\d+)/(\d+)(?![\d/])")
_DECIMAL = re.compile(r"(?<![\d.])(\d[\d,]*)?\.(\d+)(?![\d.])")
_NEGATIVE = re.compile(r"(?:(?<=\s)|^)-(?=\d)")
_GROUPED = re.compile(r"\b\d{1,3}(?:,\d{3})+\b")
_NUMBER = re.compile(r"\d+")
_CAPITAL_INSIDE_WORD = re.compile(r"(?<!^)(?<![\s])([A-Z])")
_NOT_SPEAKABLE = re.compile(r"[^ A-Za-z'.,?!\-…]")
_REPEATED_PUNCTUATION = re.compile(r"([.,?!…\-\s])[.,?!…\-]+")
_SPACES = re.compile(r"\s+")


def _number_words(text: str) -> str:
    text = text.replace(",", "")
    return cardinal(int(text)) if text else ""


def _spoken_address(text: str) -> str:
    text = re.sub(r"^https?://", "", text, flags=re.I)
    parts = re.split(r"([./@:_-])", text)
    names = {".": " dot ", "/": " slash ", "@": " at ", ":": " colon ", "_": " underscore ", "-": " dash "}
    spoken = []
    for part in parts:
        if part in names:
            spoken.append(names[part])
        elif part.lower() == "www":
            spoken.append(" W W W ")
        else:
            spoken.append(part)
    return "".join(spoken)


def _expand_abbreviation(match: re.Match) -> str:
    word = match.group(1)
    key = word.lower()
    rest = match.string[match.end():].lstrip()
    next_is_name = rest[:1].isupper()
    next_is_number = rest[:1].isdigit()
    if key in _TITLES and next_is_name:
        return _TITLES[key]
    sentence_ends = not rest or rest[:1].isupper()
    if key in _PLACES:
        return _PLACES[key] + ("." if sentence_ends else "")
    if key in _MONTHS and next_is_number:
        return _MONTHS[key]
    if key == "no" and not next_is_number:
        return match.group(0)
    if key in _ALWAYS:
        return _ALWAYS[key] + ("." if sentence_ends and key == "etc" else "")
    return match.group(0)


def _read_time(hour: str, minute: str) -> str:
    hours, minutes = int(hour), int(minute)
    if minutes == 0:
        return f"{cardinal(hours)} o'clock"
    minute_words = f"oh {cardinal(minutes)}" if minutes < 10 else cardinal(minutes)
    return f"{cardinal(hours)} {minute_words}"


def _read_money(match: re.Match) -> str:
    symbol, whole, fraction, scale = match.groups()
    unit, units, minor, minors = _CURRENCIES[symbol]
    amount = int(whole.replace(",", ""))
    if scale:
        spoken = _number_words(whole) + (f" point {digits(fraction)}" if fraction else "")
        return f"{spoken} {scale} {units}"
    cents = int(fraction.ljust(2, "0")) if fraction else 0
    parts = []
    if amount or not cents:
        parts.append(f"{cardinal(amount)} {unit if amount == 1 else units}")
    if cents:
        parts.append(f"{cardinal(cents)} {minor if cents == 1 else minors}")
    return " and ".join(parts)


def _read_measure(match: re.Match) -> str:
    value, unit = match.groups()
    singular, plural = _UNITS[unit]
    number = _read_decimal_text(value) if "." in value else _number_words(value)
    return f"{number} {singular if value == '1' else plural}"


def _read_decimal_text(text: str) -> str:
    whole, _, fraction = text.partition(".")
    return f"{_number_words(whole) or 'zero'} point {digits(fraction)}"


def _read_plain_number(match: re.Match) -> str:
    value = int(match.group(0))
    if 1000 < value < 3000 and not match.group(0).startswith("0"):
        return year(value)
    if len(match.group(0)) > 1 and match.group(0).startswith("0"):
        return digits(match.group(0))
    return cardinal(value)


def verbalize(text: str) -> str:
    """Numbers, money, units, abbreviations, URLs and symbols written as words; letters untouched."""
    text = "".join(_PUNCTUATION_MAP.get(char, char) for char in text)
    text = _EMAIL.sub(lambda m: _spoken_address(m.group(0)), text)
    text = _URL.sub(lambda m: _spoken_address(m.group(0)), text)
    text = _ABBREVIATION.sub(_expand_abbreviation, text)
    text = re.sub(r"\b[Ee]\.[Gg]\.", "for example", text)
    text = re.sub(r"\b[Ii]\.[Ee]\.", "that is", text)
    text = _AM_PM_TIME.sub(lambda m: f"{_read_time(m.group(1), m.group(2))} {m.group(3).upper()} M", text)
    text = _AM_PM.sub(lambda m: f"{m.group(1).upper()} M", text)
    text = _TIME.sub(lambda m: _read_time(m.group(1), m.group(2)), text)
    text = _PHONE.sub(lambda m: ", ".join(digits(group) for group in m.groups() if group), text)
    text = _NEGATIVE.sub("negative ", text)
    text = re.sub(r"#(?=\d)", "number ", text)
    text = _CODE.sub(lambda m: m[1] + m[2] + digits(m[3]), text)
    text = _MONTH_DAY.sub(lambda m: f"{m[1]} {ordinal(int(m[2]))}", text)
    text = _VERSION.sub(lambda m: " point ".join(_number_words(part) for part in m[0].split(".")), text)
    text = _RANGE.sub(lambda m: f"{m[1]} to {m[2]}", text)
    text = _MONEY.sub(_read_money, text)
    text = _PERCENT.sub(lambda m: ("negative " if m.group(1).startswith("-") else "")
                        + (_read_decimal_text(m.group(1).lstrip("-")) if "." in m.group(1) else _number_words(m.group(1).lstrip("-")))
                        + " percent", text)
    text = _MEASURE.sub(_read_measure, text)
    text = _ORDINAL.sub(lambda m: ordinal(int(m.group(1))), text)
    text = _ROUND_THE_CLOCK.sub("twenty-four seven", text)
    text = _FRACTION.sub(_read_fraction, text)
    text = _DECIMAL.sub(lambda m: _read_decimal_text((m.group(1) or "") + "." + m.group(2)), text)
    text = _GROUPED.sub(lambda m: _number_words(m.group(0)), text)
    text = _NUMBER.sub(_read_plain_number, text)
    for symbol, word in _SYMBOL_WORDS.items():
        text = text.replace(symbol, word)
    return "".join(_LATE_PUNCTUATION.get(char, char) for char in text)


def _read_fraction(match: re.Match) -> str:
    numerator, denominator = int(match.group(1)), int(match.group(2))
    if denominator == 1:
        return cardinal(numerator)
    if denominator == 2:
        name = "half" if numerator == 1 else "halves"
    elif denominator == 4:
        name = "quarter" if numerator == 1 else "quarters"
    else:
        name = ordinal(denominator) + ("s" if numerator != 1 else "")
    return f"{cardinal(numerator)} {name}"


def normalize_english(text: str) -> str:
    """Plain speakable English: "Dr. Smith paid $1,250." -> "Doctor Smith paid one thousand two hundred fifty dollars."."""
    text = _LINE_BREAK.sub(". ", text.strip())
    text = verbalize(text)
    text = _SPACES.sub(" ", text)
    text = "".join(char for char in unicodedata.normalize("NFD", text) if unicodedata.category(char) != "Mn")
    text = _QUOTES.sub(" ", text)
    text = _NOT_SPEAKABLE.sub("", text)
    text = _CAPITAL_INSIDE_WORD.sub(r" \1", text)
    text = _SPACES.sub(" ", text).strip()
    return _REPEATED_PUNCTUATION.sub(r"\1", text)

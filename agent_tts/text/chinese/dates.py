"""Chinese readings of years, numeric dates and clock times.

Years are read digit by digit (1998年 一九九八年, 2019款, 2024届); months and
days are cardinals, read later as numbers before 月/日/号. A clock time says
its hour as a count (2:30 两点半) and 30 minutes as 半.
"""

from __future__ import annotations

import re

from agent_tts.text.chinese.numbers import read_cardinal, read_count, read_digits

# A year from 1500 to 2099 before these words; "到" covers a span of years (2020-2023年). 5000年 is a duration.
_YEAR_WORDS = "年|款|届|版|赛季"
_YEAR_DIGITS = r"(?:1[5-9]|20)\d\d"
_YEAR = re.compile(rf"(?<![\d.])({_YEAR_DIGITS})(?=(?:到{_YEAR_DIGITS})?(?:{_YEAR_WORDS}))")
_SHORT_YEAR = re.compile(r"(?<![\d.])(\d{2})(?=年\d{1,2}月)")
_NUMERIC_DATE = re.compile(r"(?<![\d.])(\d{4})[-/.](0?[1-9]|1[0-2])[-/.](0?[1-9]|[12]\d|3[01])(?![\d.])")
_TIME = re.compile(r"(?<![\d:.])([01]?\d|2[0-3])[:：]([0-5]\d)(?:[:：]([0-5]\d))?(?![\d:])")


def _read_time(match: re.Match) -> str:
    hour, minute, second = match.groups()
    spoken = read_count(hour) + "点"
    if int(minute) == 30 and not second:
        spoken += "半"
    elif int(minute):
        spoken += ("零" if int(minute) < 10 else "") + read_cardinal(minute) + "分"
    elif second:
        spoken += "零分"
    if second and int(second):
        spoken += read_cardinal(second) + "秒"
    return spoken


def read_dates(text: str) -> str:
    """2024/3/15 and 2024-05-01 to 年月日, and years before 年/款/届 digit by digit."""
    text = _NUMERIC_DATE.sub(lambda m: f"{read_digits(m[1])}年{read_cardinal(m[2])}月{read_cardinal(m[3])}日", text)
    text = _YEAR.sub(lambda m: read_digits(m[1]), text)
    return _SHORT_YEAR.sub(lambda m: read_digits(m[1]), text)


def read_times(text: str) -> str:
    """15:30 十五点半, 9:05 九点零五分, 2:00 两点, 12:30:45 十二点三十分四十五秒."""
    return _TIME.sub(_read_time, text)

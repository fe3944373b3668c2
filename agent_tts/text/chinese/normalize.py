"""Chinese text normalisation: numbers, dates, times, money, units and punctuation to speakable Han text.

The output holds only Han characters and the phone set's punctuation
(`, . ! ? … -`), which is what the Chinese G2P and the BERT features expect.
"""

from __future__ import annotations

import re

from agent_tts.text.chinese.numbers import read_cardinal, read_digits, read_number
from agent_tts.text.symbols import PUNCTUATION

_FULL_WIDTH_ASCII = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
# Full-width punctuation keeps its own meaning below; only letters, digits and number signs are folded.
_KEEP_FULL_WIDTH = set("，。！？；：、（）【】《》“”‘’～")
_FOLD = {code: target for code, target in _FULL_WIDTH_ASCII.items() if chr(code) not in _KEEP_FULL_WIDTH}
_FOLD[0x3000] = 0x20

_UNITS = {
    "km/h": "千米每小时", "m/s": "米每秒", "cm²": "平方厘米", "cm2": "平方厘米", "m²": "平方米", "m2": "平方米",
    "km²": "平方千米", "m³": "立方米", "m3": "立方米", "cm³": "立方厘米", "mm": "毫米", "cm": "厘米",
    "km": "千米", "kg": "千克", "mg": "毫克", "ml": "毫升", "mL": "毫升", "ms": "毫秒", "db": "分贝", "dB": "分贝",
    "GB": "G B", "MB": "M B", "KB": "K B", "kW": "千瓦", "kw": "千瓦", "Hz": "赫兹", "kHz": "千赫兹",
    "m": "米", "g": "克", "s": "秒", "h": "小时", "L": "升", "W": "瓦", "V": "伏", "t": "吨",
}
_UNIT_PATTERN = "|".join(re.escape(unit) for unit in sorted(_UNITS, key=len, reverse=True))

# Measure words after which a number is a quantity (a cardinal), not a code read digit by digit.
_MEASURE_WORDS = (
    "个|位|名|人|口|只|条|头|匹|张|把|本|页|件|套|台|部|辆|架|艘|座|栋|层|间|家|户|所|棵|朵|颗|粒|块|片|根|支|枝|"
    "双|对|副|杯|碗|瓶|盒|箱|袋|包|桶|罐|盘|次|遍|回|趟|顿|场|岁|年|月|日|天|周|小时|分钟|秒钟|秒|分|刻|"
    "元|块钱|角|毛|美元|欧元|英镑|日元|港币|人民币|亿|万|千|百|吨|斤|两|克|公斤|千克|米|公里|千米|厘米|毫米|里|"
    "度|倍|份|点|项|节|章|集|首|篇|封|门|道|款|种|类|股|笔|单|票|分数|号|楼|室|期|届|代|级|档|步|样|声|下|元钱"
)

_DATE = re.compile(r"(\d{4}|\d{2})年(?:(0?[1-9]|1[0-2])月)?(?:(0?[1-9]|[12]\d|3[01])([日号]))?")
_DATE_NUMERIC = re.compile(r"(?<!\d)(\d{4})[-/.](0?[1-9]|1[0-2])[-/.](0?[1-9]|[12]\d|3[01])(?!\d)")
_MONTH_DAY = re.compile(r"(?<!\d)(0?[1-9]|1[0-2])月(0?[1-9]|[12]\d|3[01])([日号])")
_TIME = re.compile(r"(?<![\d:])([01]?\d|2[0-3])[:：]([0-5]\d)(?:[:：]([0-5]\d))?(?![\d:])")
_TEMPERATURE = re.compile(r"(-?)(\d+(?:\.\d+)?)(°C|℃|°F|℉|摄氏度|度)")
_MEASURE = re.compile(r"(\d+(?:\.\d+)?)(" + _UNIT_PATTERN + r")(?![A-Za-z])")
_FRACTION = re.compile(r"(?<![\d/])(-?)(\d+)/(\d+)(?![\d/])")
_PERCENT = re.compile(r"(-?)(\d+(?:\.\d+)?)%")
_MOBILE = re.compile(r"(?<!\d)((?:\+?86[- ]?)?1[3-9]\d{9})(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)(0\d{2,3})-(\d{7,8})(?!\d)")
_SERVICE_NUMBER = re.compile(r"(?<!\d)([48]00)-?(\d{3})-?(\d{4})(?!\d)")
_RANGE = re.compile(r"(\d+(?:\.\d+)?)\s*[-~～—]\s*(\d+(?:\.\d+)?)(?=\s*(?:" + _MEASURE_WORDS + r"|%|$|[^\d]))")
_ARITHMETIC = re.compile(r"(\d+(?:\.\d+)?)\s*([+×÷*=])\s*(?=-?\d)")
_QUANTITY = re.compile(r"(\d+)([多余几+])?(?=" + _MEASURE_WORDS + ")")
_NEGATIVE = re.compile(r"(?<![\w.])-(?=\d)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?|\.\d+")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")

_ARITHMETIC_WORDS = {"+": "加", "×": "乘", "*": "乘", "÷": "除以", "=": "等于"}
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


def _read_date(match: re.Match) -> str:
    year, month, day, day_word = match.groups()
    spoken = read_digits(year) + "年"
    if month:
        spoken += read_cardinal(month) + "月"
    if day:
        spoken += read_cardinal(day) + day_word
    return spoken


def _read_numeric_date(match: re.Match) -> str:
    year, month, day = match.groups()
    return f"{read_digits(year)}年{read_cardinal(month)}月{read_cardinal(day)}日"


def _read_time(match: re.Match) -> str:
    hour, minute, second = match.groups()
    spoken = read_cardinal(hour) + "点"
    if int(minute) == 30 and not second:
        spoken += "半"
    elif int(minute):
        spoken += ("零" if int(minute) < 10 else "") + read_cardinal(minute) + "分"
    elif second:
        spoken += "零分"
    if second and int(second):
        spoken += read_cardinal(second) + "秒"
    return spoken


def _read_temperature(match: re.Match) -> str:
    sign, value, unit = match.groups()
    unit_word = {"°C": "摄氏度", "℃": "摄氏度", "°F": "华氏度", "℉": "华氏度"}.get(unit, unit)
    return ("零下" if sign else "") + read_number(value) + unit_word


def _read_fraction(match: re.Match) -> str:
    sign, numerator, denominator = match.groups()
    return ("负" if sign else "") + read_cardinal(denominator) + "分之" + read_cardinal(numerator)


def _read_percent(match: re.Match) -> str:
    sign, value = match.groups()
    return ("负" if sign else "") + "百分之" + read_number(value)


def _read_range(match: re.Match) -> str:
    return read_number(match.group(1)) + "到" + read_number(match.group(2))


def _read_quantity(match: re.Match) -> str:
    number, approx = match.groups()
    if len(number) > 1 and number.startswith("0"):
        return read_digits(number)
    return read_cardinal(number) + ("多" if approx else "")


def _read_plain_number(match: re.Match) -> str:
    text = match.group(0)
    if text.startswith("."):
        return "点" + read_digits(text[1:])
    whole = text.partition(".")[0]
    # A leading zero or a very long run is a code (an order number, a room), read digit by digit.
    if "." not in text and ((len(whole) > 1 and whole.startswith("0")) or len(whole) > 9):
        return read_digits(text)
    return read_number(text)


def verbalize(text: str) -> str:
    """Numbers, dates, times, money, units and symbols written as Chinese words; punctuation untouched."""
    text = text.translate(_FOLD)
    text = _THOUSANDS.sub("", text)
    text = _DATE_NUMERIC.sub(_read_numeric_date, text)
    text = _DATE.sub(_read_date, text)
    text = _MONTH_DAY.sub(lambda m: f"{read_cardinal(m.group(1))}月{read_cardinal(m.group(2))}{m.group(3)}", text)
    text = _TIME.sub(_read_time, text)
    text = _MOBILE.sub(lambda m: read_digits(m.group(1), one_as_yao=True), text)
    text = _SERVICE_NUMBER.sub(lambda m: read_digits("".join(m.groups()), one_as_yao=True), text)
    text = _LANDLINE.sub(lambda m: read_digits(m.group(1), True) + "," + read_digits(m.group(2), True), text)
    text = _TEMPERATURE.sub(_read_temperature, text)
    text = _PERCENT.sub(_read_percent, text)
    text = _FRACTION.sub(_read_fraction, text)
    text = _RANGE.sub(_read_range, text)
    text = _MEASURE.sub(lambda m: read_number(m.group(1)) + _UNITS[m.group(2)], text)
    text = _ARITHMETIC.sub(lambda m: read_number(m.group(1)) + _ARITHMETIC_WORDS[m.group(2)], text)
    text = _NEGATIVE.sub("负", text)
    text = _QUANTITY.sub(_read_quantity, text)
    text = _NUMBER.sub(_read_plain_number, text)
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

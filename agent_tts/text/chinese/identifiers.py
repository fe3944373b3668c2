"""Digits that name something rather than count it, read digit by digit.

- Phone numbers (mobile, 400/800, landline) and identifiers marked by a word
  next to them (订单号20231108, 尾号8821, 401室, CA1831航班; the words are in
  data/zh_code_words.tsv): every digit, with 幺 for 1, as people read them
  out to be written down. Fewer than three digits, or digits before a
  measure word (验证码10分钟内有效), keep their usual reading.
- Numbers touching Latin letters are parts of names (RTX 4090, iPhone 15,
  GPT-4, A4, 3D, 1080P): up to two digits a cardinal, longer ones digit by
  digit with 一; versions and decimals with 点.
- Other runs of seven digits or more, and numbers with a leading zero, are
  codes too.
"""

from __future__ import annotations

import re

from agent_tts.text.chinese.number_words import number_words
from agent_tts.text.chinese.numbers import read_digits, read_model_number

_MOBILE = re.compile(r"(?<!\d)((?:\+?86[- ]?)?1[3-9]\d{9})(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)(0\d{2,3})-(\d{7,8})(?!\d)")
_SERVICE_NUMBER = re.compile(r"(?<!\d)([48]00)-?(\d{3})-?(\d{4})(?!\d)")
# A masked number (138****5678) and a code in three or more parts (取件码 12-3-4567): each group digit by digit.
_MASKED = re.compile(r"(?<![\d.])(\d+)[*＊]{2,}(\d+)(?![\d.])")
_MULTIPART = re.compile(r"(?<![\d.-])\d+(?:-\d+){2,}(?![\d-])")

_WORDS = number_words()
_NOT_A_COUNT = rf"(?![\d.]|\s?(?:{_WORDS.pattern(_WORDS.count_measure_words)}|{_WORDS.pattern(_WORDS.units)}))"
_CODE_AFTER_WORD = re.compile(
    rf"({_WORDS.pattern(_WORDS.code_words_before)})([\s:：#]*(?:是|为)?[\s:：#]*)([A-Za-z]{{0,4}})(\d{{3,}}){_NOT_A_COUNT}")
_CODE_BEFORE_WORD = re.compile(rf"(?<![\d.])([A-Za-z]{{0,4}})(\d{{3,}})(?={_WORDS.pattern(_WORDS.code_words_after)})")

_AFTER_LETTERS = re.compile(r"(?<=[A-Za-z])([ -]?)(\d+(?:\.\d+)*)(?![\d.])")
_BEFORE_LETTERS = re.compile(r"(?<![\d.])(\d+(?:\.\d+)*)(?= ?[A-Za-z])")
_LONG_OR_ZERO_LED = re.compile(r"(?<![\d.])(?:\d{7,}|0\d+)(?![\d.])")


def read_phone_numbers(text: str) -> str:
    """Mobile, landline and 400/800 numbers digit by digit with 幺; groups keep a pause between them."""
    text = _MOBILE.sub(lambda m: read_digits(m[1], one_as_yao=True), text)
    text = _SERVICE_NUMBER.sub(lambda m: ",".join(read_digits(group, True) for group in m.groups()), text)
    return _LANDLINE.sub(lambda m: read_digits(m[1], True) + "," + read_digits(m[2], True), text)


def read_marked_codes(text: str) -> str:
    """Digits after a word like 订单号 or 验证码, or before one like 室 or 航班, digit by digit with 幺.

    Masked numbers and codes in three or more dashed parts are codes wherever they stand.
    """
    text = _MASKED.sub(lambda m: read_digits(m[1], True) + "," + read_digits(m[2], True), text)
    text = _MULTIPART.sub(lambda m: ",".join(read_digits(part, True) for part in m[0].split("-")), text)
    text = _CODE_AFTER_WORD.sub(lambda m: m[1] + m[2] + m[3] + read_digits(m[4], one_as_yao=True), text)
    return _CODE_BEFORE_WORD.sub(lambda m: m[1] + read_digits(m[2], one_as_yao=True), text)


def read_numbers_in_names(text: str) -> str:
    """Numbers after or before Latin letters: RTX 4090 -> RTX 四零九零, GPT-4 -> GPT四, 3D -> 三D."""
    text = _AFTER_LETTERS.sub(lambda m: (" " if m[1] == " " else "") + read_model_number(m[2]), text)
    return _BEFORE_LETTERS.sub(lambda m: read_model_number(m[1]), text)


def read_long_codes(text: str) -> str:
    """Seven digits or more, or a leading zero (0302): a code, digit by digit with 幺."""
    return _LONG_OR_ZERO_LED.sub(lambda m: read_digits(m[0], one_as_yao=True), text)

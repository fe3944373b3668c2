"""Mandarin G2P: normalised Han text to GPT-SoVITS initials and toned finals, with word2ph.

Words come from jieba (part of speech included, for the sandhi rules),
readings from pypinyin's phrase dictionary (which settles most polyphones
by word), or from a g2pW model when one is configured.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from importlib import resources
from typing import Callable, Sequence

import jieba
import jieba.posseg
from pypinyin import Style, lazy_pinyin

from agent_tts.text.chinese.tone_sandhi import finals_of, merge_for_sandhi, modify_tones
from agent_tts.text.symbols import PUNCTUATION

jieba.setLogLevel(logging.CRITICAL)

# Words with 儿 that is a syllable of its own, and words whose 儿 always merges.
_ALWAYS_ERHUA = {"小院儿", "胡同儿", "范儿", "老汉儿", "撒欢儿", "寻老礼儿", "妥妥儿", "媳妇儿"}
_NEVER_ERHUA = {
    "虐儿", "为儿", "护儿", "瞒儿", "救儿", "替儿", "有儿", "一儿", "我儿", "俺儿", "妻儿", "拐儿", "聋儿", "乞儿",
    "患儿", "幼儿", "孤儿", "婴儿", "婴幼儿", "连体儿", "脑瘫儿", "流浪儿", "体弱儿", "混血儿", "蜜雪儿", "舫儿",
    "祖儿", "美儿", "应采儿", "可儿", "侄儿", "孙儿", "侄孙儿", "女儿", "男儿", "红孩儿", "花儿", "虫儿", "马儿",
    "鸟儿", "猪儿", "猫儿", "狗儿", "少儿",
}
_FINAL_SPELLING = {"uei": "ui", "iou": "iu", "uen": "un"}
_BARE_SYLLABLE = {"ing": "ying", "i": "yi", "in": "yin", "u": "wu"}
_BARE_FIRST_LETTER = {"v": "yu", "e": "e", "i": "y", "u": "w"}
_SENTENCE_BREAK = re.compile(r"(?<=[" + re.escape("".join(PUNCTUATION)) + r"])\s*")

# A pinyin reader takes a sentence and returns one tone-3 syllable (or the character itself) per character.
PinyinReader = Callable[[str], list[str]]


@lru_cache(maxsize=1)
def pinyin_to_phones() -> dict[str, tuple[str, str]]:
    """The opencpop-strict table: toneless pinyin -> (initial, final) phone symbols."""
    text = resources.files("agent_tts.text").joinpath("data/pinyin_to_phones.tsv").read_text(encoding="utf-8")
    table: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        if line.strip():
            pinyin, phones = line.split("\t")
            initial, final = phones.split(" ")
            table[pinyin] = (initial, final)
    return table


def _initials_and_finals(word: str) -> tuple[list[str], list[str]]:
    return lazy_pinyin(word, neutral_tone_with_five=True, style=Style.INITIALS), finals_of(word)


def _merge_erhua(initials: list[str], finals: list[str], word: str, pos: str) -> tuple[list[str], list[str]]:
    """儿 after a syllable takes that syllable's tone (好玩儿 -> wan2 er2), except in the listed words."""
    if finals and word.endswith("儿") and finals[-1] == "er1":
        finals = finals[:-1] + ["er2"]
    if word not in _ALWAYS_ERHUA and (word in _NEVER_ERHUA or pos in {"a", "j", "nr"}):
        return initials, finals
    if len(finals) != len(word):
        return initials, finals
    if len(word) >= 2 and word[-1] == "儿" and finals[-1] in {"er2", "er5"} and word[-2:] not in _NEVER_ERHUA:
        finals = finals[:-1] + ["er" + finals[-2][-1:]]
    return initials, finals


def _syllable_phones(initial: str, final: str) -> list[str]:
    """pypinyin's initial + toned final -> the phone pair of the symbol table."""
    tone = final[-1:]
    bare_final = final[:-1]
    if not tone or tone not in "12345":
        return []
    pinyin = initial + bare_final
    if initial:
        pinyin = initial + _FINAL_SPELLING.get(bare_final, bare_final)
    elif pinyin in _BARE_SYLLABLE:
        pinyin = _BARE_SYLLABLE[pinyin]
    elif pinyin[:1] in _BARE_FIRST_LETTER:
        pinyin = _BARE_FIRST_LETTER[pinyin[0]] + pinyin[1:]
    phones = pinyin_to_phones().get(pinyin)
    if phones is None:
        return []
    return [phones[0], phones[1] + tone]


def _sentence_phones(sentence: str, reader: PinyinReader | None) -> tuple[list[str], list[int]]:
    words = merge_for_sandhi([(pair.word, pair.flag) for pair in jieba.posseg.lcut(sentence)])
    sentence_pinyin = reader(sentence) if reader is not None else None
    phones: list[str] = []
    word2ph: list[int] = []
    offset = 0
    for word, pos in words:
        if sentence_pinyin is None:
            initials, finals = _initials_and_finals(word)
        else:
            initials, finals = _split_pinyin(sentence_pinyin[offset: offset + len(word)])
        offset += len(word)
        finals = modify_tones(word, pos, finals)
        initials, finals = _merge_erhua(initials, finals, word, pos)
        for initial, final in zip(initials, finals):
            if initial == final and initial in PUNCTUATION:
                phones.append(initial)
                word2ph.append(1)
                continue
            pair = _syllable_phones(initial, final)
            phones.extend(pair)
            word2ph.append(len(pair))
    return phones, word2ph


def _split_pinyin(syllables: Sequence[str]) -> tuple[list[str], list[str]]:
    from pypinyin.contrib.tone_convert import to_finals_tone3, to_initials

    initials: list[str] = []
    finals: list[str] = []
    for syllable in syllables:
        if syllable[:1].isalpha():
            initials.append(to_initials(syllable))
            finals.append(to_finals_tone3(syllable, neutral_tone_with_five=True))
        else:
            initials.append(syllable)
            finals.append(syllable)
    return initials, finals


def chinese_g2p(norm_text: str, reader: PinyinReader | None = None) -> tuple[list[str], list[int]]:
    """Phones and word2ph (phones per character of `norm_text`) for normalised Chinese text."""
    phones: list[str] = []
    word2ph: list[int] = []
    for sentence in _SENTENCE_BREAK.split(norm_text):
        if sentence.strip():
            sentence_phones, sentence_word2ph = _sentence_phones(sentence, reader)
            phones += sentence_phones
            word2ph += sentence_word2ph
    return phones, word2ph

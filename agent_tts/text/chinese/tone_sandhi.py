"""Mandarin tone sandhi on jieba words: 不 and 一 changes, neutral tones, third-tone chains.

The rules and word lists follow PaddleSpeech's, which GPT-SoVITS uses, so the
phones match what the voices were trained on. Finals carry their tone as the
last character ("ao3"); 5 is the neutral tone.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import jieba
from pypinyin import Style, lazy_pinyin

_SENTENCE_FINAL_PARTICLES = "吧呢哈啊呐噻嘛吖嗨呐哦哒额滴哩哟喽啰耶喔诶"
_STRUCTURAL_PARTICLES = "的地得"
_PUNCTUATION = "：，；。？！“”‘’':,;.?!"

Segment = list  # [word, pos]


def _word_list(name: str) -> frozenset[str]:
    text = resources.files("agent_tts.text").joinpath(f"data/{name}").read_text(encoding="utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


@lru_cache(maxsize=1)
def _neutral_tone_words() -> frozenset[str]:
    return _word_list("zh_neutral_tone_words.txt")


@lru_cache(maxsize=1)
def _keep_tone_words() -> frozenset[str]:
    return _word_list("zh_keep_tone_words.txt")


def finals_of(word: str) -> list[str]:
    """Toned finals per character; a character pypinyin cannot read keeps itself (it has no tone)."""
    finals = lazy_pinyin(word, neutral_tone_with_five=True, style=Style.FINALS_TONE3)
    if len(finals) == len(word):
        finals = [final or char for final, char in zip(finals, word)]
    return finals


def _with_tone(final: str, tone: str) -> str:
    return final[:-1] + tone


def _all_third_tone(finals: list[str]) -> bool:
    return all(final[-1:] == "3" for final in finals)


def _split_in_two(word: str) -> list[str]:
    """Split a word at its shortest search sub-word: 蒙古包 -> 蒙古 / 包."""
    shortest = sorted(jieba.cut_for_search(word), key=len)[0]
    if word.find(shortest) == 0:
        return [shortest, word[len(shortest):]]
    return [word[: -len(shortest)], shortest]


def _neutral_sandhi(word: str, pos: str, finals: list[str]) -> list[str]:
    keep = _keep_tone_words()
    neutral = _neutral_tone_words()
    for index in range(1, len(word)):
        if word[index] == word[index - 1] and pos[:1] in {"n", "v", "a"} and word not in keep:
            finals[index] = _with_tone(finals[index], "5")
    ge_index = word.find("个")
    last = word[-1:]
    if last and last in _SENTENCE_FINAL_PARTICLES:
        finals[-1] = _with_tone(finals[-1], "5")
    elif last and last in _STRUCTURAL_PARTICLES:
        finals[-1] = _with_tone(finals[-1], "5")
    elif len(word) == 1 and word in "了着过" and pos in {"ul", "uz", "ug"}:
        finals[-1] = _with_tone(finals[-1], "5")
    elif len(word) > 1 and last in "们子" and pos in {"r", "n"} and word not in keep:
        finals[-1] = _with_tone(finals[-1], "5")
    elif len(word) > 1 and last in "上下里" and pos in {"s", "l", "f"}:
        finals[-1] = _with_tone(finals[-1], "5")
    elif len(word) > 1 and last in "来去" and word[-2] in "上下进出回过起开":
        finals[-1] = _with_tone(finals[-1], "5")
    elif (ge_index >= 1 and (word[ge_index - 1].isnumeric() or word[ge_index - 1] in "几有两半多各整每做是")) or word == "个":
        finals[ge_index] = _with_tone(finals[ge_index], "5")
    elif word in neutral or word[-2:] in neutral:
        finals[-1] = _with_tone(finals[-1], "5")

    halves = _split_in_two(word)
    parts = [finals[: len(halves[0])], finals[len(halves[0]):]]
    for half, part in zip(halves, parts):
        if part and (half in neutral or half[-2:] in neutral):
            part[-1] = _with_tone(part[-1], "5")
    return parts[0] + parts[1]


def _bu_sandhi(word: str, finals: list[str]) -> list[str]:
    if len(word) == 3 and word[1] == "不":
        finals[1] = _with_tone(finals[1], "5")
        return finals
    for index, char in enumerate(word):
        if char == "不" and index + 1 < len(word) and finals[index + 1][-1:] == "4":
            finals[index] = _with_tone(finals[index], "2")
    return finals


def _yi_sandhi(word: str, finals: list[str]) -> list[str]:
    if "一" in word and all(char.isnumeric() for char in word if char != "一"):
        return finals
    if len(word) == 3 and word[1] == "一" and word[0] == word[-1]:
        finals[1] = _with_tone(finals[1], "5")
    elif word.startswith("第一"):
        finals[1] = _with_tone(finals[1], "1")
    else:
        for index, char in enumerate(word):
            if char == "一" and index + 1 < len(word):
                if finals[index + 1][-1:] == "4":
                    finals[index] = _with_tone(finals[index], "2")
                elif word[index + 1] not in _PUNCTUATION:
                    finals[index] = _with_tone(finals[index], "4")
    return finals


def _third_tone_sandhi(word: str, finals: list[str]) -> list[str]:
    if len(word) == 2 and _all_third_tone(finals):
        finals[0] = _with_tone(finals[0], "2")
    elif len(word) == 3:
        halves = _split_in_two(word)
        if _all_third_tone(finals):
            if len(halves[0]) == 2:
                finals[0] = _with_tone(finals[0], "2")
                finals[1] = _with_tone(finals[1], "2")
            elif len(halves[0]) == 1:
                finals[1] = _with_tone(finals[1], "2")
        else:
            parts = [finals[: len(halves[0])], finals[len(halves[0]):]]
            for index, part in enumerate(parts):
                if _all_third_tone(part) and len(part) == 2:
                    part[0] = _with_tone(part[0], "2")
                elif index == 1 and part and not _all_third_tone(part) and part[0][-1:] == "3" and parts[0] and parts[0][-1][-1:] == "3":
                    parts[0][-1] = _with_tone(parts[0][-1], "2")
            finals = parts[0] + parts[1]
    elif len(word) == 4:
        halves = [finals[:2], finals[2:]]
        finals = []
        for half in halves:
            if _all_third_tone(half):
                half[0] = _with_tone(half[0], "2")
            finals += half
    return finals


def modify_tones(word: str, pos: str, finals: list[str]) -> list[str]:
    """Apply the sandhi rules to one word's finals (a new list)."""
    finals = list(finals)
    finals = _bu_sandhi(word, finals)
    finals = _yi_sandhi(word, finals)
    finals = _neutral_sandhi(word, pos, finals)
    return _third_tone_sandhi(word, finals)


def _merge_bu(segments: list[Segment]) -> list[Segment]:
    merged: list[Segment] = []
    pending_bu = False
    for word, pos in segments:
        if pending_bu:
            word = "不" + word
        pending_bu = word == "不"
        if not pending_bu:
            merged.append([word, pos])
    if pending_bu:
        merged.append(["不", "d"])
    return merged


def _merge_yi(segments: list[Segment]) -> list[Segment]:
    merged: list[Segment] = []
    index = 0
    while index < len(segments):
        word, pos = segments[index]
        if (merged and word == "一" and index + 1 < len(segments)
                and segments[index - 1][0] == segments[index + 1][0] and segments[index - 1][1] == "v"):
            merged[-1][0] = merged[-1][0] + "一" + merged[-1][0]
            index += 2
            continue
        merged.append([word, pos])
        index += 1
    result: list[Segment] = []
    for word, pos in merged:
        if result and result[-1][0] == "一":
            result[-1][0] += word
        else:
            result.append([word, pos])
    return result


def _merge_reduplication(segments: list[Segment]) -> list[Segment]:
    merged: list[Segment] = []
    for word, pos in segments:
        if merged and word == merged[-1][0]:
            merged[-1][0] += word
        else:
            merged.append([word, pos])
    return merged


def _merge_third_tones(segments: list[Segment], whole_words: bool) -> list[Segment]:
    """Join neighbours that are both all third tone (or meet at third tones) into one word of <= 3 characters."""
    finals = [finals_of(word) for word, _ in segments]
    merged: list[Segment] = []
    joined_previous = False
    for index, (word, pos) in enumerate(segments):
        previous = finals[index - 1] if index else None
        if whole_words:
            meets = previous is not None and _all_third_tone(previous) and _all_third_tone(finals[index])
        else:
            meets = previous is not None and bool(previous) and bool(finals[index]) \
                and previous[-1][-1:] == "3" and finals[index][0][-1:] == "3"
        prev_word = segments[index - 1][0] if index else ""
        if meets and not joined_previous and not (len(prev_word) == 2 and prev_word[0] == prev_word[1]) \
                and len(prev_word) + len(word) <= 3:
            merged[-1][0] += word
            joined_previous = True
        else:
            merged.append([word, pos])
            joined_previous = False
    return merged


def _merge_er(segments: list[Segment]) -> list[Segment]:
    merged: list[Segment] = []
    for word, pos in segments:
        if merged and word == "儿" and merged[-1][0] != "#":
            merged[-1][0] += word
        else:
            merged.append([word, pos])
    return merged


def merge_for_sandhi(segments: list[tuple[str, str]]) -> list[Segment]:
    """Join jieba words the sandhi rules must see together (不+word, 听一听, reduplications, 3-3 chains, 儿)."""
    merged = _merge_bu([[word, pos] for word, pos in segments])
    merged = _merge_yi(merged)
    merged = _merge_reduplication(merged)
    merged = _merge_third_tones(merged, whole_words=True)
    merged = _merge_third_tones(merged, whole_words=False)
    return _merge_er(merged)

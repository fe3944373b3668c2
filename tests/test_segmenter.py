"""Clause-first incremental segmentation in zh, en, ja and mixed text."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings, strategies as st

from agent_tts.text.segmenter import Segmenter, SegmenterOptions, segment_stream, segment_text


def fed_in_pieces(text: str, cuts: list[int], options: SegmenterOptions | None = None) -> list[str]:
    segmenter = Segmenter(options)
    units: list[str] = []
    previous = 0
    for cut in sorted(set(cuts)) + [len(text)]:
        units += segmenter.feed(text[previous:cut])
        previous = cut
    return units + segmenter.flush()


@pytest.mark.parametrize("text, expected", [
    # zh: the first clause once it holds 6 characters, then sentence ends
    ("欢迎来到我们的客服中心，请问有什么可以帮您？我们马上处理。",
     ["欢迎来到我们的客服中心，", "请问有什么可以帮您？", "我们马上处理。"]),
    ("你好，欢迎光临。", ["你好，欢迎光临。"]),  # "你好，" is too short to go first
    ("这件衣服打八折，只要199.5元，非常划算。", ["这件衣服打八折，", "只要199.5元，非常划算。"]),
    # en: 4 words before the first comma
    ("Thanks for calling us today, how can I help? I am here.",
     ["Thanks for calling us today,", "how can I help?", "I am here."]),
    ("Hi, I am Bob. Nice to meet you.", ["Hi, I am Bob.", "Nice to meet you."]),
    # ja
    ("こんにちは、今日はいい天気ですね。散歩に行きましょう！",
     ["こんにちは、今日はいい天気ですね。", "散歩に行きましょう！"]),
    ("ご注文ありがとうございます、すぐに発送します。", ["ご注文ありがとうございます、", "すぐに発送します。"]),
    # mixed
    ("今天我们来聊聊GPT-SoVITS这个project，它的效果非常好。Really good, right? 对吧？",
     ["今天我们来聊聊GPT-SoVITS这个project，", "它的效果非常好。", "Really good, right?", "对吧？"]),
])
def test_units(text: str, expected: list[str]) -> None:
    assert segment_text(text) == expected


@pytest.mark.parametrize("text", [
    "The price rose by 3.5 percent to 1,000 dollars at 7:30 in the morning today.",
    "Open https://example.com/docs/v1.2/index.html?a=1,b=2 in your browser right now.",
    "Write to john.doe@example.co.uk for the details of the offer today.",
    "J. R. R. Tolkien wrote the book in the U.S. long ago today.",
])
def test_never_cut_inside_numbers_abbreviations_urls_emails(text: str) -> None:
    assert segment_text(text) == [text]


def test_abbreviations_do_not_end_units() -> None:
    assert segment_text("Dr. Smith and Mrs. Jones met Prof. Lee, e.g. at lunch, i.e. around noon. Then left.") == [
        "Dr. Smith and Mrs. Jones met Prof. Lee,", "e.g. at lunch, i.e. around noon.", "Then left."]


def test_later_units_wait_for_sentence_ends() -> None:
    units = segment_text("Welcome to the help desk of our shop, first of all, thank you, and then: hello. Bye.")
    assert units == ["Welcome to the help desk of our shop,", "first of all, thank you, and then: hello.", "Bye."]


def test_first_unit_is_emitted_before_the_stream_continues() -> None:
    segmenter = Segmenter()
    assert segmenter.feed("我们的客服中心，") == []  # a closing quote could still follow
    assert segmenter.feed("请") == ["我们的客服中心，"]
    assert segmenter.feed("稍等") == []
    english = Segmenter()
    assert english.feed("Thanks for calling us today,") == []  # could be 1,000: wait for one more char
    assert english.feed(" how") == ["Thanks for calling us today,"]


def test_hard_split_of_run_on_text() -> None:
    options = SegmenterOptions(max_cjk_chars=20, max_words=10)
    chinese = segment_text("很" * 45, options)
    assert [len(u) for u in chinese] == [20, 20, 5]
    english = segment_text(" ".join(f"word{i}" for i in range(25)), options)
    assert [len(u.split()) for u in english] == [10, 10, 5]
    mixed = segment_text("我们" * 9 + "很GPTSoVITS好好", options)
    assert mixed == ["我们" * 9 + "很", "GPTSoVITS好好"]  # the word that overflows starts the next unit


def test_text_without_spaces_or_marks_is_bounded() -> None:
    options = SegmenterOptions(max_cjk_chars=20, max_words=10, max_chars=50)
    segmenter = Segmenter(options)
    units = [unit for _ in range(100) for unit in segmenter.feed("x" * 100)] + segmenter.flush()
    assert "".join(units) == "x" * 10_000
    assert max(len(unit) for unit in units) == 50


def test_hard_split_prefers_the_last_clause_boundary() -> None:
    options = SegmenterOptions(max_cjk_chars=20, max_words=10)
    units = segment_text("第一句话说完了，" + "很" * 3 + "，" + "长" * 30 + "。", options)
    assert units[0] == "第一句话说完了，"
    assert units[1] == "很很很，"


def test_punctuation_only_and_empty_units_are_dropped() -> None:
    assert segment_text("") == []
    assert segment_text("... !!! ，。") == []
    assert segment_text("Okay. ... Next one here.") == ["Okay.", "Next one here."]
    assert segment_text("好的。，，然后呢？") == ["好的。", "然后呢？"]


def test_closing_quotes_stay_with_their_sentence() -> None:
    assert segment_text("“Quoted sentence.” Next one here.") == ["“Quoted sentence.”", "Next one here."]
    assert segment_text("他说：「我们走吧。」然后离开了。") == ["他说：「我们走吧。」", "然后离开了。"]


def test_line_breaks_end_units() -> None:
    assert segment_text("First item here\nSecond item here") == ["First item here", "Second item here"]


def test_reset_drops_buffered_text() -> None:
    segmenter = Segmenter()
    segmenter.feed("half a sentence that was interr")
    segmenter.reset()
    assert segmenter.feed("New turn here. ") == ["New turn here."]


async def test_async_wrapper_yields_units_as_deltas_arrive() -> None:
    seen_before_end: list[str] = []

    async def deltas():
        for delta in ["我们的客服", "中心，请", "问有什么可以", "帮您？"]:
            yield delta
            await asyncio.sleep(0)

    async for unit in segment_stream(deltas()):
        seen_before_end.append(unit)
    assert seen_before_end == ["我们的客服中心，", "请问有什么可以帮您？"]


ALPHABET = st.sampled_from(list("abc xyz 123 .,;:!?。，、！？…\"”」\n") + ["很", "好", "の", "Dr.", "3.5", "e.g.", "http://a.b/c"])


PROPERTY_OPTIONS = SegmenterOptions(max_cjk_chars=15, max_words=8, max_chars=40)


@settings(max_examples=300, deadline=None)
@given(st.lists(ALPHABET, max_size=80).map("".join), st.lists(st.integers(0, 400), max_size=12))
def test_units_do_not_depend_on_how_the_stream_is_cut(text: str, cuts: list[int]) -> None:
    options = PROPERTY_OPTIONS
    whole = segment_text(text, options)
    assert fed_in_pieces(text, [c for c in cuts if c <= len(text)], options) == whole


@settings(max_examples=300, deadline=None)
@given(st.lists(ALPHABET, max_size=80).map("".join))
def test_no_speakable_character_is_lost_or_duplicated(text: str) -> None:
    units = segment_text(text, PROPERTY_OPTIONS)
    speakable = [c for c in text if c.isalnum()]
    assert [c for unit in units for c in unit if c.isalnum()] == speakable

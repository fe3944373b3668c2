"""Whatever text an LLM emits, the frontend returns the speakable part (or nothing) and never raises."""

from __future__ import annotations

import logging
import os

import pytest
from hypothesis import given, settings, strategies as st

from agent_tts.text.chinese.normalize import normalize_chinese
from agent_tts.text.english.normalize import normalize_english
from agent_tts.text.frontend import TextFrontend
from agent_tts.text.markdown import strip_markdown
from agent_tts.text.symbols import symbol_table

EXAMPLES = int(os.environ.get("AGENT_TTS_FRONTEND_EXAMPLES", "2000"))
# Phones per input character can reach ~10 ("0%" -> Z IH1 R OW0 P ER0 S EH1 N T), plus the leading pause.
PHONES_PER_CHAR = 12
PHONES_OVERHEAD = 4

TRICKY_PIECES = [
    "1,000", "3.5", "-7", "$", "$12.99", "£3", "€", "%", "85%", "12:30", "7:30 p.m.", "1/0", "0/0", "2024年", "3月",
    "13800138000", "555-0199", "99999999999999999999999", "0.0.0.0", "1.2.3", "..", "...", "…", "——", "--", "-",
    "Dr.", "e.g.", "U.S.A.", "www.example.com", "a@b.c", "https://x.io/a?b=c", "'", "’", "\"", "“", "”",
    "😀", "👍🏽", "🇨🇳", "❤️", "**bold**", "_it_", "# Title", "```code```", "- item", "> quote", "[link](url)",
    "\x00", "\x07", "\x1b[31m", "\u200b", "\u202e", "\ufeff", "\t", "\n", "\r\n", " ", "  ",
    "Привет", "مرحبا", "한국어", "ภาษาไทย", "Ελληνικά", "ｶﾀｶﾅ", "ＡＢＣ１２３", "①", "Ⅷ", "½", "²", "ß", "é", "İ", "ﬁ",
    "15.5元", "￥1,299.00", "3.5折", "订单号", "20231108", "尾号", "138****5678", "12-3-4567", "20GB", "km/h", "-5℃",
    "‰", "3-5天", "10~20", "2/3", "2024/3/15", "下午2:30", "第2名", "2个", "RTX 4090", "GPT-4", "7x24", "99+",
    "你好", "行长", "一", "不", "儿", "嗯", "々", "〆", "ー", "こんにちは", "カタカナ", "東京", "Hello", "NASA", "iPhone",
    "a", "A", "I", "OK", "x", "zzzzzzzzzz", "Blorptastic", ",", "。", "！", "？", "、", "：", "；", "(", ")", "《", "》",
]
LANGUAGES = ["zh", "en", "ja", "auto"]

texts = st.one_of(
    st.text(max_size=120),
    st.lists(st.sampled_from(TRICKY_PIECES), max_size=25).map("".join),
    st.lists(st.one_of(st.sampled_from(TRICKY_PIECES), st.text(max_size=8)), max_size=15).map(" ".join),
)


class _ErrorRecorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def frontend() -> TextFrontend:
    engine = TextFrontend()
    engine.warm_up()
    return engine


def check_result(frontend: TextFrontend, text: str, language: str) -> None:
    recorder = _ErrorRecorder()
    logger = logging.getLogger("agent_tts")
    logger.addHandler(recorder)
    try:
        result = frontend(text, language)
    finally:
        logger.removeHandler(recorder)
    assert not recorder.records, f"{language} {text!r}: {recorder.records[0].getMessage()}"
    assert len(result.phone_ids) == len(result.phones)
    assert all(0 <= index < len(symbol_table("v2")) for index in result.phone_ids)
    assert len(result.phones) <= PHONES_PER_CHAR * len(text) + PHONES_OVERHEAD, (language, text, result.phones)
    for part in result.parts:
        assert part.phones, (language, text)
        if part.word2ph is not None:
            assert len(part.word2ph) == len(part.norm_text) and sum(part.word2ph) == len(part.phones), (text, part)


@settings(max_examples=EXAMPLES, deadline=None)
@given(text=texts, language=st.sampled_from(LANGUAGES))
def test_any_text_gives_bounded_valid_phones(frontend, text, language):
    check_result(frontend, text, language)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("text", ["", " ", "\n\t ", "😀😀😀", "...!!!", "，。！？", "\x00\x07\x1b", "Привет мир",
                                  "مرحبا بالعالم", "\u200b\ufeff"])
def test_nothing_speakable_gives_silence(frontend, text, language):
    check_result(frontend, text, language)
    assert frontend(text, language).is_silent


def test_markdown_is_read_without_its_marks(frontend):
    result = frontend("## Title\n**Hello** _there_, see [the docs](http://a.io).\n- item `x`", "en")
    assert result.norm_text == "Title. Hello there, see the docs. item x"
    assert result.phones[:6] == ["T", "AY1", "T", "AH0", "L", "."]
    chinese = frontend("## 标题\n**你好** _世界_，看[文档](http://a.io)。", "zh")
    assert chinese.norm_text == "标题.你好世界,看文档."


def test_triple_backticks_inside_a_line_are_inline_code_not_a_fence():
    # A fence strips its whole line (the info string); mid-line it used to strip the rest of the line too.
    assert strip_markdown("Run ```ls -la``` to list the files.") == "Run ls -la to list the files."
    assert strip_markdown("```ls``` lists the files.") == "ls lists the files."
    assert strip_markdown("Here:\n```python\nprint(1)\n```\n~~~\nDone.") == "Here:\nprint(1)\nDone."


@pytest.mark.parametrize("language, unit", [("zh", "我们今天一起去公园散步"), ("en", "we walk to the park today "),
                                            ("auto", "今天去park散步")])
def test_ten_thousand_characters_without_punctuation(frontend, language, unit):
    text = (unit * (10_000 // len(unit) + 1))[:10_000]
    check_result(frontend, text, language)
    assert len(frontend(text, language).phones) > 1000


def test_normalisers_keep_only_speakable_characters():
    assert set(normalize_chinese("价格¥199😀，《好》!?~")) <= set("价格一百九十九好,!?…-.") | set("元")
    assert set(normalize_english("Price: ¥199 😀 — ok?!")) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'.,?!-… ")

"""The text frontend: any supported text to the phone ids a GPT-SoVITS model reads."""

from __future__ import annotations

import logging
import re

from agent_tts.text.chinese.g2p import PinyinReader, chinese_g2p
from agent_tts.text.chinese.normalize import normalize_chinese, verbalize_numbers
from agent_tts.text.english.g2p import english_g2p_words, lexicon
from agent_tts.text.english.normalize import normalize_english
from agent_tts.text.japanese import japanese_g2p_words
from agent_tts.text.language_split import LANGUAGES, split_by_language
from agent_tts.text.markdown import strip_markdown
from agent_tts.text.phonemes import Phonemes
from agent_tts.text.symbols import phones_to_ids, symbol_table

logger = logging.getLogger(__name__)

# GPT-SoVITS gives text with fewer phones than this a leading "." (a short pause) so the GPT stays stable.
MIN_PHONES = 6
_SPACE_RUN = re.compile(r" {2,}")


class TextFrontend:
    """Turns text (zh, en, ja, or mixed with `auto`) into phones, phone ids and Chinese word2ph.

    Never raises on odd input: what cannot be read is dropped, and text with
    nothing speakable gives an empty result. `pinyin_reader` replaces pypinyin's
    readings with another model's (g2pW), sentence by sentence.
    """

    def __init__(self, version: str = "v2", pinyin_reader: PinyinReader | None = None) -> None:
        symbol_table(version)
        self.version = version
        self.pinyin_reader = pinyin_reader

    def warm_up(self) -> None:
        """Load the dictionaries and models now rather than on the first sentence."""
        for text, language in (("你好，一二三。", "zh"), ("Hello flumbergasts.", "en"), ("こんにちは。", "ja")):
            self(text, language)
        lexicon()

    def __call__(self, text: str, language: str = "auto") -> Phonemes:
        if language not in LANGUAGES:
            split_by_language(text, language)  # raises the one-line error
        text = _SPACE_RUN.sub(" ", strip_markdown(text))
        if not text.strip():
            return Phonemes([], "", language)
        result = self._phonemize(text, language)
        if len(result.phones) < MIN_PHONES:
            # A full stop that cannot be read as a decimal point ("." + "00" would be ".00").
            result = self._phonemize((". " if language == "en" else "。") + text, language)
        return result

    def _phonemize(self, text: str, language: str) -> Phonemes:
        # Numbers in a Chinese sentence are read in Chinese, letters and all (20GB -> 二十G, iPhone 15 -> iPhone 十五).
        spans = split_by_language(text, language, rewrite_chinese=verbalize_numbers)
        parts = [self._clean(span.text, span.language) for span in spans]
        parts = [part for part in parts if part.phones]
        phones = [phone for part in parts for phone in part.phones]
        word2ph = parts[0].word2ph if len(parts) == 1 else None
        return Phonemes(
            phones=phones,
            norm_text="".join(part.norm_text for part in parts),
            language=language,
            word2ph=word2ph,
            phone_ids=phones_to_ids(phones, self.version),
            parts=parts,
            word_phones=[entry for part in parts for entry in part.word_phones],
        )

    def _clean(self, text: str, language: str) -> Phonemes:
        try:
            if language == "zh":
                norm_text = normalize_chinese(text)
                phones, word2ph = chinese_g2p(norm_text, self.pinyin_reader)
                characters = [char for char in norm_text if not char.isspace()]
                words = list(zip(characters, word2ph)) if len(characters) == len(word2ph) else [(norm_text, len(phones))]
                return Phonemes(phones, norm_text, "zh", word2ph, phones_to_ids(phones, self.version), word_phones=words)
            if language == "en":
                norm_text = normalize_english(text)
                words = english_g2p_words(norm_text) if norm_text.strip() else []
            else:
                norm_text = text.strip()
                words = japanese_g2p_words(text)
            phones = [phone for _, word_phones in words for phone in word_phones]
            return Phonemes(phones, norm_text, language, None, phones_to_ids(phones, self.version),
                            word_phones=[(word, len(word_phones)) for word, word_phones in words])
        except Exception:  # noqa: BLE001 - one odd span must not take the sentence down
            logger.exception("could not read %r as %s; it is skipped", text, language)
            return Phonemes([], "", language)

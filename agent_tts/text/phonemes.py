"""The result of turning text into phones."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent_tts.text.symbols import PUNCTUATION


@dataclass
class Phonemes:
    """Phones of one piece of text, with what the models and the BERT need alongside.

    `word2ph[i]` is the number of phones of character i of `norm_text`; it is set
    for Chinese only (the BERT features are per character), else None. A result
    for mixed text keeps its single-language `parts`, in order. `word_phones`
    maps phones to words for every language: the words (Chinese characters,
    English words, OpenJTalk's Japanese words) and marks of `norm_text` in
    order, each with its number of phones; together they cover `phones`.
    """

    phones: list[str]
    norm_text: str
    language: str
    word2ph: list[int] | None = None
    phone_ids: list[int] = field(default_factory=list)
    parts: list["Phonemes"] = field(default_factory=list)
    word_phones: list[tuple[str, int]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.phones)

    def spoken_words(self) -> list[tuple[str, int]]:
        """Each entry of `word_phones` with the index of its first phone."""
        words, first = [], 0
        for word, count in self.word_phones:
            words.append((word, first))
            first += count
        return words

    @property
    def is_silent(self) -> bool:
        """True when there is nothing to say: no phones, or punctuation only."""
        return all(phone in PUNCTUATION for phone in self.phones)

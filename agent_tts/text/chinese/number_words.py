"""The word tables behind the Chinese number rules, kept as data files in agent_tts/text/data/.

- `zh_units.tsv`: unit symbols after a number and how they are said (kg 公斤, GB G, ℃ 摄氏度);
- `zh_measure_words.tsv`: measure words, each with how a lone 2 is said before it (两个, 二号);
- `zh_code_words.tsv`: words before or after digits that make them an identifier (订单号, 室).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from agent_tts.errors import AgentTTSError


@dataclass(frozen=True)
class NumberWords:
    """The tables, read once; patterns list the longest word first so that 年级 wins over 年."""

    units: dict[str, str]
    measure_words: dict[str, str]
    code_words_before: tuple[str, ...]
    code_words_after: tuple[str, ...]

    def pattern(self, words) -> str:
        return "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))

    @property
    def count_measure_words(self) -> tuple[str, ...]:
        """Measure words that count things (a lone 2 before them is 两)."""
        return tuple(word for word, two in self.measure_words.items() if two == "两")


def _rows(name: str) -> list[tuple[str, str]]:
    text = resources.files("agent_tts.text").joinpath(f"data/{name}").read_text(encoding="utf-8")
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise AgentTTSError(f"data/{name} line {number}: expected two tab-separated fields; fix the file")
        rows.append((fields[0], fields[1]))
    return rows


@lru_cache(maxsize=1)
def number_words() -> NumberWords:
    codes = _rows("zh_code_words.tsv")
    return NumberWords(
        units=dict(_rows("zh_units.tsv")),
        measure_words=dict(_rows("zh_measure_words.tsv")),
        code_words_before=tuple(word for word, where in codes if where == "before"),
        code_words_after=tuple(word for word, where in codes if where == "after"),
    )

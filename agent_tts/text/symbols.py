"""The GPT-SoVITS phone symbol tables (v1: 322 symbols, v2: 732), kept as data files."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Sequence

from agent_tts.errors import AgentTTSError

PUNCTUATION = ("!", "?", "…", ",", ".", "-")
UNKNOWN = "UNK"
TABLE_VERSIONS = ("v1", "v2")


@lru_cache(maxsize=None)
def symbol_table(version: str = "v2") -> tuple[str, ...]:
    """The symbols in id order for a model version ("v1" or "v2")."""
    if version not in TABLE_VERSIONS:
        raise AgentTTSError(f"no phone symbol table for version {version!r} (known: {', '.join(TABLE_VERSIONS)})")
    text = resources.files("agent_tts.text").joinpath(f"data/symbols_{version}.txt").read_text(encoding="utf-8")
    return tuple(text.splitlines())


@lru_cache(maxsize=None)
def symbol_ids(version: str = "v2") -> dict[str, int]:
    return {symbol: index for index, symbol in enumerate(symbol_table(version))}


def phones_to_ids(phones: Sequence[str], version: str = "v2") -> list[int]:
    """Map phone symbols to ids; a symbol the table lacks becomes UNK."""
    ids = symbol_ids(version)
    unknown = ids[UNKNOWN]
    return [ids.get(phone, unknown) for phone in phones]

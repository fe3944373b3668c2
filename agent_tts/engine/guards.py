"""Guards against the GPT's failure modes that the reference implementation lets through."""

from __future__ import annotations

from collections.abc import Sequence


def max_tokens_for(n_phones: int, tokens_per_phone: float, ceiling: int, floor: int) -> int:
    """A token budget proportional to the text, so a unit cannot run away (babble until the 1500 cap)."""
    return max(floor, min(ceiling, int(round(n_phones * tokens_per_phone))))


def is_looping(tokens: Sequence[int], max_period: int = 4, min_repeats: int = 10) -> bool:
    """True when the newest tokens repeat one short pattern `min_repeats` times (a stuck GPT)."""
    for period in range(1, max_period + 1):
        span = period * min_repeats
        if len(tokens) < span:
            return False
        tail = tokens[-span:]
        if all(tail[index] == tail[index % period] for index in range(span)):
            return True
    return False

"""Next-token sampling with the reference's semantics, for one row or a batch of rows with their own options.

Order: repetition penalty over every token seen so far (prompt included,
each distinct token once), top-p, temperature, top-k, then a race of
exponentials (equivalent to multinomial sampling, with no device sync).
``top_k=1`` is greedy decoding. What a row has seen is a fixed-shape boolean
mask [rows, vocabulary] updated by `mark_seen`, so nothing grows per token.
Each row draws its noise from its own generator, so a row samples the same
tokens whatever else is in its batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from agent_tts.errors import OptionError


@dataclass(frozen=True)
class SamplingOptions:
    """How the next semantic token is chosen."""

    top_k: int = 15
    """Sample among the k most likely tokens (1: greedy)."""
    top_p: float = 1.0
    """Then keep the smallest set whose probability reaches top_p (1: all)."""
    temperature: float = 1.0
    """Above 1 flatter, below 1 sharper."""
    repetition_penalty: float = 1.35
    """Tokens already seen (the reference prompt included) get their logit divided (or, if negative, multiplied)."""

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise OptionError(f"top_k must be at least 1, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise OptionError(f"top_p must be above 0 and at most 1, got {self.top_p}")
        if self.temperature <= 0:
            raise OptionError(f"temperature must be above 0, got {self.temperature}")
        if self.repetition_penalty <= 0:
            raise OptionError(f"repetition_penalty must be above 0, got {self.repetition_penalty}")


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: torch.Tensor) -> torch.Tensor:
    """``logits`` [B, V] with the tokens ``seen`` [B, V] made less likely by ``penalty`` [B, 1] (a new tensor)."""
    penalised = torch.where(logits < 0, logits * penalty, logits / penalty)
    return torch.where(seen, penalised, logits)


def mark_seen(seen: torch.Tensor, tokens: torch.Tensor) -> None:
    """Record ``tokens`` [B] (or [B, T]) in the rows of ``seen`` [B, V]."""
    seen.scatter_(1, tokens.view(tokens.shape[0], -1), True)


def sample_tokens(logits: torch.Tensor, seen: torch.Tensor, options: Sequence[SamplingOptions],
                  generators: Sequence[torch.Generator | None]) -> tuple[torch.Tensor, torch.Tensor]:
    """(sampled token [B], argmax of the penalised logits [B]) for float32 ``logits`` [B, V], row b with
    ``options[b]`` and noise from ``generators[b]``."""
    device = logits.device

    def column(values: list[float]) -> torch.Tensor:
        return torch.tensor(values, dtype=logits.dtype, device=device).unsqueeze(1)

    logits = apply_repetition_penalty(logits, seen, column([o.repetition_penalty for o in options]))
    best = torch.argmax(logits, dim=-1)
    top_p = [o.top_p for o in options]
    if min(top_p) < 1.0:
        sorted_logits, sorted_indices = torch.sort(logits, descending=True)
        cumulative = torch.cumsum(torch.softmax(sorted_logits, dim=-1), dim=-1)
        remove_sorted = cumulative > column([p if p < 1.0 else float("inf") for p in top_p])
        remove_sorted[:, 0] = False
        logits = logits.masked_fill(remove_sorted.scatter(1, sorted_indices, remove_sorted), -float("inf"))
    logits = logits / column([max(o.temperature, 1e-5) for o in options])
    top_k = [min(o.top_k, logits.shape[-1]) for o in options]
    largest = torch.topk(logits, max(top_k)).values
    pivot = largest.gather(1, torch.tensor(top_k, device=device).unsqueeze(1) - 1)
    probs = torch.softmax(torch.where(logits < pivot, -float("inf"), logits), dim=-1)
    race = torch.empty_like(probs)
    for row, generator in enumerate(generators):
        race[row].exponential_(1, generator=generator)
    return torch.argmax(probs / race, dim=-1), best

"""Next-token sampling with the reference's semantics.

Order: repetition penalty over every previous token (prompt included, each
distinct token once), top-p, temperature, top-k, then a race of exponentials
(equivalent to multinomial sampling, with no device sync). ``top_k=1`` is
greedy decoding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from agent_tts.errors import OptionError


@dataclass(frozen=True)
class SamplingOptions:
    """How the next semantic token is chosen."""

    top_k: int = 15
    top_p: float = 1.0
    temperature: float = 1.0
    repetition_penalty: float = 1.35

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise OptionError(f"top_k must be at least 1, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise OptionError(f"top_p must be above 0 and at most 1, got {self.top_p}")
        if self.temperature <= 0:
            raise OptionError(f"temperature must be above 0, got {self.temperature}")
        if self.repetition_penalty <= 0:
            raise OptionError(f"repetition_penalty must be above 0, got {self.repetition_penalty}")


def apply_repetition_penalty(logits: torch.Tensor, previous: torch.Tensor, penalty: float) -> torch.Tensor:
    """Make tokens already in ``previous`` [B, T] less likely; modifies ``logits`` [B, V] in place."""
    if penalty != 1.0 and previous.shape[-1] > 0:
        score = torch.gather(logits, 1, previous)
        score = torch.where(score < 0, score * penalty, score / penalty)
        logits.scatter_(1, previous, score)
    return logits


def token_probabilities(logits: torch.Tensor, options: SamplingOptions) -> torch.Tensor:
    """Penalised logits [B, V] -> sampling distribution after top-p, temperature and top-k."""
    if options.top_p < 1.0:
        sorted_logits, sorted_indices = torch.sort(logits, descending=True)
        cumulative = torch.cumsum(torch.softmax(sorted_logits, dim=-1), dim=-1)
        remove_sorted = cumulative > options.top_p
        remove_sorted[:, 0] = False
        remove = remove_sorted.scatter(1, sorted_indices, remove_sorted)
        logits = logits.masked_fill(remove, -float("inf"))
    logits = logits / max(options.temperature, 1e-5)
    top_k = min(options.top_k, logits.shape[-1])
    pivot = torch.topk(logits, top_k).values[:, -1:]
    logits = torch.where(logits < pivot, -float("inf"), logits)
    return torch.softmax(logits, dim=-1)


def sample_token(logits: torch.Tensor, previous: torch.Tensor, options: SamplingOptions,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns (sampled token [B], argmax of the penalised logits [B]); ``logits`` is penalised in place."""
    apply_repetition_penalty(logits, previous, options.repetition_penalty)
    probs = token_probabilities(logits, options)
    race = torch.empty_like(probs).exponential_(1, generator=generator)
    return torch.argmax(probs / race, dim=-1), torch.argmax(logits, dim=-1)

"""Autoregressive semantic-token generation, one token per step, against a static KV cache."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import torch

from agent_tts.engine.sampling import SamplingOptions, sample_token
from agent_tts.models.t2s import KVCache, Text2SemanticModel


@dataclass(frozen=True)
class DecodeOptions:
    """Stopping rules around the sampler."""

    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    max_tokens: int = 1500
    # EOS is impossible for the first steps, so a unit never ends before
    # 0.4 s of audio (the reference masks it for 11 steps).
    min_tokens: int = 11
    # Never stop at EOS: generate exactly max_tokens (benchmarks, parity).
    suppress_eos: bool = False


LogitsHook = Callable[[int, torch.Tensor], None]


class StepRunner(Protocol):
    """Runs AR steps on its own cache: (token [1, 1], audio position) -> next-token logits [1, V]."""

    cache: KVCache

    def __call__(self, token: torch.Tensor, audio_position: int) -> torch.Tensor: ...


@dataclass
class _ModelStep:
    """The model's own step on a cache: the step runner when none is given."""

    model: Text2SemanticModel
    cache: KVCache

    def __call__(self, token: torch.Tensor, audio_position: int) -> torch.Tensor:
        return self.model.step(token, audio_position, self.cache)


def positions_needed(phone_ids: torch.Tensor, prompt: torch.Tensor, options: DecodeOptions) -> int:
    """Cache positions one unit can fill: its phones, the prompt and every token it may make."""
    return phone_ids.shape[1] + prompt.shape[1] + options.max_tokens


@torch.inference_mode()
def generate_semantic_tokens(
    model: Text2SemanticModel,
    phone_ids: torch.Tensor,
    bert: torch.Tensor,
    prompt: torch.Tensor,
    options: DecodeOptions = DecodeOptions(),
    *,
    cache: KVCache | None = None,
    step_runner: StepRunner | None = None,
    generator: torch.Generator | None = None,
    on_logits: LogitsHook | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_step_start: Callable[[], None] | None = None,
) -> Iterator[int]:
    """Yield semantic tokens after ``prompt`` until EOS (not yielded) or ``max_tokens``.

    ``phone_ids`` [1, N] and ``bert`` [1, 1024, N] cover the reference text then the
    target text; ``prompt`` [1, P] holds the reference's semantic codes.
    ``on_logits(step, logits)`` sees the raw head output before any masking.
    ``should_stop()`` is checked immediately before the prefill and before every
    AR step; when it returns True the generator ends without starting it.
    ``on_step_start()`` is called as the prefill and each AR step start
    (instrumentation). ``step_runner`` (e.g. a `CudaGraphStep`) replaces
    ``model.step`` for the AR steps, on its own cache.
    """
    eos = model.config.eos
    max_len = positions_needed(phone_ids, prompt, options)
    if step_runner is None:
        step_runner = _ModelStep(model, cache if cache is not None and cache.max_len >= max_len
                                 else model.new_cache(max_len))
    cache = step_runner.cache
    if cache.max_len < max_len:
        raise ValueError(f"the step runner's cache holds {cache.max_len} positions; this unit needs {max_len}")
    history = torch.empty(1, prompt.shape[1] + options.max_tokens, dtype=torch.long, device=prompt.device)
    history[:, : prompt.shape[1]] = prompt
    n_history = prompt.shape[1]

    stop = should_stop or (lambda: False)
    started = on_step_start or (lambda: None)
    if stop():
        return
    started()
    logits = model.prefill(phone_ids, bert, prompt, cache)
    for step in range(options.max_tokens):
        if on_logits is not None:
            on_logits(step, logits)
        logits = logits.float()
        if options.suppress_eos or step < options.min_tokens:
            logits[:, eos] = -float("inf")
        token, best = sample_token(logits, history[:, :n_history], options.sampling, generator)
        token_id = int(token[0])
        if token_id == eos or int(best[0]) == eos:
            return
        yield token_id
        history[0, n_history] = token_id
        n_history += 1
        if step + 1 < options.max_tokens:
            if stop():  # checked right before the step, after the consumer of the token has run
                return
            started()
            logits = step_runner(history[:, n_history - 1:n_history], n_history - 1)

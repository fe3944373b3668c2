"""Autoregressive semantic-token generation for one unit, in the caller's thread: a one-row `BatchDecoder`."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from agent_tts.engine.ar_batch import ARRequest, BatchDecoder, DecodeOptions, LogitsHook
from agent_tts.engine.cancel import CancelFlag
from agent_tts.models.t2s import Text2SemanticModel

__all__ = ["DecodeOptions", "LogitsHook", "generate_semantic_tokens"]


@torch.inference_mode()
def generate_semantic_tokens(
    model: Text2SemanticModel,
    phone_ids: torch.Tensor,
    bert: torch.Tensor,
    prompt: torch.Tensor,
    options: DecodeOptions = DecodeOptions(),
    *,
    decoder: BatchDecoder | None = None,
    generator: torch.Generator | None = None,
    on_logits: LogitsHook | None = None,
    cancel: CancelFlag | None = None,
    should_stop: Callable[[], bool] | None = None,
    align_text: tuple[int, int] | None = None,
    attention: list | None = None,
) -> Iterator[int]:
    """Yield semantic tokens after ``prompt`` until EOS (not yielded) or ``max_tokens``.

    ``phone_ids`` [1, N] and ``bert`` [1, 1024, N] cover the reference text then the
    target text; ``prompt`` [1, P] holds the reference's semantic codes.
    ``on_logits(step, logits)`` sees the raw head output before any masking.
    ``cancel`` (a `CancelFlag`) and ``should_stop()`` are checked immediately
    before the prefill and before every AR step, after the consumer of the
    previous token has run; either ends the generator without starting it.
    ``decoder``: an empty `BatchDecoder` to reuse (its cache) across units.
    ``align_text`` (cache slots of the unit's phones): each yielded token's attention over them is appended to
    ``attention`` first (see `ARRow.attention`).
    """
    decoder = decoder or BatchDecoder(model)
    if decoder.rows:
        raise ValueError("generate_semantic_tokens needs a decoder with no rows in use")
    stop = should_stop or (lambda: False)
    if stop():
        return
    request = ARRequest(phone_ids[0], bert[0], prompt[0], options, generator, cancel, on_logits, align_text)
    row = decoder.add(request)
    try:
        while row is not None:
            if row.tokens and len(row.tokens) > row.steps:
                if attention is not None and align_text is not None:
                    attention.append(row.attention[-1])
                yield row.tokens[-1]
            if row.finished or stop() or not request.may_begin("ar_step"):
                return
            decoder.step([row])
    finally:
        if row is not None:
            decoder.remove(row)

"""The AR decoding of several units at once: a prefill per row (newcomers together), then batched steps.

`BatchDecoder` holds a multi-row KV cache and the rows decoding in it. `add`
prefills a request into a free row and samples its first token (`add_many`
several, in one pass on a torch GPT); `step`
advances the rows it is given by one token in a single call of the model's
step, each row with its own sampling options, random generator, "seen
tokens" mask and stopping rules; `remove` frees a row. Rows join and leave
between any two steps. The rows in use are kept at the front of the cache (a
leaving row's place is taken by the last one), so a step works on a plain
slice of the cache. Rows of the batch that are not stepped (their consumer
is behind) ride along with a dummy token that writes only to their next free
slot, which their next real step overwrites.

This is the only AR loop: `generate_semantic_tokens` drives a one-row
decoder inline, the scheduler (`scheduler.py`) drives a many-row one on its
thread. A token costs one device-to-host read per step for the whole batch.

A request with `align_text` (the cache slots of the unit's own phones) also
gets, with each token, the attention of the query that produced it over
those phones (`ARRow.attention`), from the model's `TextAttentionProbe`: one
more small read per step while such a row is in the batch. A GPT that has no
probe (ONNX Runtime's) gives None instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from agent_tts.engine.cancel import CancelFlag
from agent_tts.engine.sampling import SamplingOptions, mark_seen, sample_tokens
from agent_tts.models.t2s import KVCache, Text2SemanticModel, TextAttentionProbe

LogitsHook = Callable[[int, torch.Tensor], None]
CACHE_GRANULE = 256  # positions: the cache grows in whole granules


@dataclass(frozen=True)
class DecodeOptions:
    """Stopping rules around the sampler."""

    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    max_tokens: int = 1500
    """At most this many tokens."""
    min_tokens: int = 11
    """EOS is impossible for the first steps, so a unit never ends before 0.4 s of audio (the reference masks it
    for 11 steps)."""
    suppress_eos: bool = False
    """Never stop at EOS: generate exactly max_tokens (benchmarks, parity)."""


@dataclass
class ARRequest:
    """One unit to decode: the reference's and the unit's phones [N] with BERT features [1024, N], the reference's
    semantic codes [P], stopping rules, the row's random generator, its cancel flag and an optional logits hook."""

    phone_ids: torch.Tensor
    bert: torch.Tensor
    prompt: torch.Tensor
    options: DecodeOptions = field(default_factory=DecodeOptions)
    generator: torch.Generator | None = None
    cancel: CancelFlag | None = None
    on_logits: LogitsHook | None = None
    align_text: tuple[int, int] | None = None
    """Cache slots [start, end) of the text each token's attention is recorded over (the unit's phones); None:
    no attention is recorded."""

    @property
    def prefill_length(self) -> int:
        """Cache positions its prefill fills: its phones and the prompt."""
        return self.phone_ids.shape[0] + self.prompt.shape[0]

    @property
    def positions_needed(self) -> int:
        """Cache positions the unit can fill: its prefill and every token it may make."""
        return self.prefill_length + self.options.max_tokens

    def may_begin(self, kind: str) -> bool:
        """Whether the next piece of work may start (checked immediately before it)."""
        return self.cancel is None or self.cancel.try_begin(kind)


@dataclass(eq=False)
class ARRow:
    """A request being decoded: its place in the batch, its tokens so far, and whether it has ended."""

    request: ARRequest
    index: int
    tokens: list[int] = field(default_factory=list)
    finished: bool = False
    steps: int = 0  # model steps computed for this row (its prefill not counted)
    # With `align_text`: per token, the attention over that text of the query that produced it (None: no probe).
    attention: list[np.ndarray | None] = field(default_factory=list)

    @property
    def audio_length(self) -> int:
        """Semantic tokens before the next one: the prompt and this row's tokens."""
        return self.request.prompt.shape[0] + len(self.tokens)


class StepRunner(Protocol):
    """Runs the model's step over the first ``rows`` rows of a cache: tokens, audio positions, slots [rows] ->
    logits [rows, V], of which the rows listed in ``stepping`` matter (the others ride along). The eager runner
    attends over the filled prefix; a CUDA-graph runner over the whole cache; ONNX Runtime's steps the rows
    listed, one at a time. A ``probe`` (only given to runners of a torch GPT) is passed to the model's step, which
    fills its weights."""

    def __call__(self, cache: KVCache, rows: int, tokens: torch.Tensor, positions: torch.Tensor,
                 slots: torch.Tensor, stepping: list[int], probe: TextAttentionProbe | None = None
                 ) -> torch.Tensor: ...


class EagerStep:
    """The model's step as it is, attending over the slots filled so far (the least work; shapes vary)."""

    def __init__(self, gpt: Text2SemanticModel) -> None:
        self.gpt = gpt

    def __call__(self, cache: KVCache, rows: int, tokens: torch.Tensor, positions: torch.Tensor,
                 slots: torch.Tensor, stepping: list[int], probe: TextAttentionProbe | None = None) -> torch.Tensor:
        kv_len = max(cache.lengths[:rows]) + 1
        return self.gpt.step(tokens.unsqueeze(1), positions, slots, cache.view(rows, kv_len), probe=probe)


def default_step_runner(gpt) -> StepRunner:
    """The model's step as it is, or the runner a backend brings (`make_step_runner`, ONNX Runtime's)."""
    make = getattr(gpt, "make_step_runner", None)
    return make() if make is not None else EagerStep(gpt)


class BatchDecoder:
    """Several units decoding at once over one KV cache (see the module docstring)."""

    @torch.inference_mode()
    def __init__(self, gpt: Text2SemanticModel, runner: StepRunner | None = None, rows: int = 1,
                 max_len: int = CACHE_GRANULE) -> None:
        self.gpt = gpt
        self.runner = runner or default_step_runner(gpt)
        # The layers whose attention a probe averages (all of them); only a torch GPT has the probe.
        self.probe_layers: tuple[int, ...] | None = (tuple(range(gpt.config.num_layers))
                                                     if isinstance(gpt, Text2SemanticModel) else None)
        self.cache = gpt.new_cache(_granules(max_len), rows)
        self._device = getattr(self.cache, "k", torch.empty(0)).device  # ONNX Runtime's caches: the CPU
        self.rows: list[ARRow] = []
        self.eos = gpt.config.eos
        self.seen = torch.zeros(rows, gpt.config.vocab_size, dtype=torch.bool, device=self.device)
        self.steps = 0  # batched steps run

    @property
    def device(self) -> torch.device:
        """Where the decoder's own tensors (tokens, masks, sampling) live."""
        return self._device

    def _admission_positions(self, request: ARRequest) -> int:
        """Cache positions a new row needs when it joins. A torch `KVCache` grows as rows fill it (`_grow_for`),
        so a row needs its prefill and one step's slot: reserving every token a unit may make (1500 by default)
        made the first burst of 8 rows zero 1.6 GB in fp32, and a long unit after it reallocate every row, a
        stall of about a second for every stream. ONNX Runtime's per-row buffers are bound by address under a
        decoding row, so they are sized for the whole unit at once."""
        if isinstance(self.cache, KVCache):
            return request.prefill_length + 1
        return request.positions_needed

    def _make_room(self, positions: int, newcomers: int = 1) -> None:
        rows = len(self.rows) + newcomers
        if positions > self.cache.max_len or rows > self.cache.rows:
            self.cache = self.cache.resized(_granules(positions), max(rows, 2 * self.cache.rows))
        if self.seen.shape[0] < self.cache.rows:
            seen = torch.zeros(self.cache.rows, self.seen.shape[1], dtype=torch.bool, device=self.seen.device)
            seen[: self.seen.shape[0]] = self.seen
            self.seen = seen

    def _grow_for(self, width: int) -> None:
        """Room for one more position in each of the first `width` rows; the cache doubles in length when full,
        so a unit of n tokens copies its cache O(log n) times."""
        needed = max(self.cache.lengths[:width]) + 1
        if needed > self.cache.max_len:
            self.cache = self.cache.resized(_granules(max(needed, 2 * self.cache.max_len)), self.cache.rows)

    @torch.inference_mode()
    def add(self, request: ARRequest) -> ARRow | None:
        """Prefill `request` into a new row and sample its first token (None if it was cancelled first)."""
        return self.add_many([request])[0]

    @torch.inference_mode()
    def add_many(self, requests: list[ARRequest]) -> list[ARRow | None]:
        """Prefill `requests` into new rows and sample each one's first token; None for a request cancelled first.

        A torch GPT prefills them in one pass (`prefill_ragged`), which costs less than one pass each where
        the products of a single prefill's rows are far from the CPU's peak (eight prefills in bf16 on an
        AMX Xeon: 0.73-0.85 of the time); other GPTs one at a time.
        """
        begun = [request.may_begin("prefill") for request in requests]
        admitted = [request for request, ok in zip(requests, begun) if ok]
        if hasattr(self.gpt, "prefill_ragged"):
            groups = [admitted] if admitted else []
        else:
            groups = [[request] for request in admitted]
        made = iter([row for group in groups for row in self._prefill(group)])
        return [next(made) if ok else None for ok in begun]

    def _prefill(self, requests: list[ARRequest]) -> list[ARRow]:
        self._make_room(max(self._admission_positions(request) for request in requests), len(requests))
        first = len(self.rows)
        rows = [ARRow(request, first + offset) for offset, request in enumerate(requests)]
        self.rows += rows
        lengths = [request.prefill_length for request in requests]
        at = list(range(len(rows)))
        probe = self._probe(rows, at, len(rows))
        extra = {} if probe is None else {"probe": probe}
        if len(requests) == 1:
            request = requests[0]
            logits = self.gpt.prefill(request.phone_ids[None].to(self.device), request.bert[None].to(self.device),
                                      request.prompt[None].to(self.device),
                                      self.cache.prefill_view(first, 1, lengths[0]), **extra)
        else:
            logits = self.gpt.prefill_ragged([request.phone_ids.to(self.device) for request in requests],
                                             [request.bert.to(self.device) for request in requests],
                                             [request.prompt.to(self.device) for request in requests],
                                             self.cache.prefill_view(first, len(rows), max(lengths)), **extra)
        for row, length in zip(rows, lengths):
            self.cache.lengths[row.index] = length
            self.seen[row.index] = False
            mark_seen(self.seen[row.index: row.index + 1], row.request.prompt[None].to(self.device))
        self._sample(rows, logits, self._attention(rows, probe, at))
        return rows

    def _probe(self, rows: list[ARRow], at: list[int], width: int) -> TextAttentionProbe | None:
        """A probe over the text spans of those of `rows` that ask for one (`rows[k]` at batch row `at[k]` of a
        pass over `width` rows), or None."""
        if self.probe_layers is None or not any(row.request.align_text for row in rows):
            return None
        bounds = [[0, 0] for _ in range(width)]
        for index, row in zip(at, rows):
            if row.request.align_text:
                bounds[index] = list(row.request.align_text)
        spans = [row.request.align_text for row in rows if row.request.align_text]
        window = (min(span[0] for span in spans), max(span[1] for span in spans))
        start, end = torch.tensor(bounds, dtype=torch.long, device=self.device).unbind(1)
        return TextAttentionProbe(start, end, self.probe_layers, window)

    @staticmethod
    def _attention(rows: list[ARRow], probe: TextAttentionProbe | None, at: list[int]) -> list[np.ndarray | None]:
        """Each row's attention over its text from the probe (batch row `at[k]` for `rows[k]`)."""
        weights = None if probe is None or probe.weights is None else probe.weights.float().cpu().numpy()
        spans = [row.request.align_text for row in rows]
        return [weights[index, span[0]:span[1]].copy() if weights is not None and span else None
                for index, span in zip(at, spans)]

    @torch.inference_mode()
    def step(self, rows: list[ARRow]) -> None:
        """Advance each of `rows` (all unfinished, all in this batch) by one token; the others ride along."""
        if not rows:
            return
        width = max(row.index for row in rows) + 1
        self._grow_for(width)
        tokens = torch.zeros(width, dtype=torch.long)
        positions = torch.zeros(width, dtype=torch.long)
        slots = torch.tensor(self.cache.lengths[:width], dtype=torch.long)
        for row in rows:
            tokens[row.index] = row.tokens[-1]
            positions[row.index] = row.audio_length - 1
        probe = self._probe(rows, [row.index for row in rows], width)
        extra = {} if probe is None else {"probe": probe}
        logits = self.runner(self.cache, width, tokens.to(self.device), positions.to(self.device),
                             slots.to(self.device), [row.index for row in rows], **extra)
        self.steps += 1
        for row in rows:
            self.cache.lengths[row.index] += 1
            row.steps += 1
        self._sample(rows, logits[torch.tensor([row.index for row in rows], device=self.device)],
                     self._attention(rows, probe, [row.index for row in rows]))

    def _sample(self, rows: list[ARRow], logits: torch.Tensor, attention: list[np.ndarray | None]) -> None:
        """Sample each row's next token from its logits [len(rows), V] (the query's attention goes with it); rows
        that end are marked finished."""
        for position, row in enumerate(rows):
            if row.request.on_logits is not None:
                row.request.on_logits(len(row.tokens), logits[position: position + 1])
        logits = logits.float().clone()  # the hook may keep the raw logits
        no_eos = torch.tensor([row.request.options.suppress_eos or len(row.tokens) < row.request.options.min_tokens
                               for row in rows], device=logits.device)
        logits[:, self.eos] = torch.where(no_eos, -float("inf"), logits[:, self.eos])
        index = torch.tensor([row.index for row in rows], device=logits.device)
        seen = self.seen[index]
        token, best = sample_tokens(logits, seen, [row.request.options.sampling for row in rows],
                                    [row.request.generator for row in rows])
        ended = (token == self.eos) | (best == self.eos)
        self.seen[index] = seen.scatter(1, token.unsqueeze(1), True)
        for row, weights, (token_id, eos) in zip(rows, attention, torch.stack([token, ended.long()], dim=1).tolist()):
            if eos:
                row.finished = True
                continue
            row.tokens.append(token_id)
            if row.request.align_text:
                row.attention.append(weights)
            if len(row.tokens) >= row.request.options.max_tokens:
                row.finished = True

    @torch.inference_mode()
    def remove(self, row: ARRow) -> None:
        """Free `row`'s place; the last row moves into it."""
        last = self.rows.pop()
        if last is not row:
            self.cache.move_row(last.index, row.index)
            self.seen[row.index] = self.seen[last.index]
            last.index = row.index
            self.rows[row.index] = last
        self.cache.lengths[len(self.rows)] = 0


def _granules(positions: int) -> int:
    return -(-positions // CACHE_GRANULE) * CACHE_GRANULE

"""The batched AR step captured as CUDA graphs: one capture per batch width, replayed for every later step.

`CudaGraphStep` is a `StepRunner` that calls the model's own step over the
whole cache (`kv_len` = the cache's size, so every shape is fixed; the mask
derived from the slots hides what is not filled yet) for a width rounded up
to a power of two. The first step of a width captures it; later steps copy
their tokens, positions and slots into the graph's input tensors and replay
it: one launch per token instead of a few hundred kernels launched from
Python. A cache that grows (more rows, longer units) drops the captures.
Rows beyond the batch's own are padding: each writes its own next free slot,
as a row riding along in the batch does. A step with a `TextAttentionProbe`
(word timing) is captured on its own, with the probe's spans as inputs and its
weights as an output of the graph.
"""

from __future__ import annotations

import torch

from agent_tts.models.t2s import KVCache, Text2SemanticModel, TextAttentionProbe

WARM_UP_RUNS = 3


class FullCacheStep:
    """A `StepRunner` with every shape fixed: the model's step over the whole cache for all its rows. What a CUDA
    graph captures, runnable anywhere (the CPU tests compare it with the eager step)."""

    def __init__(self, gpt: Text2SemanticModel) -> None:
        self.gpt = gpt

    def __call__(self, cache: KVCache, rows: int, tokens: torch.Tensor, positions: torch.Tensor,
                 slots: torch.Tensor, stepping: list[int] | None = None,
                 probe: TextAttentionProbe | None = None) -> torch.Tensor:
        return self.gpt.step(tokens.unsqueeze(1), positions, slots, cache.view(rows, cache.max_len), probe=probe)


class _Captured:
    """One captured width (probed or not): its input tensors, its graph and the logits (and weights) it writes."""

    def __init__(self, gpt: Text2SemanticModel, cache: KVCache, width: int, probe_layers: tuple[int, ...] | None
                 ) -> None:
        device = cache.k.device
        self.tokens = torch.zeros(width, dtype=torch.long, device=device)
        self.positions = torch.zeros(width, dtype=torch.long, device=device)
        # Each row's next free slot: what the warm-up runs write there, a real step overwrites.
        self.slots = torch.tensor(cache.lengths[:width], dtype=torch.long, device=device)
        self.probe = None if probe_layers is None else TextAttentionProbe(
            torch.zeros(width, dtype=torch.long, device=device), torch.zeros(width, dtype=torch.long, device=device),
            probe_layers)

        step = FullCacheStep(gpt)

        def run() -> torch.Tensor:
            return step(cache, width, self.tokens, self.positions, self.slots, probe=self.probe)

        side = torch.cuda.Stream(device=device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(WARM_UP_RUNS):
                run()
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.logits = run()


class CudaGraphStep:
    """A `StepRunner` that replays the step as a CUDA graph per batch width (see the module docstring)."""

    def __init__(self, gpt: Text2SemanticModel) -> None:
        if gpt.device.type != "cuda":
            raise ValueError("CUDA graphs need the GPT on a CUDA device")
        self.gpt = gpt
        self._cache: KVCache | None = None
        self._captured: dict[tuple[int, bool], _Captured] = {}

    def __call__(self, cache: KVCache, rows: int, tokens: torch.Tensor, positions: torch.Tensor,
                 slots: torch.Tensor, stepping: list[int], probe: TextAttentionProbe | None = None) -> torch.Tensor:
        if cache is not self._cache:
            self._cache, self._captured = cache, {}
        width = min(cache.rows, 1 << (rows - 1).bit_length())
        captured = self._captured.get((width, probe is not None))
        if captured is None:
            layers = None if probe is None else tuple(sorted(probe.layers))
            captured = self._captured[(width, probe is not None)] = _Captured(self.gpt, cache, width, layers)
        captured.tokens.zero_()
        captured.positions.zero_()
        captured.tokens[:rows].copy_(tokens)
        captured.positions[:rows].copy_(positions)
        captured.slots[:rows].copy_(slots)
        if width > rows:  # padding rows write their own next free slot, which is either unused or overwritten
            captured.slots[rows:].copy_(torch.tensor(cache.lengths[rows:width], dtype=torch.long))
        if probe is not None:
            captured.probe.text_start.zero_()
            captured.probe.text_end.zero_()
            captured.probe.text_start[:rows].copy_(probe.text_start)
            captured.probe.text_end[:rows].copy_(probe.text_end)
        captured.graph.replay()
        if probe is not None:
            probe.weights = captured.probe.weights[:rows]
        return captured.logits[:rows]

"""The GPT's AR step with every shape fixed, and that step captured as a CUDA graph.

`Text2SemanticModel.step` attends over the first `length` cache positions,
so its shapes change every token. `StaticShapeStep` keeps the token, its
audio position and its cache slot in device tensors and attends over the
whole preallocated cache under a mask of the positions up to the slot: the same
logits, with shapes and addresses that never change. `CudaGraphStep`
captures that step once per cache and then replays it: one launch per token
instead of a few hundred kernels launched from Python.
"""

from __future__ import annotations

import torch

from agent_tts.models.t2s import KVCache, Text2SemanticModel


class StaticShapeStep:
    """One AR step over a fixed cache, all inputs in tensors; call it as `step(token, audio_position)`."""

    def __init__(self, gpt: Text2SemanticModel, cache: KVCache) -> None:
        if cache.k.shape[1] != 1:
            raise ValueError("the static-shape step decodes one stream (cache batch 1)")
        self.gpt = gpt
        self.cache = cache
        device = cache.k.device
        self.token = torch.zeros(1, 1, dtype=torch.long, device=device)
        self.audio_position = torch.zeros(1, dtype=torch.long, device=device)
        self.slot = torch.zeros(1, dtype=torch.long, device=device)
        self.cache_positions = torch.arange(cache.max_len, device=device)
        self.position_table = gpt.ar_audio_position.table(cache.max_len, like=cache.k)

    def set_inputs(self, token: torch.Tensor, audio_position: int) -> None:
        cache = self.cache
        if cache.length >= cache.max_len:
            raise RuntimeError(f"KV cache full: {cache.length + 1} > {cache.max_len} positions")
        self.token.copy_(token.reshape(1, 1))
        self.audio_position.fill_(audio_position)
        self.slot.fill_(cache.length)

    def compute(self) -> torch.Tensor:
        """Logits [1, V] for the inputs set; writes this position's keys and values into the cache slot."""
        gpt, cache = self.gpt, self.cache
        x = gpt.ar_audio_embedding(self.token)
        x = x + gpt.ar_audio_position.alpha * self.position_table.index_select(0, self.audio_position)
        filled = (self.cache_positions <= self.slot).view(1, 1, 1, -1)  # this position and every earlier one
        for index, layer in enumerate(gpt.h.layers):
            q, k, v = layer.heads(x)
            cache.k[index].index_copy_(2, self.slot, k)
            cache.v[index].index_copy_(2, self.slot, v)
            attn = torch.nn.functional.scaled_dot_product_attention(q, cache.k[index], cache.v[index], filled)
            x = layer.after_attention(x, attn)
        return gpt.ar_predict_layer(x[:, -1])

    def __call__(self, token: torch.Tensor, audio_position: int) -> torch.Tensor:
        self.set_inputs(token, audio_position)
        logits = self.compute()
        self.cache.length += 1
        return logits


class CudaGraphStep(StaticShapeStep):
    """`StaticShapeStep` captured as a CUDA graph at its first call and replayed for every later token.

    The logits returned are the graph's output buffer: read them before the next call.
    """

    WARM_UP_RUNS = 3

    def __init__(self, gpt: Text2SemanticModel, cache: KVCache) -> None:
        if cache.k.device.type != "cuda":
            raise ValueError("CUDA graphs need the GPT and its cache on a CUDA device")
        super().__init__(gpt, cache)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.logits: torch.Tensor | None = None

    def _capture(self) -> None:
        # Warm-up runs write this slot's keys and values, which the replay below writes again.
        side = torch.cuda.Stream(device=self.cache.k.device)
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(self.WARM_UP_RUNS):
                self.compute()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.logits = self.compute()

    def __call__(self, token: torch.Tensor, audio_position: int) -> torch.Tensor:
        self.set_inputs(token, audio_position)
        if self.graph is None:
            self._capture()
        self.graph.replay()
        self.cache.length += 1
        return self.logits


class GraphedSteps:
    """A stream's CUDA-graph step, kept across units; a new cache and capture only when a unit needs more positions."""

    MIN_POSITIONS = 2048

    def __init__(self, gpt: Text2SemanticModel) -> None:
        self.gpt = gpt
        self.step: CudaGraphStep | None = None

    def for_positions(self, positions: int) -> CudaGraphStep:
        if self.step is None or self.step.cache.max_len < positions:
            self.step = CudaGraphStep(self.gpt, self.gpt.new_cache(max(positions, self.MIN_POSITIONS)))
        return self.step

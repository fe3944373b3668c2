"""The GPT-SoVITS text-to-semantic GPT ("s1"): phones + BERT in, semantic tokens out.

Parameter names and shapes follow the official ``*.ckpt`` files (keys under
``model.``). The transformer is post-norm (``norm_first=False``), ReLU
feed-forward, with the text and audio halves each carrying their own sine
positional embedding scaled by a learned ``alpha``. Decoding runs against a
preallocated :class:`KVCache` of one or more rows: one prefill over text +
prompt per row (`prefill`, or `prefill_ragged` for rows of different lengths
in one pass), then :meth:`Text2SemanticModel.step` advances every row of a
batch by one token. That step is the only one: the engine's eager and
CUDA-graph runs and the ONNX export call it with different `KVStore`s. An
optional `TextAttentionProbe` (off unless passed) makes the same pass also
report how each row's newest query attends over that row's text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class T2SConfig:
    """Sizes of a text-to-semantic GPT, read from the checkpoint."""

    embedding_dim: int
    hidden_dim: int
    num_heads: int
    num_layers: int
    feedforward_dim: int
    phoneme_vocab_size: int
    vocab_size: int
    eos: int
    bert_dim: int = 1024

    @property
    def head_dim(self) -> int:
        return self.hidden_dim // self.num_heads

    @classmethod
    def from_file_config(cls, model: dict, feedforward_dim: int, bert_dim: int = 1024) -> "T2SConfig":
        """From ``config["model"]`` of an s1 file; the widths not stored there are passed in."""
        return cls(
            embedding_dim=int(model["embedding_dim"]),
            hidden_dim=int(model["hidden_dim"]),
            num_heads=int(model["head"]),
            num_layers=int(model["n_layer"]),
            feedforward_dim=feedforward_dim,
            phoneme_vocab_size=int(model["phoneme_vocab_size"]),
            vocab_size=int(model["vocab_size"]),
            eos=int(model["EOS"]),
            bert_dim=bert_dim,
        )


class TokenEmbedding(nn.Module):
    """An embedding table stored as ``word_embeddings``."""

    def __init__(self, dim: int, vocab_size: int) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.word_embeddings(ids)


def sine_rows(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """The sin/cos rows of integer ``positions`` [...] -> [..., dim], computed from the positions themselves.

    The same float32 arithmetic as the classic table (``sin(p * div)`` in the
    even columns, ``cos`` in the odd ones), so eager runs, a CUDA graph and an
    ONNX graph all compute one thing, for any position.
    """
    div_term = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=positions.device)
                         * -(math.log(10000.0) / dim))
    angles = positions.to(torch.float32).unsqueeze(-1) * div_term
    return torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1).flatten(-2)


class SinePositionalEmbedding(nn.Module):
    """``x + alpha * pe[pos]`` with the classic sin/cos rows (no x scaling)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.alpha = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Add the rows of ``positions`` [B, T] (or [T]) to ``x`` [B, T, D]."""
        return x + self.alpha * sine_rows(positions, self.dim).to(x.dtype)


class MultiheadSelfAttention(nn.Module):
    """Self-attention stored like ``nn.MultiheadAttention`` (packed in-projection)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * dim))
        self.out_proj = nn.Linear(dim, dim)

    def in_projection(self, x: torch.Tensor) -> torch.Tensor:
        """Queries, keys and values of ``x`` [B, T, D], packed: [B, T, 3D]."""
        return F.linear(x, self.in_proj_weight, self.in_proj_bias)


class TransformerLayer(nn.Module):
    """One post-norm transformer layer: ``norm1(x + attn(x))``, ``norm2(x + ff(x))``."""

    def __init__(self, dim: int, num_heads: int, feedforward_dim: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.self_attn = MultiheadSelfAttention(dim)
        self.linear1 = nn.Linear(dim, feedforward_dim)
        self.linear2 = nn.Linear(feedforward_dim, dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values of ``x`` [B, T, D], each [B, H, T, head_dim]."""
        batch, length, _ = x.shape
        qkv = self.self_attn.in_projection(x).chunk(3, dim=-1)
        return tuple(part.view(batch, length, self.num_heads, -1).transpose(1, 2) for part in qkv)

    def after_attention(self, x: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
        """Output projection, residuals, norms and feed-forward, given the attention output [B, H, T, head_dim]."""
        batch, length, dim = x.shape
        x = self.norm1(x + self.self_attn.out_proj(attn.transpose(1, 2).reshape(batch, length, dim)))
        return self.norm2(x + self.linear2(F.relu(self.linear1(x))))


class Transformer(nn.Module):
    """The layer stack, stored as ``h.layers.N``."""

    def __init__(self, config: T2SConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerLayer(config.hidden_dim, config.num_heads, config.feedforward_dim)
            for _ in range(config.num_layers)
        )


class TextAttentionProbe:
    """Off unless passed to `prefill`/`step`: how each row's newest query attends over a span of that row's text.

    For every layer in `layers`, the pass also computes the attention of each
    row's last query over the keys at slots ``[text_start[b], text_end[b])``
    (softmax over those keys only, so the weights say where among the text the
    query looks) and leaves their mean over those layers and all heads in
    `weights` [B, S], S the keys the pass attends to (zero outside the span).
    Engines read it as an alignment between generated tokens and text phones.
    The probe's tensors stay where they are, so a CUDA graph can capture a probed step and replay it. A caller
    that knows the spans as numbers passes `window`, slots [lo, hi) holding every row's span: the scores are then
    computed over those keys alone (the same weights; at real size, eight rows, a probe over every key made a
    step 44% slower).
    """

    def __init__(self, text_start: torch.Tensor, text_end: torch.Tensor, layers: tuple[int, ...],
                 window: tuple[int, int] | None = None) -> None:
        self.text_start = text_start
        self.text_end = text_end
        self.layers = frozenset(layers)
        self.window = window
        self.weights: torch.Tensor | None = None
        self.last_query: torch.Tensor | None = None
        """Each row's query [B] whose attention counts; None: the pass's last (`prefill_ragged` sets it)."""
        self._queries: list[torch.Tensor] = []
        self._keys: list[torch.Tensor] = []
        self._key_slots: torch.Tensor | None = None
        self._key_count = 0

    def record(self, layer: int, queries: torch.Tensor, keys: torch.Tensor, key_slots: torch.Tensor) -> None:
        """Keep this layer's last query (or each row's `last_query`) of ``queries`` [B, H, T, d] and its keys
        [B, H, S, d] (the window's). Nothing is computed per layer: `finish` multiplies, masks, normalizes and
        averages every layer's at once (done per layer, the probe's small operations made an AR step of one row
        30% slower at real size)."""
        if layer not in self.layers:
            return
        self._key_slots, self._key_count = key_slots, keys.shape[2]
        if self.window is not None:
            keys = keys[:, :, self.window[0]:self.window[1]]
        if self.last_query is None:
            queries = queries[:, :, -1:]
        else:
            index = self.last_query.view(-1, 1, 1, 1).expand(-1, queries.shape[1], 1, queries.shape[3])
            queries = queries.gather(2, index)
        self._queries.append(queries)
        self._keys.append(keys)

    def finish(self) -> None:
        if not self._queries:
            self.weights = None
            return
        # The keys are views of the cache, which no layer writes after its own: every layer's are still there.
        # In fp32: torch's bf16 product of these small shapes took twice as long as converting first.
        queries, keys = torch.stack(self._queries).float(), torch.stack(self._keys).float()  # [layers, B, H, ., d]
        self._queries, self._keys = [], []
        scores = torch.matmul(queries, keys.transpose(-1, -2)).squeeze(3) / math.sqrt(queries.shape[-1])
        key_slots = self._key_slots if self.window is None else self._key_slots[self.window[0]:self.window[1]]
        inside = (key_slots >= self.text_start.view(-1, 1)) & (key_slots < self.text_end.view(-1, 1))
        scores = scores.masked_fill(~inside[None, :, None], -float("inf"))  # [layers, B, H, S]
        mean = torch.nan_to_num(torch.softmax(scores, dim=-1), nan=0.0).mean(dim=(0, 2))
        if self.window is not None:  # back to [B, S], zero outside the window
            self.weights = mean.new_zeros(mean.shape[0], self._key_count)
            self.weights[:, self.window[0]:self.window[0] + mean.shape[1]] = mean
        else:
            self.weights = mean


class KVStore(Protocol):
    """Where one pass of the transformer keeps and finds keys and values; runners differ only in what they pass.

    ``update(layer, slots, keys, values)`` stores this pass's keys/values
    [B, H, T, head_dim] at cache ``slots`` [B, T] and returns what the
    queries attend to, [B, H, S, head_dim]; ``key_slots()`` [S] says which
    cache slot each of those S keys is at, from which the mask is derived.
    """

    def key_slots(self) -> torch.Tensor: ...

    def update(self, layer: int, slots: torch.Tensor, keys: torch.Tensor,
               values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


class KVCache:
    """Keys and values of every layer for ``rows`` sequences, preallocated to ``max_len`` positions each.

    ``k``/``v``: [layers, rows, heads, max_len, head_dim]. ``lengths[r]`` is how
    many positions of row ``r`` hold valid entries (kept by whoever drives the
    model: the model writes where it is told). Nothing grows per step;
    `resized` makes a larger cache when a longer sequence or more rows come.
    """

    def __init__(self, config: T2SConfig, max_len: int, rows: int = 1,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> None:
        shape = (config.num_layers, rows, config.num_heads, max_len, config.head_dim)
        self.config = config
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.lengths = [0] * rows

    @property
    def max_len(self) -> int:
        return self.k.shape[3]

    @property
    def rows(self) -> int:
        return self.k.shape[1]

    @property
    def length(self) -> int:
        """Valid positions of row 0 (single-sequence use)."""
        return self.lengths[0]

    def view(self, rows: int, kv_len: int) -> "CacheView":
        """The first ``rows`` rows, attending over their first ``kv_len`` slots."""
        return CacheView(self, slice(0, rows), kv_len)

    def row_view(self, row: int, kv_len: int) -> "CacheView":
        return CacheView(self, slice(row, row + 1), kv_len)

    def prefill_view(self, first: int, count: int, length: int) -> "CacheView":
        """Rows ``first..first+count`` for a prefill of ``length`` positions, which fills their slots
        ``0..length`` in order: written as one block (writes by index cost 5-8 times as much at real size)."""
        return CacheView(self, slice(first, first + count), length, prefill=True)

    def resized(self, max_len: int, rows: int) -> "KVCache":
        """A cache of at least this size holding this one's entries (this one if it is big enough)."""
        if max_len <= self.max_len and rows <= self.rows:
            return self
        bigger = KVCache(self.config, max(max_len, self.max_len), max(rows, self.rows), self.k.device, self.k.dtype)
        bigger.k[:, : self.rows, :, : self.max_len] = self.k
        bigger.v[:, : self.rows, :, : self.max_len] = self.v
        bigger.lengths[: self.rows] = self.lengths
        return bigger

    def move_row(self, source: int, target: int) -> None:
        """Copy row ``source``'s valid entries to row ``target`` (to keep the rows in use at the front)."""
        length = self.lengths[source]
        self.k[:, target, :, :length] = self.k[:, source, :, :length]
        self.v[:, target, :, :length] = self.v[:, source, :, :length]
        self.lengths[target] = length

    def reset(self) -> None:
        self.lengths = [0] * self.rows


class CacheView:
    """A `KVStore` over some leading rows of a `KVCache`: writes by index, attends over the first ``kv_len`` slots.

    ``kv_len`` is the only thing runners choose: the filled prefix (eager:
    least work) or the whole cache (fixed shapes, for a CUDA graph).
    """

    def __init__(self, cache: KVCache, rows: slice, kv_len: int, prefill: bool = False) -> None:
        if kv_len > cache.max_len:
            raise RuntimeError(f"KV cache full: {kv_len} > {cache.max_len} positions")
        self.cache = cache
        self.rows = rows
        self.kv_len = kv_len
        self.prefill = prefill  # the pass writes slots 0..kv_len in order (`KVCache.prefill_view`)
        self._batch: torch.Tensor | None = None  # [B, 1] row numbers for the writes, made once per pass

    def key_slots(self) -> torch.Tensor:
        return torch.arange(self.kv_len, device=self.cache.k.device)

    def update(self, layer: int, slots: torch.Tensor, keys: torch.Tensor,
               values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cache_k, cache_v = self.cache.k[layer, self.rows], self.cache.v[layer, self.rows]
        if self.prefill:
            if keys.shape[2] != self.kv_len:
                raise RuntimeError(f"a prefill view of {self.kv_len} slots got {keys.shape[2]} positions")
            cache_k[:, :, : self.kv_len] = keys
            cache_v[:, :, : self.kv_len] = values
            return cache_k[:, :, : self.kv_len], cache_v[:, :, : self.kv_len]
        if self._batch is None or self._batch.shape[0] != slots.shape[0]:
            self._batch = torch.arange(slots.shape[0], device=slots.device).unsqueeze(1)
        batch = self._batch
        cache_k[batch, :, slots] = keys.transpose(1, 2)
        cache_v[batch, :, slots] = values.transpose(1, 2)
        return cache_k[:, :, : self.kv_len], cache_v[:, :, : self.kv_len]


class Text2SemanticModel(nn.Module):
    """The AR GPT: text phones (+ BERT) and a semantic prompt in, next-token logits out.

    One transformer pass (`transform`) serves the prefill and every AR step,
    for any number of rows, in eager runs, CUDA graphs and the ONNX export
    alike: keys and values go where a `KVStore` puts them, and the attention
    mask is derived from cache slots (a query at slot s attends to every slot
    <= s, and a text query also to all of its row's text).
    """

    def __init__(self, config: T2SConfig) -> None:
        super().__init__()
        self.config = config
        self.bert_proj = nn.Linear(config.bert_dim, config.embedding_dim)
        self.ar_text_embedding = TokenEmbedding(config.embedding_dim, config.phoneme_vocab_size)
        self.ar_text_position = SinePositionalEmbedding(config.embedding_dim)
        self.ar_audio_embedding = TokenEmbedding(config.embedding_dim, config.vocab_size)
        self.ar_audio_position = SinePositionalEmbedding(config.embedding_dim)
        self.h = Transformer(config)
        self.ar_predict_layer = nn.Linear(config.hidden_dim, config.vocab_size, bias=False)
        self.attention_dtype: torch.dtype | None = None
        """What the KV cache holds and attention computes in; None: `compute_dtype` (see `cache_dtype`)."""

    @property
    def compute_dtype(self) -> torch.dtype:
        """The dtype activations use (the embeddings' dtype; linear layers may be int8)."""
        return self.ar_audio_embedding.word_embeddings.weight.dtype

    @property
    def cache_dtype(self) -> torch.dtype:
        """The dtype of the KV cache and the attention: `attention_dtype` where it is set (a bf16 GPT on a CPU
        whose fp32 attention is faster: `attention_dtype.py`), else `compute_dtype`."""
        return self.attention_dtype or self.compute_dtype

    @property
    def device(self) -> torch.device:
        return self.ar_audio_embedding.word_embeddings.weight.device

    def new_cache(self, max_len: int, rows: int = 1) -> KVCache:
        return KVCache(self.config, max_len, rows, device=self.device, dtype=self.cache_dtype)

    def embed_text(self, phone_ids: torch.Tensor, bert: torch.Tensor) -> torch.Tensor:
        """phone_ids [B, T] and bert [B, 1024, T] -> [B, T, D] with text positions."""
        x = self.ar_text_embedding(phone_ids) + self.bert_proj(bert.transpose(1, 2))
        return self.ar_text_position(x, torch.arange(phone_ids.shape[1], device=phone_ids.device))

    def embed_audio(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Semantic tokens [B, T] at audio ``positions`` [B, T] (or [T]) -> [B, T, D]."""
        return self.ar_audio_position(self.ar_audio_embedding(tokens), positions)

    def transform(self, x: torch.Tensor, slots: torch.Tensor, kv: KVStore,
                  text_lengths: torch.Tensor | None = None, probe: TextAttentionProbe | None = None) -> torch.Tensor:
        """The transformer over ``x`` [B, T, D] at cache ``slots`` [B, T]; ``text_lengths`` [B] for text queries;
        ``probe`` records the last query's attention over the text (see `TextAttentionProbe`)."""
        key_slots = kv.key_slots()
        allowed = key_slots <= slots.unsqueeze(-1)
        if text_lengths is not None:
            allowed = allowed | (key_slots < text_lengths.view(-1, 1, 1))
        allowed = allowed.unsqueeze(1)
        cache_dtype = self.cache_dtype
        cast = cache_dtype != x.dtype  # a bf16 GPT attending in fp32 (attention_dtype.py)
        for index, layer in enumerate(self.h.layers):
            q, k, v = layer.heads(x)
            if cast:
                q, k, v = q.to(cache_dtype), k.to(cache_dtype), v.to(cache_dtype)
            keys, values = kv.update(index, slots, k, v)
            if probe is not None:
                probe.record(index, q, keys, key_slots)
            attention = F.scaled_dot_product_attention(q, keys, values, allowed)
            x = layer.after_attention(x, attention.to(x.dtype) if cast else attention)
        if probe is not None:
            probe.finish()
        return x

    def embed_prefill(self, phone_ids: torch.Tensor, bert: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        """A prefill's input: text [B, N] (+ BERT [B, 1024, N]), then the semantic prompt [B, P] -> [B, N+P, D]."""
        positions = torch.arange(prompt.shape[1], device=prompt.device)
        return torch.cat([self.embed_text(phone_ids, bert), self.embed_audio(prompt, positions)], dim=1)

    def prefill(self, phone_ids: torch.Tensor, bert: torch.Tensor, prompt: torch.Tensor,
                kv: KVStore, probe: TextAttentionProbe | None = None) -> torch.Tensor:
        """Text [B, N] (+ BERT [B, 1024, N]) and semantic prompt [B, P] into slots ``0..N+P``; last logits [B, V].

        Text attends to all text; prompt positions to all text and causally to the prompt.
        """
        n_text = phone_ids.shape[1]
        x = self.embed_prefill(phone_ids, bert, prompt)
        slots = torch.arange(x.shape[1], device=prompt.device).expand(phone_ids.shape[0], -1)
        text_lengths = torch.full((phone_ids.shape[0],), n_text, dtype=torch.long, device=prompt.device)
        return self.ar_predict_layer(self.transform(x, slots, kv, text_lengths, probe)[:, -1])

    def prefill_ragged(self, phone_ids: Sequence[torch.Tensor], bert: Sequence[torch.Tensor],
                       prompts: Sequence[torch.Tensor], kv: KVStore,
                       probe: TextAttentionProbe | None = None) -> torch.Tensor:
        """`prefill` of rows of different lengths in one pass: row r's text [N_r] (+ BERT [1024, N_r]) and prompt
        [P_r] into its slots ``0..N_r+P_r``; last logits [B, V].

        Each row is laid out as alone, padded at its end to the longest row: every real query attends only to
        slots at or before its own (and to its row's text), so the padding changes nothing the row computes;
        its slots hold junk that the row's own steps overwrite.
        """
        rows = [self.embed_prefill(phones[None], features[None], prompt[None])[0]
                for phones, features, prompt in zip(phone_ids, bert, prompts)]
        x = nn.utils.rnn.pad_sequence(rows, batch_first=True)
        device = x.device
        text_lengths = [phones.shape[0] for phones in phone_ids]
        lengths = [row.shape[0] for row in rows]
        slots = torch.arange(x.shape[1], device=device).expand(x.shape[0], -1)
        last = torch.tensor(lengths, device=device) - 1
        if probe is not None:
            probe.last_query = last
        hidden = self.transform(x, slots, kv, torch.tensor(text_lengths, device=device), probe)
        return self.ar_predict_layer(hidden[torch.arange(x.shape[0], device=device), last])

    def step(self, tokens: torch.Tensor, audio_positions: torch.Tensor, slots: torch.Tensor,
             kv: KVStore, probe: TextAttentionProbe | None = None) -> torch.Tensor:
        """One AR step for every row: token [B, 1] at audio position [B], written at cache slot [B]; logits [B, V]."""
        hidden = self.transform(self.embed_audio(tokens, audio_positions.unsqueeze(1)), slots.unsqueeze(1), kv,
                                probe=probe)
        return self.ar_predict_layer(hidden[:, -1])

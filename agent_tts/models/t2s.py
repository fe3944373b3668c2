"""The GPT-SoVITS text-to-semantic GPT ("s1"): phones + BERT in, semantic tokens out.

Parameter names and shapes follow the official ``*.ckpt`` files (keys under
``model.``). The transformer is post-norm (``norm_first=False``), ReLU
feed-forward, with the text and audio halves each carrying their own sine
positional embedding scaled by a learned ``alpha``. Decoding runs against a
preallocated :class:`KVCache`: one prefill over text + prompt, then one token
per :meth:`Text2SemanticModel.step`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


class SinePositionalEmbedding(nn.Module):
    """``x + alpha * pe[pos]`` with the classic sin/cos table (no x scaling)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.alpha = nn.Parameter(torch.ones(1))
        self._table: torch.Tensor | None = None

    def table(self, length: int, like: torch.Tensor) -> torch.Tensor:
        """The first ``length`` rows of the sin/cos table, on ``like``'s device and dtype."""
        cached = self._table
        if cached is None or cached.shape[0] < length or cached.device != like.device or cached.dtype != like.dtype:
            size = max(length, 4000)
            position = torch.arange(size, dtype=torch.float32).unsqueeze(1)
            div_term = torch.exp(
                torch.arange(0, self.dim, 2, dtype=torch.float32) * -(math.log(10000.0) / self.dim)
            )
            pe = torch.zeros(size, self.dim)
            pe[:, 0::2] = torch.sin(position * div_term)
            pe[:, 1::2] = torch.cos(position * div_term)
            cached = self._table = pe.to(device=like.device, dtype=like.dtype)
        return cached[:length]

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Add the positions ``start .. start + x.shape[1]`` to ``x`` [B, T, D]."""
        pe = self.table(start + x.shape[1], x)[start:]
        return x + self.alpha * pe


class MultiheadSelfAttention(nn.Module):
    """Self-attention stored like ``nn.MultiheadAttention`` (packed in-projection)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * dim))
        self.out_proj = nn.Linear(dim, dim)


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

    def forward(
        self,
        x: torch.Tensor,
        cache_k: torch.Tensor,
        cache_v: torch.Tensor,
        start: int,
        attn_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """Run ``x`` [B, T, D] at positions ``start..start+T``, writing its keys/values into the cache.

        ``cache_k``/``cache_v`` are this layer's [B, H, max_len, head_dim] slices.
        ``attn_mask`` (bool, True = may attend) covers keys ``0..start+T``.
        """
        q, k, v = self.heads(x)
        end = start + x.shape[1]
        cache_k[:, :, start:end] = k
        cache_v[:, :, start:end] = v
        attn = F.scaled_dot_product_attention(q, cache_k[:, :, :end], cache_v[:, :, :end], attn_mask)
        return self.after_attention(x, attn)

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values of ``x`` [B, T, D], each [B, H, T, head_dim]."""
        batch, length, _ = x.shape
        qkv = F.linear(x, self.self_attn.in_proj_weight, self.self_attn.in_proj_bias).chunk(3, dim=-1)
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


class KVCache:
    """Keys and values of every layer, preallocated to ``max_len`` positions.

    ``length`` is how many positions hold valid entries. Decoding writes in place;
    nothing grows per step.
    """

    def __init__(self, config: T2SConfig, max_len: int, batch: int = 1,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> None:
        shape = (config.num_layers, batch, config.num_heads, max_len, config.head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.max_len = max_len
        self.length = 0

    def reset(self) -> None:
        self.length = 0


class Text2SemanticModel(nn.Module):
    """The AR GPT: text phones (+ BERT) and a semantic prompt in, next-token logits out."""

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

    @property
    def compute_dtype(self) -> torch.dtype:
        """The dtype activations and the KV cache use (the embeddings' dtype; linear layers may be int8)."""
        return self.ar_audio_embedding.word_embeddings.weight.dtype

    def new_cache(self, max_len: int, batch: int = 1) -> KVCache:
        weight = self.ar_audio_embedding.word_embeddings.weight
        return KVCache(self.config, max_len, batch, device=weight.device, dtype=weight.dtype)

    def embed_text(self, phone_ids: torch.Tensor, bert: torch.Tensor) -> torch.Tensor:
        """phone_ids [B, T] and bert [B, 1024, T] -> [B, T, D] with text positions."""
        x = self.ar_text_embedding(phone_ids) + self.bert_proj(bert.transpose(1, 2))
        return self.ar_text_position(x)

    def embed_audio(self, tokens: torch.Tensor, start: int) -> torch.Tensor:
        """Semantic tokens [B, T] at audio positions ``start..`` -> [B, T, D]."""
        return self.ar_audio_position(self.ar_audio_embedding(tokens), start)

    def _run(self, x: torch.Tensor, cache: KVCache, attn_mask: torch.Tensor | None) -> torch.Tensor:
        start = cache.length
        if start + x.shape[1] > cache.max_len:
            raise RuntimeError(f"KV cache full: {start + x.shape[1]} > {cache.max_len} positions")
        for index, layer in enumerate(self.h.layers):
            x = layer(x, cache.k[index], cache.v[index], start, attn_mask)
        cache.length = start + x.shape[1]
        return x

    def prefill(self, phone_ids: torch.Tensor, bert: torch.Tensor, prompt: torch.Tensor,
                cache: KVCache) -> torch.Tensor:
        """Process text + semantic prompt from an empty cache; returns the last position's logits.

        Text positions attend to all text; prompt positions attend to all text and
        causally to the prompt.
        """
        cache.reset()
        text = self.embed_text(phone_ids, bert)
        audio = self.embed_audio(prompt, 0)
        n_text, n_audio = text.shape[1], audio.shape[1]
        total = n_text + n_audio
        mask = torch.ones(total, total, dtype=torch.bool, device=text.device)
        mask[:n_text, n_text:] = False
        mask[n_text:, n_text:] = torch.ones(n_audio, n_audio, dtype=torch.bool, device=text.device).tril()
        hidden = self._run(torch.cat([text, audio], dim=1), cache, mask)
        return self.ar_predict_layer(hidden[:, -1])

    def step(self, token: torch.Tensor, audio_position: int, cache: KVCache) -> torch.Tensor:
        """Feed one semantic token [B, 1] at ``audio_position``; returns next-token logits [B, V]."""
        hidden = self._run(self.embed_audio(token, audio_position), cache, None)
        return self.ar_predict_layer(hidden[:, -1])

"""The VITS transformer encoder used by the SoVITS text encoder and MRTE.

Channels-first tensors [B, C, T]. Self-attention layers carry relative
position embeddings (window 4, shared by all heads); masked scores are filled
with -1e4 as in the reference.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of [B, C, T], stored as ``gamma``/``beta``."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.transpose(1, -1), (self.channels,), self.gamma, self.beta, self.eps)
        return x.transpose(1, -1)


class MultiHeadAttention(nn.Module):
    """1x1-conv multi-head attention, optionally with relative positions."""

    def __init__(self, channels: int, out_channels: int, n_heads: int,
                 window_size: int | None = None) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.k_channels = channels // n_heads
        self.window_size = window_size
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, out_channels, 1)
        if window_size is not None:
            self.emb_rel_k = nn.Parameter(torch.zeros(1, 2 * window_size + 1, self.k_channels))
            self.emb_rel_v = nn.Parameter(torch.zeros(1, 2 * window_size + 1, self.k_channels))

    def forward(self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        query, key, value = self.conv_q(x), self.conv_k(context), self.conv_v(context)
        batch, channels, t_key = key.shape
        t_query = query.shape[2]
        query = query.view(batch, self.n_heads, self.k_channels, t_query).transpose(2, 3)
        key = key.view(batch, self.n_heads, self.k_channels, t_key).transpose(2, 3)
        value = value.view(batch, self.n_heads, self.k_channels, t_key).transpose(2, 3)

        query = query / math.sqrt(self.k_channels)
        scores = torch.matmul(query, key.transpose(-2, -1))
        if self.window_size is not None:
            rel_keys = self._relative_embeddings(self.emb_rel_k, t_key)
            rel_logits = torch.matmul(query, rel_keys.unsqueeze(0).transpose(-2, -1))
            scores = scores + _relative_to_absolute(rel_logits)
        if mask is not None:
            scores = scores.masked_fill(mask == 0, -1e4)
        weights = F.softmax(scores, dim=-1)
        output = torch.matmul(weights, value)
        if self.window_size is not None:
            rel_values = self._relative_embeddings(self.emb_rel_v, t_key)
            output = output + torch.matmul(_absolute_to_relative(weights), rel_values.unsqueeze(0))
        output = output.transpose(2, 3).contiguous().view(batch, channels, t_query)
        return self.conv_o(output)

    def _relative_embeddings(self, embeddings: torch.Tensor, length: int) -> torch.Tensor:
        """The 2*length-1 relative embeddings for offsets -(length-1) .. length-1 (zero beyond the window).

        Padded by length-1 on both sides with no branch on the length, so an
        ONNX export stays valid for every length.
        """
        padded = F.pad(embeddings, (0, 0, length - 1, length - 1))
        return padded[:, self.window_size:self.window_size + 2 * length - 1]


def _relative_to_absolute(x: torch.Tensor) -> torch.Tensor:
    """[B, H, L, 2L-1] relative logits -> [B, H, L, L] absolute."""
    batch, heads, length, _ = x.shape
    x = F.pad(x, (0, 1))
    flat = F.pad(x.reshape(batch, heads, length * 2 * length), (0, length - 1))
    return flat.view(batch, heads, length + 1, 2 * length - 1)[:, :, :length, length - 1:]


def _absolute_to_relative(x: torch.Tensor) -> torch.Tensor:
    """[B, H, L, L] absolute weights -> [B, H, L, 2L-1] relative."""
    batch, heads, length, _ = x.shape
    x = F.pad(x, (0, length - 1))
    flat = F.pad(x.reshape(batch, heads, length * length + length * (length - 1)), (length, 0))
    return flat.view(batch, heads, length, 2 * length)[:, :, :, 1:]


class FFN(nn.Module):
    """Two same-padded convolutions with a ReLU between, masked."""

    def __init__(self, channels: int, filter_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.conv_1 = nn.Conv1d(channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, channels, kernel_size)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel_size == 1:
            return x
        return F.pad(x, ((self.kernel_size - 1) // 2, self.kernel_size // 2))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv_1(self._pad(x * x_mask)))
        x = self.conv_2(self._pad(x * x_mask))
        return x * x_mask


class Encoder(nn.Module):
    """Post-norm transformer encoder with relative-position self-attention."""

    def __init__(self, hidden_channels: int, filter_channels: int, n_heads: int, n_layers: int,
                 kernel_size: int, window_size: int = 4) -> None:
        super().__init__()
        self.attn_layers = nn.ModuleList(
            MultiHeadAttention(hidden_channels, hidden_channels, n_heads, window_size) for _ in range(n_layers)
        )
        self.norm_layers_1 = nn.ModuleList(ChannelLayerNorm(hidden_channels) for _ in range(n_layers))
        self.ffn_layers = nn.ModuleList(
            FFN(hidden_channels, filter_channels, kernel_size) for _ in range(n_layers)
        )
        self.norm_layers_2 = nn.ModuleList(ChannelLayerNorm(hidden_channels) for _ in range(n_layers))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        attn_mask = x_mask.unsqueeze(2) * x_mask.unsqueeze(-1)
        x = x * x_mask
        for attn, norm1, ffn, norm2 in zip(self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2):
            x = norm1(x + attn(x, x, attn_mask))
            x = norm2(x + ffn(x, x_mask))
        return x * x_mask

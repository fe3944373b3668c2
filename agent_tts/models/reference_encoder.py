"""The SoVITS reference (style) encoder: a linear spectrogram -> global speaker vector ``ge``."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class LinearNorm(nn.Module):
    """A linear layer stored as ``fc``."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class Mish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.tanh(F.softplus(x))


class ConvNorm(nn.Module):
    """A same-padded 1-D convolution stored as ``conv``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding=(kernel_size - 1) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Conv1dGLU(nn.Module):
    """Residual gated convolution."""

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.channels = channels
        self.conv1 = ConvNorm(channels, 2 * channels, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = torch.split(self.conv1(x), self.channels, dim=1)
        return x + a * torch.sigmoid(b)


class StyleAttention(nn.Module):
    """Residual multi-head self-attention; scores are divided by sqrt(d_model) as in the reference."""

    def __init__(self, n_heads: int, dim: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.head_dim = dim // n_heads
        self.temperature = math.sqrt(dim)
        self.w_qs = nn.Linear(dim, dim)
        self.w_ks = nn.Linear(dim, dim)
        self.w_vs = nn.Linear(dim, dim)
        self.fc = nn.Linear(dim, dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.n_heads, self.head_dim).permute(2, 0, 1, 3).reshape(-1, length, self.head_dim)

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        q, k, v = self._heads(self.w_qs(x)), self._heads(self.w_ks(x)), self._heads(self.w_vs(x))
        scores = torch.bmm(q, k.transpose(1, 2)) / self.temperature
        key_mask = pad_mask.unsqueeze(1).expand(-1, length, -1).repeat(self.n_heads, 1, 1)
        weights = torch.softmax(scores.masked_fill(key_mask, -math.inf), dim=2)
        out = torch.bmm(weights, v).view(self.n_heads, batch, length, self.head_dim)
        out = out.permute(1, 2, 0, 3).reshape(batch, length, -1)
        return self.fc(out) + x


class MelStyleEncoder(nn.Module):
    """Spectrogram [B, bins, T] -> style vector [B, out_dim, 1]."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int = 128, kernel_size: int = 5,
                 n_heads: int = 2) -> None:
        super().__init__()
        self.spectral = nn.Sequential(
            LinearNorm(in_dim, hidden_dim), Mish(), nn.Dropout(0.0),
            LinearNorm(hidden_dim, hidden_dim), Mish(), nn.Dropout(0.0),
        )
        self.temporal = nn.Sequential(Conv1dGLU(hidden_dim, kernel_size), Conv1dGLU(hidden_dim, kernel_size))
        self.slf_attn = StyleAttention(n_heads, hidden_dim)
        self.fc = LinearNorm(hidden_dim, out_dim)

    def forward(self, spec: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``mask`` [B, 1, T] is 1 on valid frames."""
        pad_mask = (mask.int() == 0).squeeze(1)
        x = self.spectral(spec.transpose(1, 2))
        x = self.temporal(x.transpose(1, 2)).transpose(1, 2)
        x = x.masked_fill(pad_mask.unsqueeze(-1), 0)
        x = self.fc(self.slf_attn(x, pad_mask))
        valid = (~pad_mask).sum(dim=1).unsqueeze(1)
        pooled = x.masked_fill(pad_mask.unsqueeze(-1), 0).sum(dim=1) / valid
        return pooled.unsqueeze(-1)

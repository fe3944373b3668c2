"""The SoVITS residual vector quantizer: HuBERT-rate features <-> semantic codes."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class EuclideanCodebook(nn.Module):
    """A codebook stored with its training buffers (``inited``, ``cluster_size``, ``embed_avg``)."""

    def __init__(self, dim: int, codebook_size: int) -> None:
        super().__init__()
        self.register_buffer("inited", torch.ones(1))
        self.register_buffer("cluster_size", torch.zeros(codebook_size))
        self.register_buffer("embed", torch.zeros(codebook_size, dim))
        self.register_buffer("embed_avg", torch.zeros(codebook_size, dim))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, D] -> nearest code index [N]."""
        embed = self.embed.t()
        dist = -(x.pow(2).sum(1, keepdim=True) - 2 * x @ embed + embed.pow(2).sum(0, keepdim=True))
        return dist.max(dim=-1).indices

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return F.embedding(codes, self.embed)


class VectorQuantization(nn.Module):
    def __init__(self, dim: int, codebook_size: int) -> None:
        super().__init__()
        self._codebook = EuclideanCodebook(dim, codebook_size)


class ResidualVectorQuantization(nn.Module):
    def __init__(self, dim: int, codebook_size: int, n_q: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(VectorQuantization(dim, codebook_size) for _ in range(n_q))


class ResidualVectorQuantizer(nn.Module):
    """Features [B, D, T] -> codes [n_q, B, T]; codes [B, n_q, T] -> latents [B, D, T]."""

    def __init__(self, dim: int, codebook_size: int, n_q: int) -> None:
        super().__init__()
        self.vq = ResidualVectorQuantization(dim, codebook_size, n_q)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        batch, dim, length = x.shape
        residual = x.transpose(1, 2).reshape(-1, dim)
        all_codes = []
        for layer in self.vq.layers:
            codes = layer._codebook.encode(residual)
            residual = residual - layer._codebook.decode(codes)
            all_codes.append(codes.view(batch, length))
        return torch.stack(all_codes)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        latents = 0
        for index, layer_codes in enumerate(codes.transpose(0, 1)):
            latents = latents + self.vq.layers[index]._codebook.decode(layer_codes)
        return latents.transpose(1, 2)

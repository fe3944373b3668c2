"""The speaker-verification model v2Pro voices condition on: ERes2NetV2 as GPT-SoVITS builds it.

Upstream loads ``sv/pretrained_eres2netv2w24s4ep4.ckpt`` (a plain state dict)
into ``ERes2NetV2(baseWidth=24, scale=4, expansion=4)`` and uses only its
``forward3`` path: the fused last feature map [B, 2048, 10, T'] flattened over
channel x frequency and averaged over time, a 20480-d vector per clip. The
embedding head (``seg_1``) exists so the file loads strictly; it is never run.
The blocks clip their activations at 20 (a ``Hardtanh(0, 20)``), the stem does not.

Parameter names follow the checkpoint; every size is upstream's fixed architecture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from agent_tts.models.fbank import MEL_BINS, kaldi_fbank

RELU_CLIP = 20.0
SV_EMBEDDING_DIM = 20480


@dataclass(frozen=True)
class ERes2NetV2Config:
    """Upstream's fixed ERes2NetV2 widths (w24 s4, expansion 4)."""

    base_width: int = 24
    scale: int = 4
    expansion: int = 4
    channels: int = 64
    blocks: tuple[int, ...] = (3, 4, 6, 3)
    feature_bins: int = MEL_BINS
    embedding_size: int = 192

    @property
    def embedding_dim(self) -> int:
        """The length of ``forward3``'s output: last stage channels x frequency bins after three halvings."""
        return self.channels * 8 * self.expansion * math.ceil(self.feature_bins / 8)


def clipped_relu(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp(x, 0.0, RELU_CLIP)


class AttentionalFeatureFusion(nn.Module):
    """AFF: a per-position gate in [0, 2] from both inputs mixes ``x`` and ``other`` (weights: ``local_att.*``)."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        inner = channels // reduction
        self.local_att = nn.Sequential(
            nn.Conv2d(channels * 2, inner, 1), nn.BatchNorm2d(inner), nn.SiLU(),
            nn.Conv2d(inner, channels, 1), nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        gate = 1.0 + torch.tanh(self.local_att(torch.cat([x, other], dim=1)))
        return x * gate + other * (2.0 - gate)


class ERes2NetV2Block(nn.Module):
    """Res2Net bottleneck: ``scale`` groups of 3x3 convs, each fed the previous group's output (added, or fused by AFF)."""

    def __init__(self, in_planes: int, planes: int, stride: int, config: ERes2NetV2Config, fused: bool) -> None:
        super().__init__()
        width = int(math.floor(planes * (config.base_width / 64.0)))
        self.width, self.scale = width, config.scale
        out_planes = planes * config.expansion
        self.conv1 = nn.Conv2d(in_planes, width * config.scale, 1, stride=stride, bias=False)
        self.bn1 = nn.BatchNorm2d(width * config.scale)
        self.convs = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1, bias=False) for _ in range(config.scale))
        self.bns = nn.ModuleList(nn.BatchNorm2d(width) for _ in range(config.scale))
        self.fuse_models = nn.ModuleList(AttentionalFeatureFusion(width) for _ in range(config.scale - 1)) \
            if fused else None
        self.conv3 = nn.Conv2d(width * config.scale, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != out_planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        groups = torch.split(clipped_relu(self.bn1(self.conv1(x))), self.width, dim=1)
        outputs = []
        carried = groups[0]
        for index in range(self.scale):
            if index > 0:
                carried = self.fuse_models[index - 1](carried, groups[index]) if self.fuse_models is not None \
                    else carried + groups[index]
            carried = clipped_relu(self.bns[index](self.convs[index](carried)))
            outputs.append(carried)
        out = self.bn3(self.conv3(torch.cat(outputs, dim=1)))
        return clipped_relu(out + self.shortcut(x))


class ERes2NetV2(nn.Module):
    """Log mel filterbank frames [B, T, 80] -> the 20480-d utterance vector v2Pro SoVITS projects (``forward3``)."""

    def __init__(self, config: ERes2NetV2Config = ERes2NetV2Config()) -> None:
        super().__init__()
        self.config = config
        channels, expansion = config.channels, config.expansion
        self.conv1 = nn.Conv2d(1, channels, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self._in_planes = channels
        self.layer1 = self._stage(channels, config.blocks[0], 1, fused=False)
        self.layer2 = self._stage(channels * 2, config.blocks[1], 2, fused=False)
        self.layer3 = self._stage(channels * 4, config.blocks[2], 2, fused=True)
        self.layer4 = self._stage(channels * 8, config.blocks[3], 2, fused=True)
        self.layer3_ds = nn.Conv2d(channels * 4 * expansion, channels * 8 * expansion, 3, padding=1, stride=2,
                                   bias=False)
        self.fuse34 = AttentionalFeatureFusion(channels * 8 * expansion)
        stats_dim = int(config.feature_bins / 8) * channels * 8 * expansion
        self.seg_1 = nn.Linear(stats_dim * 2, config.embedding_size)  # the unused embedding head

    def _stage(self, planes: int, count: int, stride: int, fused: bool) -> nn.Sequential:
        blocks = []
        for block_stride in [stride] + [1] * (count - 1):
            blocks.append(ERes2NetV2Block(self._in_planes, planes, block_stride, self.config, fused))
            self._in_planes = planes * self.config.expansion
        return nn.Sequential(*blocks)

    def feature_maps(self, fbank: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every stage's output [B, C, F', T'] by its module's name (``conv1`` before its norm; ``fuse34`` last)."""
        maps = {"conv1": self.conv1(fbank.transpose(1, 2).unsqueeze(1))}
        x = F.relu(self.bn1(maps["conv1"]))
        for name in ("layer1", "layer2", "layer3", "layer4"):
            x = maps[name] = getattr(self, name)(x)
        maps["layer3_ds"] = self.layer3_ds(maps["layer3"])
        maps["fuse34"] = self.fuse34(maps["layer4"], maps["layer3_ds"])
        return maps

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        """[B, T, 80] -> [B, 20480]: the fused map flattened over (channel, frequency), averaged over time."""
        return self.feature_maps(fbank)["fuse34"].flatten(start_dim=1, end_dim=2).mean(dim=-1)

    def embed_waveform(self, wav16k: torch.Tensor) -> torch.Tensor:
        """A 16 kHz clip [samples] -> [1, 20480] (what upstream's ``SV.compute_embedding3`` returns)."""
        return self(kaldi_fbank(wav16k)[None])

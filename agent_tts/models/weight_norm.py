"""Convolutions stored the way torch's legacy ``weight_norm`` stores them.

The official SoVITS files keep weight-normalised layers as ``weight_g`` and
``weight_v``. These modules load those keys as they are and fold them into one
weight after loading, so inference pays nothing for the decomposition.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class _WeightNormMixin:
    """Replaces ``weight`` by ``weight_g``/``weight_v`` (norm over all dims but 0)."""

    def _split_weight(self) -> None:
        weight = self.weight
        del self.weight
        self.weight_g = nn.Parameter(torch.norm_except_dim(weight, 2, 0).detach())
        self.weight_v = nn.Parameter(weight.detach())
        self.register_buffer("folded_weight", None, persistent=False)

    def effective_weight(self) -> torch.Tensor:
        if self.folded_weight is not None:
            return self.folded_weight
        return torch._weight_norm(self.weight_v, self.weight_g, 0)

    @torch.no_grad()
    def fold(self) -> None:
        """Compute the weight once; call again after loading new ``weight_g``/``weight_v``."""
        self.folded_weight = torch._weight_norm(self.weight_v, self.weight_g, 0).detach()


class WNConv1d(_WeightNormMixin, nn.Conv1d):
    """``nn.Conv1d`` with a weight-normalised weight."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._split_weight()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.effective_weight(), self.bias)


class WNConvTranspose1d(_WeightNormMixin, nn.ConvTranspose1d):
    """``nn.ConvTranspose1d`` with a weight-normalised weight."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._split_weight()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose1d(
            x, self.effective_weight(), self.bias, self.stride, self.padding,
            self.output_padding, self.groups, self.dilation,
        )


def fold_weight_norms(module: nn.Module) -> None:
    """Fold every weight-normalised layer inside ``module``."""
    for child in module.modules():
        if isinstance(child, _WeightNormMixin):
            child.fold()

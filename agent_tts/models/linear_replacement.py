"""Swap a model's linear layers for another kind (int8 weights, oneDNN-packed weights), the GPT's packed attention
in-projection included: one walk over the modules for every kind."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from agent_tts.models.t2s import MultiheadSelfAttention

MakeLinear = Callable[[torch.Tensor, torch.Tensor | None], nn.Module]
"""Builds the replacement of a linear layer from its weight [out, in] and bias [out] (or None)."""


class ReplacedSelfAttention(nn.Module):
    """A `MultiheadSelfAttention` whose packed in-projection and output projection were rebuilt by a `MakeLinear`."""

    def __init__(self, attention: MultiheadSelfAttention, make: MakeLinear) -> None:
        super().__init__()
        self.in_proj = make(attention.in_proj_weight, attention.in_proj_bias)
        self.out_proj = make(attention.out_proj.weight, attention.out_proj.bias)

    def in_projection(self, x: torch.Tensor) -> torch.Tensor:
        return self.in_proj(x)


def replace_linears(module: nn.Module, make: MakeLinear) -> nn.Module:
    """`module` with every `nn.Linear`, and every `MultiheadSelfAttention`'s projections, rebuilt by `make`;
    changed in place and returned."""
    for parent in list(module.modules()):
        if isinstance(parent, MultiheadSelfAttention):
            continue  # replaced whole by its parent
        for name, child in list(parent.named_children()):
            if isinstance(child, MultiheadSelfAttention):
                setattr(parent, name, ReplacedSelfAttention(child, make))
            elif isinstance(child, nn.Linear):
                setattr(parent, name, make(child.weight, child.bias))
    return module

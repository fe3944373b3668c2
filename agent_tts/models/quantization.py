"""Weight-only int8 linear layers for the CPU: the GPT's (every projection of the AR step) and BERT's.

An AR step for one or a few rows is memory-bound: it reads every weight once
per token. `Int8WeightLinear` stores each weight as int8 with one scale per
output channel (symmetric, round to nearest) and keeps the activations in
float (bf16 where the CPU multiplies bf16 natively, else fp32): a quarter of
fp32's bytes, and no activation is quantized, so no calibration is needed.
Few rows (AR steps) go through torch's int8-weight matrix kernel; many rows
(a prefill, BERT) dequantize the weight and use the dense product, which is
compute-bound there anyway. torch's dynamic quantization (int8 activations)
was tried first and moved the fixture GPT's logits by 2.2-2.6% of their
magnitude, over the 2% bar; these move them by about 1% (docs/precision.md).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from agent_tts.models.linear_replacement import replace_linears

# Up to this many rows the int8-weight kernel wins; above it the dequantized dense product does.
INT8_KERNEL_MAX_ROWS = 16


class Int8WeightLinear(nn.Module):
    """``y = x W^T + b`` with ``W`` stored as int8 [out, in] and a per-output-channel scale, ``x`` in float."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, activation_dtype: torch.dtype) -> None:
        super().__init__()
        weight = weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp(min=torch.finfo(torch.float32).tiny) / 127
        self.register_buffer("weight", torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scale", scale.to(activation_dtype))
        self.register_buffer("bias", None if bias is None else bias.detach().to(activation_dtype))
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]

    @classmethod
    def from_linear(cls, linear: nn.Linear, activation_dtype: torch.dtype) -> "Int8WeightLinear":
        return cls(linear.weight, linear.bias, activation_dtype)

    def dequantized_weight(self) -> torch.Tensor:
        return self.weight.to(self.scale.dtype) * self.scale[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.scale.dtype)
        rows = x.shape[:-1].numel()
        if rows > INT8_KERNEL_MAX_ROWS:
            return F.linear(x, self.dequantized_weight(), self.bias)
        flat = torch.ops.aten._weight_int8pack_mm(x.reshape(rows, self.in_features).contiguous(), self.weight,
                                                  self.scale)
        if self.bias is not None:
            flat = flat + self.bias
        return flat.view(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 weights, {self.scale.dtype}"


def quantize_linear_weights(module: nn.Module, activation_dtype: torch.dtype = torch.float32) -> nn.Module:
    """`module`, in `activation_dtype`, with every `nn.Linear` (and the GPT's packed attention in-projections)
    holding int8 weights; changed in place and returned."""
    module.to(activation_dtype)
    return replace_linears(module, lambda weight, bias: Int8WeightLinear(weight, bias, activation_dtype))

"""Weight-only int8 linear layers for the CPU's AR step: every linear of the GPT, the attention in-projection included.

An AR step for one or a few rows is memory-bound: it reads every weight once
per token. `Int8WeightLinear` keeps each weight also as int8 with one scale
per output channel (symmetric, round to nearest) and runs few rows through
torch's int8-weight matrix kernel, whose input is always bf16: the kernel is
vectorized for bf16 activations only (with fp32 ones it is a scalar loop:
30 ms against 3 for the real-size GPT's 96 linears at one row, on AVX-512 and
on AVX2 alike), so where the model computes in fp32 (a CPU without native
bf16) the rows are rounded to bf16 for the product and its result brought
back. Many rows (a prefill) go through the float layer the int8 copy was made
from, kept as it is (and oneDNN-packed where that measures faster): the
prefill is compute-bound, and dequantizing every weight per call cost more
than the product itself. No activation is quantized, so no calibration is
needed; torch's dynamic quantization (int8 activations) was tried first and
moved the fixture GPT's logits by 2.2-2.6% of their magnitude, over the 2%
bar; these move them by about 1% (docs/precision.md).
"""

from __future__ import annotations

import torch
from torch import nn

from agent_tts.models.linear_replacement import replace_linears

# Up to this many rows the int8-weight kernel wins; above it the float layer does.
INT8_KERNEL_MAX_ROWS = 16
KERNEL_DTYPE = torch.bfloat16  # the int8-weight kernel's activations and scales


def per_channel_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 of ``weight`` [out, in] with one fp32 scale per output channel: (int8 [out, in], scale [out])."""
    weight = weight.detach().float()
    scale = weight.abs().amax(dim=1).clamp(min=torch.finfo(torch.float32).tiny) / 127
    return torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8), scale


class Int8WeightLinear(nn.Module):
    """``y = x W^T + b``: few rows from ``W`` as int8 [out, in] with a per-output-channel scale, many rows by the
    float layer `dense` (``W`` as it was, in the model's dtype)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.out_features, self.in_features = weight.shape
        # On the meta device: no memory and no random init for weights replaced at once by the model's own.
        self.dense = nn.Linear(self.in_features, self.out_features, bias=bias is not None, device="meta")
        self.dense.weight = nn.Parameter(weight.detach(), requires_grad=False)
        if bias is not None:
            self.dense.bias = nn.Parameter(bias.detach(), requires_grad=False)
        quantized, scale = per_channel_int8(weight)
        self.register_buffer("weight", quantized)
        self.register_buffer("scale", scale.to(KERNEL_DTYPE))

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> "Int8WeightLinear":
        return cls(linear.weight, linear.bias)

    @property
    def bias(self) -> torch.Tensor | None:
        return getattr(self.dense, "bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.shape[:-1].numel()
        if rows > INT8_KERNEL_MAX_ROWS:
            return self.dense(x)
        flat = torch.ops.aten._weight_int8pack_mm(x.reshape(rows, self.in_features).to(KERNEL_DTYPE).contiguous(),
                                                  self.weight, self.scale).to(x.dtype)
        if self.bias is not None:
            flat = flat + self.bias
        return flat.view(*x.shape[:-1], self.out_features)

    @property
    def int8_bytes(self) -> int:
        """What the int8 copy holds (weights and scales): what an AR step reads."""
        return self.weight.numel() + self.scale.numel() * self.scale.element_size()

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 weights for <= " \
               f"{INT8_KERNEL_MAX_ROWS} rows"


def quantize_linear_weights(module: nn.Module, dtype: torch.dtype = torch.float32) -> nn.Module:
    """`module`, in `dtype`, with every `nn.Linear` (and the GPT's packed attention in-projections) an
    `Int8WeightLinear` over its weights; changed in place and returned."""
    module.to(dtype)
    return replace_linears(module, Int8WeightLinear)

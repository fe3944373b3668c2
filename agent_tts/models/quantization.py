"""Dynamic int8 weights for the CPU: the GPT's and BERT's linear layers, a speed option traded for a little accuracy.

On a memory-bound 2-core CPU the AR step is dominated by reading fp32
weights; int8 weights read a quarter of the bytes. Activations stay float
(dynamic quantization), so no calibration data is needed. Measured error is in
docs/benchmarks.md; the default stays fp32, the precision the parity fixture
checks.
"""

from __future__ import annotations

import torch
from torch import nn

def quantize_linear_layers(module: nn.Module) -> nn.Module:
    """`module` with every `nn.Linear` replaced by a dynamically quantized int8 one (CPU only)."""
    return torch.ao.quantization.quantize_dynamic(module, {nn.Linear}, dtype=torch.qint8)

"""Linear layers whose weights are reordered once, at load, into oneDNN's blocked layout, where that measures faster.

On the CPU, torch's `F.linear` multiplies by the weight as it is stored,
[out, in], through MKL (fp32) or oneDNN (bf16). `PackedLinear` keeps only a
copy reordered into the layout oneDNN's own linear kernel reads (made by
`torch.ops.mkldnn._reorder_linear_weight`, the call torch's compiler makes
when it freezes a model) and multiplies with that kernel. An AR step is a
product of a few rows by every weight of the GPT, so the kernel's handling
of the weight is most of the step.

Whether that wins depends on the CPU and its libraries: on a 2-core AMD
EPYC (Zen 5, AVX-512, no AMX) with torch 2.13, the GPT's 96 fp32 linears
took 18.8 ms for one row and 23.0 for eight as stored against 9.1 and 9.9
packed, and 176.6 against 75.2 ms for a 200-row prefill (docs/benchmarks.md,
"Packed weights on a Zen 5 EPYC without AMX"). So `pack_linears_if_faster`
times both ways on the model's own first-layer weights, at the row counts
it will see, and packs only where packing is faster on this machine;
`AGENT_TTS_PACKED_LINEARS=on|off` overrides the measurement.

A packed module is for inference on the CPU only: the reordered weight is an
opaque oneDNN tensor, outside ``state_dict`` and ``.to()``, so pack a model
last, after its device and dtype are final (a model to export is loaded
unpacked).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from agent_tts.heap import return_freed_memory
from agent_tts.models.linear_replacement import replace_linears
from agent_tts.models.load_time_choice import LoadTimeChoice
from agent_tts.models.quantization import Int8WeightLinear
from agent_tts.models.t2s import MultiheadSelfAttention
from agent_tts.perf.machine_rates import best_seconds

PACKED_LINEARS_ENV = "AGENT_TTS_PACKED_LINEARS"
GPT_PROBE_ROWS = (1, 8, 128)  # an AR step alone, a batched step, a prefill
PREFILL_PROBE_ROWS = (128,)  # an int8 GPT's float weights: only prefills use them
BERT_PROBE_ROWS = (32,)  # the tokens of a clause


class PackedLinear(nn.Module):
    """``y = x W^T + b`` by oneDNN's linear kernel, with ``W`` held only in the kernel's own (reordered) layout."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.out_features, self.in_features = weight.shape
        self.dtype = weight.dtype
        with torch.no_grad():
            self.packed_weight = torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous())
        self.bias = None if bias is None else bias.detach().clone()

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> "PackedLinear":
        return cls(linear.weight, linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.packed_weight, self.bias, "none", [], "")

    @property
    def weight_bytes(self) -> int:
        """What the weight and bias hold as values (the packed layout's padding not counted)."""
        element = torch.empty(0, dtype=self.dtype).element_size()
        return element * (self.out_features * self.in_features + (self.out_features if self.bias is not None else 0))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, {self.dtype}, oneDNN-packed"


def pack_linears(module: nn.Module) -> nn.Module:
    """`module` with every `nn.Linear` (and the GPT's packed attention in-projections) a `PackedLinear`;
    changed in place and returned."""
    replace_linears(module, PackedLinear)
    return_freed_memory()  # the unpacked weights' pages (a loaded voice stayed about 370 MiB larger)
    return module


Weights = tuple[torch.Tensor, torch.Tensor | None]


def probe_weights(module: nn.Module, count: int) -> list[Weights]:
    """The first `count` linear weights (and biases) of `module`, in module order: what a layer multiplies."""
    found: list[Weights] = []
    for child in module.modules():
        if isinstance(child, MultiheadSelfAttention):
            found.append((child.in_proj_weight, child.in_proj_bias))
        elif type(child) is nn.Linear:
            found.append((child.weight, child.bias))
        if len(found) >= count:
            break
    return found


def packing_is_faster(probe: Sequence[Weights], rows: Sequence[int]) -> tuple[bool, float, float]:
    """Whether these linears take less time packed than as they are, summed over inputs of each of `rows` rows
    (best of five timings each), and the two sums in seconds."""
    packed = [PackedLinear(weight, bias) for weight, bias in probe]
    plain_s = packed_s = 0.0
    with torch.inference_mode():
        for count in rows:
            inputs = [torch.randn(count, weight.shape[1], dtype=weight.dtype) for weight, _ in probe]
            plain_s += best_seconds(lambda: [F.linear(x, weight, bias) for x, (weight, bias) in zip(inputs, probe)])
            packed_s += best_seconds(lambda: [linear(x) for x, linear in zip(inputs, packed)])
    return packed_s < plain_s, plain_s, packed_s


PACKING = LoadTimeChoice(PACKED_LINEARS_ENV)


def packed_linears_setting() -> str:
    """`AGENT_TTS_PACKED_LINEARS`: auto (measure; the default), on or off."""
    return PACKING.setting()


def pack_linears_if_faster(module: nn.Module, probe: Sequence[Weights], rows: Sequence[int]) -> bool:
    """Pack `module`'s linears (`pack_linears`) if packing `probe`, a few of its weights (`probe_weights`),
    measures faster at these row counts; decided once per process for each set of shapes, dtype and rows. Only
    CPU fp32 and bf16 weights are packed. Returns whether `module` was packed."""
    weights = [weight for weight, _ in probe]
    if not weights or any(w.device.type != "cpu" or w.dtype not in (torch.float32, torch.bfloat16) for w in weights):
        return False
    key = (tuple(tuple(w.shape) for w in weights), weights[0].dtype, tuple(rows), torch.get_num_threads())
    if not PACKING.decide(key, lambda: packing_is_faster(probe, rows)[0]):
        return False
    pack_linears(module)
    return True


def pack_gpt_if_faster(gpt: nn.Module, rows: Sequence[int] = GPT_PROBE_ROWS) -> bool:
    """`pack_linears_if_faster` for the GPT, measured on its first layer at these row counts (by default an AR
    step's, a batched step's and a prefill's; an int8 GPT packs the float weights of its prefill,
    `PREFILL_PROBE_ROWS`)."""
    return pack_linears_if_faster(gpt, probe_weights(gpt.h.layers[0], 4), rows)


def pack_bert_if_faster(bert: nn.Module) -> bool:
    """`pack_linears_if_faster` for a `BertFeatureExtractor`'s encoder, measured on its first layer."""
    encoder = bert.model
    return pack_linears_if_faster(encoder, probe_weights(encoder, 6), BERT_PROBE_ROWS)


def linear_layout(module: object) -> str:
    """How `module`'s linears hold their weights: ``oneDNN-packed``, ``as stored``, ``not torch`` (a model run by
    ONNX Runtime or OpenVINO), or for an int8 GPT ``int8 + oneDNN-packed`` / ``int8 + as stored`` (the AR step's
    weights and the prefill's)."""
    if not isinstance(module, nn.Module):
        return "not torch"
    layout = "oneDNN-packed" if any(isinstance(child, PackedLinear) for child in module.modules()) else "as stored"
    return f"int8 + {layout}" if any(isinstance(child, Int8WeightLinear) for child in module.modules()) else layout


def weight_megabytes(modules: Sequence[nn.Module]) -> float:
    """The megabytes of values the modules' parameters and packed weights hold (what a pass over them reads; of an
    int8 GPT, what its prefill reads)."""
    total = 0
    for module in modules:
        total += sum(parameter.numel() * parameter.element_size() for parameter in module.parameters())
        total += sum(child.weight_bytes for child in module.modules() if isinstance(child, PackedLinear))
    return total / 1e6


def voice_linear_layouts(voice) -> str:
    """``GPT oneDNN-packed (attention fp32), BERT as stored``: how a voice's GPT and BERT hold their linear
    weights, and whether a bf16 GPT attends in fp32 (`attention_dtype.py`)."""
    gpt = voice.gpt
    fp32_attention = getattr(gpt, "attention_dtype", None) == torch.float32 and gpt.compute_dtype != torch.float32
    return f"GPT {linear_layout(gpt)}{' (attention fp32)' if fp32_attention else ''}, BERT {linear_layout(voice.bert)}"

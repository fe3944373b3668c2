"""Which precision each model of a voice runs in: the `precision` option, resolved once per voice.

`auto | fp32 | bf16 | int8 | fp16`. The one AR step, the decoder and BERT run
as they are; precision changes only their weights and dtypes:

| precision | GPT (prefill + step) | SoVITS decoder | BERT | HuBERT |
|---|---|---|---|---|
| fp32 | fp32 | fp32 | fp32 | fp32 |
| bf16 | bf16 | bf16 | bf16 | fp32 |
| int8 | AR step: int8 weights (**); prefill: float weights; bf16 activations (*) | bf16 (*) | bf16 (*) | fp32 |
| fp16 (CUDA) | fp16 | fp32 | fp32 | fp32 |

(*) fp32 where the CPU has no native bf16. (**) The int8-weight kernel takes
bf16 activations on every CPU (models/quantization.py). HuBERT stays fp32:
it runs once per voice, at load, and the prompt codes it feeds are discrete (a rounding
flip changes a code). `auto` on the CPU is
int8 where the CPU multiplies bf16 natively (AMX or AVX512-BF16): the fastest
single stream measured on both such CPUs of the project, first audio and RTF
(bf16's batched step of eight rows is faster: a server of many streams may
choose bf16); else fp32. On CUDA it is fp32 (fp16 is opt-in until measured on
a GPU). Why these parts
and what each costs in accuracy: docs/precision.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from agent_tts.cpu_features import CPUFeatures, cpu_features
from agent_tts.errors import OptionError

PRECISIONS = ("auto", "fp32", "bf16", "int8", "fp16")


@dataclass(frozen=True)
class PrecisionPlan:
    """A resolved precision: the dtype of each model, and whether the GPT's linears also hold int8 weights (for the
    AR step)."""

    name: str                      # fp32, bf16, int8 or fp16 (never auto)
    gpt_dtype: torch.dtype         # activations (and KV cache, unless fp32 attention is faster: attention_dtype.py)
    sovits_dtype: torch.dtype
    bert_dtype: torch.dtype
    int8_weights: bool = False     # the GPT's linears: int8 for the AR step beside the float weights

    def describe(self) -> str:
        """`bf16 (GPT bf16, SoVITS bf16, BERT bf16, HuBERT fp32)`."""
        def label(dtype: torch.dtype, int8: bool = False) -> str:
            name = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
            return f"int8 weights + {name}" if int8 else name

        return (f"{self.name} (GPT {label(self.gpt_dtype, self.int8_weights)}, SoVITS {label(self.sovits_dtype)}, "
                f"BERT {label(self.bert_dtype)}, HuBERT fp32)")


def resolve_precision(precision: str | PrecisionPlan, device: torch.device,
                      cpu: CPUFeatures | None = None) -> PrecisionPlan:
    """The plan for `precision` on `device` (`cpu`: this machine's CPU unless given; a plan is returned as it
    is); one-line errors."""
    if isinstance(precision, PrecisionPlan):
        return precision
    if precision not in PRECISIONS:
        raise OptionError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    cpu = cpu or cpu_features()
    fp32 = torch.float32
    if device.type != "cpu":
        if precision in ("bf16", "int8"):
            raise OptionError(f"precision={precision!r} is for the CPU; on CUDA use fp16, fp32 or auto")
        if precision == "fp16":
            return PrecisionPlan("fp16", torch.float16, fp32, fp32)
        return PrecisionPlan("fp32", fp32, fp32, fp32)
    if precision == "fp16":
        raise OptionError("precision='fp16' is for CUDA devices; on the CPU use auto, fp32, bf16 or int8")
    if precision == "auto":
        precision = "int8" if cpu.native_bf16 else "fp32"
    if precision == "fp32":
        return PrecisionPlan("fp32", fp32, fp32, fp32)
    if precision == "bf16":
        return PrecisionPlan("bf16", torch.bfloat16, torch.bfloat16, torch.bfloat16)
    activations = torch.bfloat16 if cpu.native_bf16 else fp32
    return PrecisionPlan("int8", activations, activations, activations, int8_weights=True)

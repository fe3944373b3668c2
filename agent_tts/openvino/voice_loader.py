"""Load a voice on the OpenVINO backend: the SoVITS decoder and BERT on OpenVINO, the GPT on ONNX Runtime.

Measured on a 2-core AMX Xeon (docs/benchmarks.md): OpenVINO in bf16 decodes
SoVITS 4-6x faster than ONNX Runtime or torch in fp32, while its AR step is
no faster than ONNX Runtime's (and bf16 moves the step's logits more), so the
GPT stays on ONNX Runtime in fp32 and the reference encoders, run once at
load, too. Everything comes from the voice's ONNX export (`agent-tts
export-onnx`), with its staleness checks.
"""

from __future__ import annotations

from pathlib import Path

import torch

from agent_tts.cpu_features import cpu_features
from agent_tts.errors import OptionError
from agent_tts.models.precision import PrecisionPlan
from agent_tts.onnx.voice_loader import load_onnx_voice
from agent_tts.openvino.runtime import OpenVINOGraph
from agent_tts.voice import Voice, VoiceSpec


def openvino_plan(precision: str) -> PrecisionPlan:
    """auto: bf16 where the CPU multiplies bf16 natively, else fp32; fp32 and bf16 as asked; the GPT stays fp32."""
    if precision == "auto":
        precision = "bf16" if cpu_features().native_bf16 else "fp32"
    if precision not in ("fp32", "bf16"):
        raise OptionError(f"the OpenVINO backend runs fp32 or bf16 (or auto), not precision={precision!r}")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    return PrecisionPlan(precision, torch.float32, dtype, dtype)


def load_openvino_voice(spec: VoiceSpec, export_dir: str | Path | None = None, precision: str = "auto") -> Voice:
    """The voice from its ONNX export, decoder and BERT on OpenVINO; a clear error when the export is stale."""
    plan = openvino_plan(precision)
    return load_onnx_voice(spec, export_dir, "cpu", lambda manifest, name: OpenVINOGraph(manifest, name, plan.name),
                           backend="openvino", precision=plan)

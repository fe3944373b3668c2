"""Load a voice on the OpenVINO backend: the SoVITS decoder and BERT on OpenVINO, the GPT beside them.

Measured on a 2-core AMX Xeon (docs/benchmarks.md): OpenVINO in bf16 decodes
SoVITS 4-6x faster than ONNX Runtime or torch, and runs BERT 2-3x faster,
while its own AR step is no faster than ONNX Runtime's and moves the logits
more. So the GPT runs elsewhere, by precision:

- fp32, bf16: on ONNX Runtime in fp32, from the export (the decoder and BERT
  in that precision);
- int8: on torch with int8 weights (bf16 activations where the CPU multiplies
  bf16 natively, else fp32), the decoder and BERT in bf16 (fp32 without native
  bf16). Against ONNX Runtime's GPT beside OpenVINO (`agent-tts bench`, same
  run): prefill 90 against 155-161 ms, AR step 14.2-14.5 against 15.7-15.8
  ms, first audio 456-457 against 548-554 ms.
- auto: int8 where the CPU multiplies bf16 natively, else fp32.

The reference encoders run once at load on ONNX Runtime. Everything comes from
the voice's ONNX export (`agent-tts export-onnx`), with its staleness checks,
except the int8 GPT, which is the voice's GPT file. At load the decoder is
run once at each window length of the default chunk plan (11 lengths),
because OpenVINO compiles per input length (`OpenVINOGraph`); the lengths of
short units can be compiled in the background (`length_warmup.py`, opt-in).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from agent_tts.cpu_features import cpu_features
from agent_tts.engine.chunked_decoder import ChunkPlan, window_lengths
from agent_tts.engine.openmp_pool import release_idle_workers
from agent_tts.errors import OptionError
from agent_tts.models.precision import PrecisionPlan
from agent_tts.models.shared import shared_gpt
from agent_tts.onnx.voice_loader import load_onnx_voice
from agent_tts.openvino.length_warmup import compile_short_lengths_in_background
from agent_tts.openvino.runtime import OpenVINOGraph
from agent_tts.voice import Voice, VoiceSpec

logger = logging.getLogger(__name__)

OPENVINO_PRECISIONS = ("auto", "fp32", "bf16", "int8")


def openvino_plan(precision: str) -> PrecisionPlan:
    """The plan for `precision` on this CPU (see the module): the GPT's dtype and int8 weights, the others' dtype."""
    native_bf16 = cpu_features().native_bf16
    if precision == "auto":
        precision = "int8" if native_bf16 else "fp32"
    if precision not in OPENVINO_PRECISIONS:
        raise OptionError(f"the OpenVINO backend runs fp32, bf16 or int8 (or auto), not precision={precision!r}")
    if precision == "int8":
        activations = torch.bfloat16 if native_bf16 else torch.float32
        return PrecisionPlan("int8", activations, activations, activations, int8_weights=True)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    return PrecisionPlan(precision, torch.float32, dtype, dtype)


def load_openvino_voice(spec: VoiceSpec, export_dir: str | Path | None = None, precision: str = "auto") -> Voice:
    """The voice from its ONNX export, decoder and BERT on OpenVINO; a clear error when the export is stale."""
    plan = openvino_plan(precision)
    graph_precision = "bf16" if plan.sovits_dtype == torch.bfloat16 else "fp32"
    gpt = shared_gpt(spec.gpt, plan, torch.device("cpu")) if plan.int8_weights else None
    voice = load_onnx_voice(spec, export_dir, "cpu",
                            lambda manifest, name: OpenVINOGraph(manifest, name, graph_precision),
                            backend="openvino", precision=plan, gpt=gpt)
    lengths = window_lengths(ChunkPlan(), voice.sovits.window_granule)
    logger.info("compiling the OpenVINO decoder for the %d window lengths of the default chunk plan", len(lengths))
    voice.sovits.prepare_lengths(lengths, voice.ge)
    compile_short_lengths_in_background(voice.sovits, voice.ge)
    release_idle_workers()
    return voice

"""Load a voice on the ONNX backend: its export's graphs on ONNX Runtime, the reference data derived through them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from agent_tts.models.precision import PrecisionPlan
from agent_tts.onnx.export import default_export_dir, voice_sources
from agent_tts.onnx.manifest import ExportManifest
from agent_tts.onnx.runtime import (OnnxBertFeatureExtractor, OnnxReferenceEncoders, OnnxSoVITSDecoder,
                                    OnnxText2Semantic, OrtDevice)
from agent_tts.reference import derive_reference_features
from agent_tts.text.frontend import TextFrontend
from agent_tts.voice import Voice, VoiceSpec


def load_onnx_voice(spec: VoiceSpec, export_dir: str | Path | None = None, device: str | torch.device = "cpu",
                    open_graph: Callable[[ExportManifest, str], object] | None = None, backend: str = "onnx",
                    precision: PrecisionPlan | None = None, gpt=None) -> Voice:
    """The voice with every model on ORT; a clear error when the export is missing or stale.

    `open_graph(manifest, file)` runs the SoVITS decoder and BERT graphs elsewhere (another runtime with ORT's
    `run` call, as the OpenVINO backend does); `backend` and `precision` are then what the voice reports. `gpt`:
    a GPT to use instead of the export's (a torch `Text2SemanticModel`, as the OpenVINO backend's int8 plan has).
    """
    folder = Path(export_dir) if export_dir is not None else default_export_dir(spec.name)
    manifest = ExportManifest.read(folder)
    manifest.require_fresh(voice_sources(spec, manifest.version), spec.name)
    ort_device = OrtDevice.from_torch(device)
    gpt = gpt if gpt is not None else OnnxText2Semantic(manifest, ort_device)
    elsewhere = open_graph or (lambda manifest, name: None)
    sovits = OnnxSoVITSDecoder(manifest, ort_device, elsewhere(manifest, "sovits_decoder.onnx"))
    bert = OnnxBertFeatureExtractor(manifest, ort_device, elsewhere(manifest, "bert.onnx"))
    frontend = TextFrontend(version="v2")
    reference = derive_reference_features(spec, OnnxReferenceEncoders(manifest, ort_device), bert, frontend,
                                          sovits.config)
    return Voice(spec, gpt, sovits, bert, frontend, reference,
                 torch.device(ort_device.kind, ort_device.index) if ort_device.kind == "cuda" else torch.device("cpu"),
                 backend=backend, precision=precision)

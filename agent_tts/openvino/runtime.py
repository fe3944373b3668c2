"""Graphs of a voice's ONNX export compiled by OpenVINO for the CPU, behind ONNX Runtime's `run` call.

OpenVINO reads the export's ONNX files as they are (no second export, so the
manifest and its staleness checks are the ONNX backend's) and compiles each
for the CPU with an inference precision: bf16 runs on AMX / AVX512-BF16
(OpenVINO's default there), f32 elsewhere. `OpenVINOGraph.run` has ORT's
signature, so the ONNX backend's decoder and BERT classes drive it unchanged.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from agent_tts.errors import AgentTTSError
from agent_tts.onnx.manifest import ExportManifest, check_stamp

INSTALL = "pip install openvino (or: pip install 'agent-tts[openvino]')"
INFERENCE_PRECISIONS = {"fp32": "f32", "bf16": "bf16"}


def _openvino():
    try:
        import openvino
    except ImportError:
        raise AgentTTSError(f"the OpenVINO backend needs the openvino package; install it with: {INSTALL}") from None
    return openvino


def openvino_version() -> str | None:
    """The installed OpenVINO's version, or None."""
    try:
        import openvino
    except ImportError:
        return None
    return openvino.__version__


def _onnx_stamp(path: Path) -> dict[str, str]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {entry.key: entry.value for entry in model.metadata_props}


class OpenVINOGraph:
    """One graph of the export compiled for the CPU at `precision` (fp32 or bf16), run like an ORT session.

    OpenVINO compiles a graph's kernels again for every input shape it has not run yet (for the SoVITS decoder in
    bf16, 0.7-1 s per new token count on a 2-core AMX Xeon, against 60-90 ms a run once compiled), so a caller
    that can choose its lengths uses multiples of `length_granule`.
    """

    length_granule = 16

    def __init__(self, export: ExportManifest, name: str, precision: str) -> None:
        ov = _openvino()
        path = export.folder / name
        check_stamp(_onnx_stamp(path), path, export)
        core = ov.Core()
        self._compiled = core.compile_model(core.read_model(str(path)), "CPU", {
            "INFERENCE_PRECISION_HINT": INFERENCE_PRECISIONS[precision], "PERFORMANCE_HINT": "LATENCY"})
        self._requests = threading.local()  # an infer request runs one call at a time: one per calling thread

    def _request(self):
        request = getattr(self._requests, "request", None)
        if request is None:
            request = self._requests.request = self._compiled.create_infer_request()
        return request

    def run(self, output_names: list[str] | None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Every output (`output_names` must be None, as the callers pass), copied out of the request's buffers.
        Safe from several threads at once (each stream's worker decodes on its own thread)."""
        results = self._request().infer(feeds)
        return [np.array(results[output], copy=True) for output in self._compiled.outputs]

#!/usr/bin/env bash
# Swap the CPU build of ONNX Runtime in .venv for onnxruntime-gpu (CUDA provider), for `--backend onnx --device cuda`.
# The two packages install the same files, so the CPU one goes first; pipecat-ai names `onnxruntime`, so pip
# reinstalls it whenever agent-tts is reinstalled: run this script again after `bash scripts/setup.sh`.
# Undo: .venv/bin/pip uninstall -y onnxruntime-gpu && .venv/bin/pip install onnxruntime
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
"$VENV/bin/pip" uninstall -y onnxruntime onnxruntime-gpu
"$VENV/bin/pip" install onnxruntime-gpu
"$VENV/bin/python" - <<'PY'
import onnxruntime as ort

providers = ort.get_available_providers()
print(f"onnxruntime {ort.__version__}: {', '.join(providers)}")
if "CUDAExecutionProvider" not in providers:
    raise SystemExit("onnxruntime-gpu is installed but offers no CUDA provider: check the NVIDIA driver and CUDA 12 "
                     "libraries (agent-tts doctor shows what it finds)")
PY

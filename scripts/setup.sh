#!/usr/bin/env bash
# Set up agent-tts in ./.venv: system audio library, CPU or CUDA torch, the package and its test tools.
# Idempotent; `make demo` and `make test` run it when pyproject.toml or this script changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv

say() { echo "[setup] $*" >&2; }

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    say "agent-tts needs Python >= 3.11; found $("$PYTHON" --version 2>&1). Set PYTHON=/path/to/python3.11."
    exit 1
fi

# sounddevice loads PortAudio at import; the real-time playback tests run a private PulseAudio server
# (null sinks) reached through ALSA's pulse plugin.
missing=()
ldconfig -p 2>/dev/null | grep -q 'libportaudio\.so\.2' || missing+=(libportaudio2)
command -v pulseaudio >/dev/null || missing+=(pulseaudio)
command -v pactl >/dev/null || missing+=(pulseaudio-utils)
[ -e /usr/lib/x86_64-linux-gnu/alsa-lib/libasound_module_pcm_pulse.so ] || \
    [ -e /usr/lib/aarch64-linux-gnu/alsa-lib/libasound_module_pcm_pulse.so ] || missing+=(libasound2-plugins)
# The server's page is tested in a real headless browser (Playwright drives Debian's chromium).
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing ${missing[*]} (PortAudio for sounddevice; PulseAudio for the real-time audio tests; chromium for the server page's test)"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        say "install the system audio packages with: sudo apt-get install -y ${missing[*]}"
    fi
fi

if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade pip

# A plain `torch` requirement pulls a multi-GB CUDA build; without an NVIDIA GPU take the CPU build first.
if ! "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
    if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
        say "NVIDIA GPU found: installing the CUDA build of torch"
        "${PIP[@]}" install -q torch
    else
        say "no NVIDIA GPU: installing the CPU build of torch 2.13.0"
        # Elsewhere set TORCH_INDEX_URL to PyTorch's CPU wheel index to avoid the CUDA download.
        "${PIP[@]}" install -q "torch==2.13.0" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
    fi
fi

say "installing agent-tts and its test tools"
"${PIP[@]}" install -q -e ".[dev]"
touch "$VENV/.installed"
say "ready: $VENV"

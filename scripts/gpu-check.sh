#!/usr/bin/env bash
# The GPU check in one command: CUDA parity (fp32, fp16) and CUDA graphs against the CPU path, then bench and
# bench-concurrency on cuda; JSON (and a plot) into OUTDIR.
#
#   scripts/gpu-check.sh OUTDIR [--dry-run] [--wheels DIR]
#
# Needs a python3 with torch (CUDA build) and numpy; nothing else for part 1 (agent_tts.perf.gpu_check writes
# its own random-weight models). Parts 2 and 3 run the whole engine (frontend, BERT, HuBERT): they need the
# wheels that scripts/gpu-wheels.sh downloads on a machine with PyPI (installed from --wheels DIR with no
# network), and are skipped with a line saying so when those packages cannot be imported.
# --dry-run: the same steps on the CPU with tiny models and small counts (what CI runs).
# Budget: under 8 minutes on one H100/H200-class GPU; each part prints its elapsed time.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: scripts/gpu-check.sh OUTDIR [--dry-run] [--wheels DIR]" >&2; exit 2; }
[ $# -ge 1 ] || usage
OUT=$1; shift
DRY=0; WHEELS=""
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=1 ;;
        --wheels) WHEELS=${2:?--wheels needs a folder}; shift ;;
        *) usage ;;
    esac
    shift
done
mkdir -p "$OUT"
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ -n "$WHEELS" ]; then
    SITE=$(mktemp -d /tmp/agent-tts-site.XXXX)
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$WHEELS"/*.whl
    export PYTHONPATH="$PYTHONPATH:$SITE"
fi
START=$SECONDS
elapsed() { echo "[gpu-check] $1 done at $((SECONDS - START)) s" >&2; }

if [ "$DRY" = 1 ]; then
    DEVICE=cpu
    CHECK=(--tiny --steps 3 --repeats 1 --rows 1 2)
else
    DEVICE=cuda
    "$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' || {
        echo "[gpu-check] torch sees no CUDA device; use --dry-run on a CPU machine" >&2; exit 1; }
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/nvidia-smi.csv" 2>/dev/null || true
    CHECK=(--steps 50 --repeats 10 --rows 1 2 4 8 16)
fi

status=0
echo "[gpu-check] 1/3 CUDA paths against the CPU path (parity fp32/fp16, graphs vs eager) and their speed" >&2
"$PYTHON" -m agent_tts.perf.gpu_check --device "$DEVICE" "${CHECK[@]}" --json "$OUT/gpu_check.json" \
    > "$OUT/gpu_check.log" || status=1
elapsed "part 1"

if "$PYTHON" -c 'import transformers, pypinyin, jieba, soundfile, soxr' 2>/dev/null; then
    if [ "$DRY" = 1 ]; then
        VOICE=$("$PYTHON" -c 'import sys; from pathlib import Path; from agent_tts.stress.fixture_voice import \
fixture_voice_toml; print(fixture_voice_toml(Path(sys.argv[1])))' "${AGENT_TTS_FIXTURE:-../shared/fixtures/gsv-v2}")
        BENCH=(--voice "$VOICE" --runs 2 --full-runs 1)
        CONCURRENCY=(--voice "$VOICE" --streams 1 2 --texts sentence_20_chars)
    else
        BENCH=(--runs 10 --full-runs 2)
        CONCURRENCY=(--streams 1 4 8 16)
    fi
    echo "[gpu-check] 2/3 agent-tts bench on $DEVICE" >&2
    "$PYTHON" -m agent_tts.cli.main bench --device "$DEVICE" "${BENCH[@]}" --json "$OUT/bench.json" \
        > "$OUT/bench.log" || status=1
    elapsed "part 2"
    echo "[gpu-check] 3/3 agent-tts bench-concurrency on $DEVICE" >&2
    "$PYTHON" -m agent_tts.cli.main bench-concurrency --device "$DEVICE" "${CONCURRENCY[@]}" \
        --json "$OUT/concurrency.json" --plot "$OUT/concurrency.png" > "$OUT/concurrency.log" || status=1
    elapsed "part 3"
else
    echo "[gpu-check] parts 2-3 skipped: the engine's text and model packages are missing (bring them with" \
         "scripts/gpu-wheels.sh DIR, then --wheels DIR)" >&2
fi
echo "[gpu-check] $([ $status = 0 ] && echo passed || echo FAILED); results in $OUT" >&2
exit $status

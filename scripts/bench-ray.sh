#!/usr/bin/env bash
# agent-tts serve alone vs on Ray Serve (1 and 2 speech replicas), same run, same voice: `agent-tts bench-server
# --url` against each.
#
#   scripts/bench-ray.sh [OUTDIR]        (default: a temporary folder; JSON per run and the servers' logs there)
#
# Each server runs on a free loopback port with the same voice (VOICE, default: the server's default voice, the
# bundled one unless AGENT_TTS_HOME has a registered default), is waited for (/health), loaded by CLIENTS
# concurrent clients x REQUESTS requests (throughput), then by one client x LATENCY_REQUESTS (first byte without
# queueing), and stopped with SIGTERM. The CPU, its flags that matter here and the load average come with the
# figures; figures are printed, never asserted (the machine may be shared).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
CLIENTS=${CLIENTS:-4}
REQUESTS=${REQUESTS:-3}
LATENCY_REQUESTS=${LATENCY_REQUESTS:-10}
NUM_CPUS=${NUM_CPUS:-0.5}            # CPUs Ray reserves per replica (a 2-core machine fits 2 + the ingress's 1)
VOICE=${VOICE:-}
OUT=${1:-$(mktemp -d -t agent-tts-bench-ray-XXXX)}
mkdir -p "$OUT"
VOICE_ARGS=()
[ -n "$VOICE" ] && VOICE_ARGS=(--voice "$VOICE")

free_port() { "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

echo "== machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; flags:" \
     "$(grep -o -w 'avx2\|avx512f\|avx512_bf16\|amx_bf16\|amx_int8' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "== $("$PYTHON" -c 'import ray; print("ray", ray.__version__)'), voice: ${VOICE:-the default}," \
     "$CLIENTS clients x $REQUESTS requests, then 1 x $LATENCY_REQUESTS; Ray replicas reserve $NUM_CPUS CPU each"

bench() {  # NAME SERVE-ARGS...
    local name=$1 port pid
    shift
    port=$(free_port)
    "$PYTHON" -m agent_tts.cli.main serve --port "$port" "${VOICE_ARGS[@]}" "$@" > "$OUT/$name.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 600); do
        curl -s -m 2 "http://127.0.0.1:$port/health" | grep -q '"ready"' && break
        kill -0 "$pid" 2>/dev/null || { echo "$name: the server exited; see $OUT/$name.log" >&2; return 1; }
        sleep 0.5
    done
    echo "== $name (agent-tts serve${*:+ $*}), load average $(cut -d' ' -f1-3 /proc/loadavg)"
    "$PYTHON" -m agent_tts.cli.main bench-server --url "http://127.0.0.1:$port" "${VOICE_ARGS[@]}" \
        --clients "$CLIENTS" --requests "$REQUESTS" --json "$OUT/$name-load.json" | sed 's/^/   /' || true
    "$PYTHON" -m agent_tts.cli.main bench-server --url "http://127.0.0.1:$port" "${VOICE_ARGS[@]}" \
        --clients 1 --requests "$LATENCY_REQUESTS" --json "$OUT/$name-latency.json" | sed 's/^/   /' || true
    kill -TERM "$pid"
    wait "$pid" || true
}

bench alone
bench ray-1-replica --ray --replicas 1 --num-cpus "$NUM_CPUS"
bench ray-2-replicas --ray --replicas 2 --num-cpus "$NUM_CPUS"

echo "== summary ($CLIENTS clients x $REQUESTS: throughput; 1 client x $LATENCY_REQUESTS: first byte)"
"$PYTHON" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
print(f"{'server':16} {'throughput':>22} {'loaded: 1st byte p50/p95':>25} {'1 client: p50/p95':>20} {'load avg':>9}")
for name in ("alone", "ray-1-replica", "ray-2-replicas"):
    load = json.loads((out / f"{name}-load.json").read_text())["figures"]
    single = json.loads((out / f"{name}-latency.json").read_text())["figures"]
    print(f"{name:16} {load['audio_per_wall']:6.2f}x rt {load['requests_per_second']:5.2f} req/s "
          f"{load['first_byte_p50_ms']:13.0f} / {load['first_byte_p95_ms']:5.0f} ms "
          f"{single['first_byte_p50_ms']:8.0f} / {single['first_byte_p95_ms']:5.0f} ms "
          f"{load['load_average_before'][0]:9.1f}")
EOF
echo "JSON and logs: $OUT"

#!/usr/bin/env bash
# agent-tts serve alone vs on Ray Serve (1 and 2 speech replicas): `agent-tts bench-server --url` against each.
#
#   scripts/bench-ray.sh [OUTDIR]        (default: a temporary folder; JSON per run and the servers' logs there)
#
# Each server runs on a free loopback port with the default voice (the bundled one unless AGENT_TTS_HOME has a
# registered voice), is waited for (/health), loaded by CLIENTS concurrent clients x REQUESTS requests, then by one
# client x LATENCY_REQUESTS (first byte without queueing), and stopped with SIGTERM. Figures are printed, never
# asserted; the load average before each run is printed with it (the machine may be shared).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
CLIENTS=${CLIENTS:-4}
REQUESTS=${REQUESTS:-3}
LATENCY_REQUESTS=${LATENCY_REQUESTS:-8}
NUM_CPUS=${NUM_CPUS:-0.5}            # CPUs Ray reserves per replica (this 2-core machine fits 2 + the ingress)
OUT=${1:-$(mktemp -d -t agent-tts-bench-ray-XXXX)}
mkdir -p "$OUT"

free_port() { "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

bench() {  # NAME SERVE-ARGS...
    local name=$1 port pid
    shift
    port=$(free_port)
    "$PYTHON" -m agent_tts.cli.main serve --port "$port" "$@" > "$OUT/$name.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 600); do
        curl -s -m 2 "http://127.0.0.1:$port/health" | grep -q '"ready"' && break
        kill -0 "$pid" 2>/dev/null || { echo "$name: the server exited; see $OUT/$name.log" >&2; return 1; }
        sleep 0.5
    done
    echo "== $name (serve $*), load average $(cut -d' ' -f1-3 /proc/loadavg)"
    "$PYTHON" -m agent_tts.cli.main bench-server --url "http://127.0.0.1:$port" --clients "$CLIENTS" \
        --requests "$REQUESTS" --json "$OUT/$name-load.json" | sed 's/^/   /'
    "$PYTHON" -m agent_tts.cli.main bench-server --url "http://127.0.0.1:$port" --clients 1 \
        --requests "$LATENCY_REQUESTS" --json "$OUT/$name-latency.json" | sed 's/^/   /'
    kill -TERM "$pid"
    wait "$pid" || true
}

bench alone
bench ray-1-replica --ray --replicas 1 --num-cpus "$NUM_CPUS"
bench ray-2-replicas --ray --replicas 2 --num-cpus "$NUM_CPUS"
echo "JSON and logs: $OUT"

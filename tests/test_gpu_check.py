"""scripts/gpu-check.sh in its CPU dry run: the same three parts as on a GPU, tiny models, small counts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from child_process import run_child

REPO = Path(__file__).resolve().parents[1]


def test_the_gpu_check_dry_run_passes_and_writes_its_figures(gsv_v2_fixture, tmp_path):
    out = tmp_path / "out"
    completed = run_child(["bash", str(REPO / "scripts" / "gpu-check.sh"), str(out), "--dry-run"], timeout=900,
                          env={**__import__("os").environ, "PYTHON": sys.executable,
                               "AGENT_TTS_FIXTURE": str(gsv_v2_fixture)})
    assert completed.returncode == 0, completed.stderr[-4000:]
    check = json.loads((out / "gpu_check.json").read_text())
    assert check["passed"] and check["device"] == "cpu"
    assert check["checks"]["graphs_vs_eager"]["identical_greedy_tokens"]
    assert set(check["speed"]["ar_step_ms_graphed"]) == {"1", "2"}
    bench = json.loads((out / "bench.json").read_text())
    assert bench["device"] == "cpu" and "sentence_20_chars" in bench["backends"]["torch fp32"]
    concurrency = json.loads((out / "concurrency.json").read_text())
    assert {(r["engine"], r["streams"]) for r in concurrency["records"]} >= {("batched", 2), ("threads", 2)}
    assert (out / "concurrency.png").stat().st_size > 10_000

"""scripts/compare-int8-kernels.py, one round: every implementation computes the products it times, and the whole-step
part runs (the fixture's GPT; real-size figures are in docs/precision.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from child_process import run_child

REPO = Path(__file__).resolve().parents[1]
IMPLEMENTATIONS = {"torch fp32 as stored", "torch fp32 oneDNN-packed", "torch int8, fp32 rows", "torch int8, bf16 rows",
                   "onnxruntime fp32 MatMul", "onnxruntime MatMulNBits 8-bit, fp32 compute",
                   "onnxruntime MatMulNBits 8-bit, int8 rows", "openvino fp32 weights, f32 compute",
                   "openvino int8 weights, f32 compute"}


def test_the_int8_kernel_comparison_checks_every_kernel_and_times_whole_steps(gsv_v2_fixture, tmp_path):
    gpt = next((gsv_v2_fixture / "models").glob("*.ckpt"))
    figures = tmp_path / "figures.json"
    completed = run_child([sys.executable, str(REPO / "scripts" / "compare-int8-kernels.py"), "--rounds", "1",
                           "--gpt", str(gpt), "--json", str(figures)], timeout=600)
    assert completed.returncode == 0, completed.stderr[-4000:]
    record = json.loads(figures.read_text())
    linears = record["figures"]["96 linears, one row"]
    assert IMPLEMENTATIONS <= set(linears) and all(ms > 0 for ms in linears.values())
    errors = record["products_error"]
    assert all(errors[name] < 1e-4 for name in ("torch fp32 as stored", "onnxruntime fp32 MatMul"))
    assert 1e-3 < errors["torch int8, fp32 rows"] < 0.05  # rounded to int8, not exact and not wrong
    steps = record["figures"]["AR step, one row"]
    assert {"torch fp32 step (as a voice loads it)", "torch int8 step (as a voice loads it)",
            "openvino int8 weights, f32 compute, step, growing lengths"} <= set(steps)
    assert "96 linears, one row" in completed.stdout and record["cpu"]["model"]

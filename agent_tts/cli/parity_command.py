"""``agent-tts parity FIXTURE_DIR``: recompute a reference fixture and report every item."""

from __future__ import annotations

import argparse
import sys
import time


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "parity",
        help="check agent-tts against a GPT-SoVITS reference fixture",
        description="Load a fixture folder (models/, pretrained/, ref/, golden/, and manifest.json at the root or in "
        "golden/; v2, v2Pro or v2ProPlus models) with agent-tts's own code, recompute every golden array and compare "
        "it with its tolerance.",
    )
    parser.add_argument("fixture_dir", help="fixture folder, e.g. ../shared/fixtures/gsv-v2 or gsv-v2pro-tiny")
    parser.add_argument("--backend", choices=("torch", "onnx"), default="torch",
                        help="onnx: export the fixture's voice and check the ONNX graphs against torch and the golden "
                        "arrays (logits 1e-3, first 60 greedy tokens exact, waveforms SNR >= 40 dB)")
    parser.add_argument("--precision", choices=("fp32", "bf16", "int8"), default="fp32",
                        help="bf16 or int8: check that precision against fp32 on this CPU instead (logits within 2%%, "
                        "greedy choices over 30 steps but near-ties, waveforms SNR >= 25 dB; docs/precision.md)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from agent_tts.onnx.parity import run_onnx_parity
    from agent_tts.parity import run_parity

    started = time.perf_counter()

    def progress(message: str) -> None:
        print(f"... {message} ({time.perf_counter() - started:.1f} s)", file=sys.stderr, flush=True)

    passed = failed = 0
    if args.precision != "fp32":
        from agent_tts.precision_check import check_precision

        results = check_precision(args.fixture_dir, args.precision)
    else:
        check = run_onnx_parity if args.backend == "onnx" else run_parity
        results = check(args.fixture_dir, progress=progress)
    for result in results:
        print(result.line(), flush=True)
        passed += result.passed
        failed += not result.passed
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1

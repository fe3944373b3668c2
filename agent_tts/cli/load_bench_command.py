"""``agent-tts bench-load``: time to build real-size v2 models from official-format files, and peak memory."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Runs in a fresh interpreter so import time and peak memory are those of a cold start.
_MEASURE = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import torch
from agent_tts.models.checkpoints import load_gpt, load_sovits
t1 = time.perf_counter()
gpt = load_gpt(sys.argv[1])
t2 = time.perf_counter()
sovits = load_sovits(sys.argv[2])
t3 = time.perf_counter()
params = lambda m: sum(p.numel() for p in m.parameters())
print(json.dumps({
    "import_s": t1 - t0, "gpt_load_s": t2 - t1, "sovits_load_s": t3 - t2, "load_s": t3 - t1,
    "gpt_params": params(gpt), "sovits_params": params(sovits),
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench-load",
        help="time loading real-size v2 model files (random weights)",
        description="Write real-size GPT-SoVITS v2 files with random weights in the official formats, "
        "then time building and loading them in a fresh process and report peak memory.",
    )
    parser.add_argument("--runs", type=int, default=3, help="cold-start runs to time (default 3)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from agent_tts.models.synthetic import write_gpt_checkpoint, write_sovits_checkpoint

    with tempfile.TemporaryDirectory(prefix="agent-tts-bench-") as tmp:
        started = time.perf_counter()
        print("writing real-size v2 files with random weights ...", file=sys.stderr, flush=True)
        gpt_path = write_gpt_checkpoint(Path(tmp) / "s1.ckpt")
        sovits_path = write_sovits_checkpoint(Path(tmp) / "s2.pth")
        sizes = {p.name: p.stat().st_size / 2**20 for p in (gpt_path, sovits_path)}
        print(f"  wrote {', '.join(f'{n} {s:.0f} MiB' for n, s in sizes.items())} "
              f"in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        runs = []
        for index in range(args.runs):
            output = subprocess.run([sys.executable, "-c", _MEASURE, str(gpt_path), str(sovits_path)],
                                    check=True, capture_output=True, text=True).stdout
            runs.append(json.loads(output.strip().splitlines()[-1]))
            print(f"  run {index + 1}/{args.runs}: load {runs[-1]['load_s']:.2f} s", file=sys.stderr, flush=True)

    best = min(runs, key=lambda r: r["load_s"])
    print(f"GPT    {best['gpt_params'] / 1e6:.1f} M params: load {best['gpt_load_s']:.2f} s")
    print(f"SoVITS {best['sovits_params'] / 1e6:.1f} M params: load {best['sovits_load_s']:.2f} s")
    print(f"total load (build + read + fp32): {best['load_s']:.2f} s "
          f"(median of {len(runs)}: {sorted(r['load_s'] for r in runs)[len(runs) // 2]:.2f} s); "
          f"python + torch import {best['import_s']:.2f} s; peak RSS {max(r['peak_rss_mib'] for r in runs):.0f} MiB")
    if args.json:
        Path(args.json).write_text(json.dumps({"files_mib": sizes, "runs": runs}, indent=2))
    return 0

"""``agent-tts export-onnx VOICE [OUTDIR]``: export a voice's models for the ONNX Runtime backend."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export-onnx",
        help="export a voice's GPT, SoVITS decoder, HuBERT and BERT to ONNX (for --backend onnx)",
        description="Export the voice's GPT (a prefill graph and a one-token step graph with the KV cache as "
        "explicit inputs and outputs), the SoVITS decoder, HuBERT (prompt codes), the speaker encoder and BERT "
        "to ONNX, check them against torch, and record the source files' hashes so a stale export is detected. "
        "Without OUTDIR the export goes where --backend onnx looks for it.",
    )
    parser.add_argument("voice", metavar="VOICE", help="a registered voice name or a voice TOML")
    parser.add_argument("outdir", metavar="OUTDIR", nargs="?", type=Path,
                        help="the export folder (default: $AGENT_TTS_HOME/onnx/NAME or ~/.cache/agent-tts/onnx/NAME)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from agent_tts.onnx.export import StepBar, default_export_dir, export_voice
    from agent_tts.voice import resolve_spec

    spec = resolve_spec(args.voice)
    outdir = args.outdir or default_export_dir(spec.name)
    print(f"agent-tts: exporting voice {spec.name!r} to {outdir}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    export_voice(spec, outdir, StepBar())
    size = sum(path.stat().st_size for path in outdir.rglob("*") if path.is_file())
    elsewhere = "" if outdir == default_export_dir(spec.name) else f" --onnx-dir {outdir}"
    print(f"agent-tts: exported in {time.perf_counter() - started:.1f} s, {size / 2**20:.0f} MiB in {outdir}; "
          f"speak with it: agent-tts say --voice {args.voice} --backend onnx{elsewhere} TEXT", file=sys.stderr)
    return 0

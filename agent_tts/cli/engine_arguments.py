"""The options `say` and `converse` share for choosing which engine speaks, and opening it from them."""

from __future__ import annotations

import argparse

from agent_tts.engines import EngineChoice, open_engine
from agent_tts.voice import BACKENDS


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=BACKENDS, default="torch",
                        help="run a GPT-SoVITS voice on torch or on its ONNX export (agent-tts export-onnx NAME)")
    parser.add_argument("--onnx-dir", metavar="DIR", help="with --backend onnx: the export folder, if not the default")


def engine_from(args: argparse.Namespace) -> EngineChoice:
    """The engine for `--voice`, `--backend` and `--onnx-dir`."""
    return open_engine(args.voice, backend=args.backend, onnx_dir=args.onnx_dir)

"""The options every command that loads a voice shares: backend, ONNX export folder, compute device, precision."""

from __future__ import annotations

import argparse

from agent_tts.compute_device import DEVICE_CHOICES
from agent_tts.engines import EngineChoice, open_engine
from agent_tts.models.precision import PRECISIONS
from agent_tts.voice import BACKENDS


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", metavar="DEV",
                        help=f"where the voice's models run: {DEVICE_CHOICES} (default auto: CUDA when torch sees a "
                        "GPU)")


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="what the voice's models compute in (default auto: int8 where the CPU has AMX or "
                        "AVX512-BF16, else fp32; int8: int8 weights for the GPT's AR step, the rest as bf16 where "
                        "native; bf16: everything but HuBERT, the faster for many concurrent streams; fp16: CUDA; "
                        "see docs/precision.md)")


def add_compute_arguments(parser: argparse.ArgumentParser) -> None:
    """--device and --precision."""
    add_device_argument(parser)
    add_precision_argument(parser)


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=BACKENDS, default="torch",
                        help="run a GPT-SoVITS voice on torch or on its ONNX export (agent-tts export-onnx NAME): "
                        "onnx on ONNX Runtime, openvino with the SoVITS decoder and BERT on OpenVINO")
    parser.add_argument("--onnx-dir", metavar="DIR",
                        help="with --backend onnx or openvino: the export folder, if not the default")
    add_compute_arguments(parser)


def engine_from(args: argparse.Namespace) -> EngineChoice:
    """The engine for `--voice`, `--backend`, `--onnx-dir`, `--device` and `--precision`."""
    return open_engine(args.voice, args.device, backend=args.backend, onnx_dir=args.onnx_dir,
                       precision=args.precision)

"""Entry point of the ``agent-tts`` console script."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from agent_tts import __version__
from agent_tts.cli import (bench_command, concurrency_bench_command, converse_command, default_voice_bench_command,
                           doctor_command, download_command, export_onnx_command, floor_bench_command,
                           frontend_bench_command, load_bench_command, parity_command, phones_command, say_command,
                           serve_command, server_bench_command, stress_command, voices_command)
from agent_tts.errors import AgentTTSError

COMMANDS = (converse_command, say_command, serve_command, voices_command, download_command, export_onnx_command,
            doctor_command, phones_command, parity_command, bench_command, load_bench_command, frontend_bench_command,
            default_voice_bench_command, floor_bench_command, concurrency_bench_command, server_bench_command,
            stress_command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agent-tts", description="A real-time GPT-SoVITS voice for agents.")
    parser.add_argument("--version", action="version", version=f"agent-tts {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except AgentTTSError as exc:
        print(f"agent-tts: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

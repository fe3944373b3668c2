"""``agent-tts converse``: the main job: a short scripted spoken conversation, streamed to the speaker."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from agent_tts.audio.wav_sink import WavSink
from agent_tts.cli.audio_output import open_output
from agent_tts.cli.engine_arguments import add_backend_arguments, engine_from
from agent_tts.conversation.runner import run_conversation
from agent_tts.conversation.scripted_llm import DEFAULT_SCRIPT, ScriptedLLM

FALLBACK_WAV = "conversation.wav"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "converse",
        help="a scripted spoken conversation through the streaming pipeline (the README's first command)",
        description="An offline scripted LLM streams its replies token by token; each reply is segmented, "
        "synthesized clause by clause and played on the default sound device while the rest is generated. "
        f"Without a sound device the audio goes to {FALLBACK_WAV}. Prints each turn's first-audio time.",
    )
    parser.add_argument("--voice", metavar="NAME", help="a registered voice or a voice TOML (default: the registry's "
                        "default, else the bundled default voice)")
    add_backend_arguments(parser)
    parser.add_argument("--output-device", metavar="DEV", help="sound device name or index (default: the system "
                        "default)")
    parser.add_argument("--out", metavar="FILE.wav", help="write the conversation to a WAV file instead of playing it")
    parser.add_argument("--tokens-per-second", type=float, default=40.0, help="the scripted LLM's pace (default 40)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    choice = engine_from(args)
    print(f"agent-tts: {choice.description}", file=sys.stderr, flush=True)
    # The device starts while the engine warms up: some sound servers take a moment to settle.
    output = open_output(choice.engine.sample_rate, args.out, args.output_device, FALLBACK_WAV)
    choice.engine.warm_up()
    print(f"agent-tts: ready in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    try:
        reports = asyncio.run(run_conversation(choice.engine, DEFAULT_SCRIPT, output,
                                               ScriptedLLM(tokens_per_second=args.tokens_per_second)))
    finally:
        output.close()
        choice.engine.close()
    first_audio = [report.first_audio_s for report in reports if report.first_audio_s is not None]
    if first_audio:
        print(f"first audio per turn: {', '.join(f'{1000 * s:.0f} ms' for s in first_audio)} "
              f"(from the end of the user's turn, the LLM's first token included)")
    if isinstance(output, WavSink):
        print(f"agent-tts: wrote {output.path}")
    return 0

"""``agent-tts say``: speak text from the arguments or, streamed line by line, from standard input."""

from __future__ import annotations

import argparse
import asyncio
import sys

from agent_tts.audio.player import PlaybackStats
from agent_tts.audio.wav_sink import WavSink
from agent_tts.cli.audio_output import open_output
from agent_tts.cli.engine_arguments import add_backend_arguments, engine_from
from agent_tts.conversation.stdin import stdin_lines
from agent_tts.engine.synthesizer import SynthesisOptions
from agent_tts.errors import AgentTTSError
from agent_tts.text.language_split import LANGUAGES


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "say",
        help="speak TEXT (or standard input, as it arrives) on the speaker or into a WAV file",
        description="Stream TEXT to the sound device, clause by clause. With '-' the text is read from standard "
        "input and spoken as it arrives (pipe an LLM into it). Without a sound device, use --out.",
    )
    parser.add_argument("text", nargs="+", metavar="TEXT", help="the text, or - for standard input")
    parser.add_argument("--voice", metavar="NAME", help="a registered voice or a voice TOML")
    parser.add_argument("--language", choices=LANGUAGES, default="auto")
    parser.add_argument("--speed", type=float, default=1.0)
    add_backend_arguments(parser)
    parser.add_argument("--output-device", metavar="DEV", help="sound device name or index (default: the system "
                        "default)")
    parser.add_argument("--out", metavar="FILE.wav", help="write a WAV file instead of playing")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    options = dict(language=args.language, speed=args.speed)
    SynthesisOptions(**options)  # a bad option is one line before anything loads
    choice = engine_from(args)
    print(f"agent-tts: {choice.description}", file=sys.stderr, flush=True)
    output = open_output(choice.engine.sample_rate, args.out, args.output_device, "say.wav")
    text = " ".join(args.text)

    async def speak() -> PlaybackStats:
        source = stdin_lines() if text == "-" else text
        stats = await output.play(choice.engine.stream(source, **options))
        if stats.first_audio is not None:
            print(f"agent-tts: first audio after {1000 * (stats.first_audio - stats.started):.0f} ms, "
                  f"{stats.played_seconds:.1f} s of speech, {stats.underruns} underruns", file=sys.stderr)
        return stats

    try:
        stats = asyncio.run(speak())
    finally:
        output.close()
        choice.engine.close()
    if stats.first_audio is None:
        if isinstance(output, WavSink):
            output.path.unlink(missing_ok=True)
        raise AgentTTSError(nothing_to_say(choice.engine))
    if isinstance(output, WavSink):
        print(f"agent-tts: wrote {output.path}", file=sys.stderr)
    return 0


def nothing_to_say(engine) -> str:
    """Why a text gave no audio: what the engine skipped, if it says, else that nothing in it was speakable."""
    explain = getattr(engine, "unspeakable_message", None)
    if explain is not None and getattr(engine, "dropped", None):
        return f"nothing to say: {explain()}"
    return "nothing to say: the text has no words the voice can speak"

"""``agent-tts stress``: cancel storms, long sessions and fuzzed input against a real engine, with their figures."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from agent_tts.cli.engine_arguments import add_backend_arguments
from agent_tts.errors import AgentTTSError
from agent_tts.stress.soak import MAX_GROWTH_MIB

KINDS = ("cancel-storm", "long-session", "fuzz")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stress",
        help="cancel storms, long sessions and fuzzed input against the engine; exits 1 if an invariant broke",
        description="cancel-storm: COUNT streams, each cancelled at a random moment by aclose(), task "
        "cancellation, cancel_active() or a pipecat InterruptionFrame (0 hangs, 0 chunks after a cancel, every "
        "worker joined, nothing begun after a cancel, the next request served as fast). long-session: COUNT "
        "units through one engine (memory growth within --max-growth-mib after the warm-up, no thread, open file "
        "or stream worker added). fuzz: COUNT random texts as random "
        "deltas through stream() and the pipecat service (only AgentTTSError escapes, audio bounded by input).",
    )
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--count", type=int, default=100, help="streams, units or texts (default 100)")
    parser.add_argument("--voice", metavar="NAME", help="a registered voice or a voice TOML")
    parser.add_argument("--fixture", metavar="DIR", help="a parity fixture folder to make the voice from "
                        "(its models, reference clip and text), e.g. ../shared/fixtures/gsv-v2")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-chars", type=int, default=400, help="fuzz: the longest random text (default 400)")
    parser.add_argument("--long-chars", type=int, default=0, help="fuzz: also one text this long (e.g. 100000)")
    parser.add_argument("--max-tokens-per-phone", type=float, metavar="X",
                        help="fuzz: cap each unit's token budget at X tokens per phone (default: the engine's). "
                        "For voices that seldom say EOS, such as the parity fixtures' random GPTs, on which a "
                        "100,000-character text would otherwise be hours of audio")
    parser.add_argument("--fixed-tokens", type=int, metavar="N",
                        help="long-session: every unit exactly N tokens (default: until EOS or the token budget; "
                        "the parity fixtures' random GPTs never say EOS)")
    parser.add_argument("--warm-up", type=int, metavar="UNITS",
                        help="long-session: units before memory is first read (default: a tenth of COUNT, at least "
                        "one stream of 20)")
    parser.add_argument("--max-growth-mib", type=float, default=MAX_GROWTH_MIB, metavar="MIB",
                        help="long-session: the most resident memory may grow after the warm-up (default "
                        f"{MAX_GROWTH_MIB:g})")
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    add_backend_arguments(parser)
    parser.set_defaults(handler=run)


def _engine(args: argparse.Namespace):
    from agent_tts.engines import open_engine

    if args.fixture:
        if args.voice:
            raise AgentTTSError("give --voice or --fixture, not both")
        from agent_tts.stress.fixture_voice import fixture_voice_toml

        args.voice = str(fixture_voice_toml(Path(args.fixture)))
    return open_engine(args.voice, args.device, backend=args.backend, onnx_dir=args.onnx_dir)


def run(args: argparse.Namespace) -> int:
    from agent_tts.stress.cancel_storm import cancel_storm
    from agent_tts.stress.fuzz import fuzz_inputs
    from agent_tts.stress.soak import long_session

    if args.count < 1:
        raise AgentTTSError("--count must be at least 1")
    cap = args.max_tokens_per_phone
    if cap is not None and args.kind != "fuzz":
        raise AgentTTSError("--max-tokens-per-phone is for fuzz")
    if args.kind != "long-session" and (args.fixed_tokens is not None or args.warm_up is not None):
        raise AgentTTSError("--fixed-tokens and --warm-up are for long-session")
    if args.fixed_tokens is not None and args.fixed_tokens < 1:
        raise AgentTTSError("--fixed-tokens must be at least 1")
    if args.warm_up is not None and not 0 <= args.warm_up < args.count:
        raise AgentTTSError("--warm-up must be at least 0 and less than --count")
    choice = _engine(args)
    print(f"agent-tts: {choice.description}", file=sys.stderr, flush=True)
    engine = choice.engine

    def progress(done: int, total: int) -> None:
        print(f"  {done}/{total}", file=sys.stderr, flush=True)

    def note(message: str) -> None:
        print(f"  {message}", file=sys.stderr, flush=True)

    try:
        engine.warm_up()
        if args.kind == "cancel-storm":
            report = asyncio.run(cancel_storm(engine, args.count, seed=args.seed, progress=progress))
        elif args.kind == "long-session":
            options = {} if args.fixed_tokens is None else {"fixed_tokens": args.fixed_tokens}
            report = asyncio.run(long_session(engine, args.count, seed=args.seed, options=options,
                                              warm_up_units=args.warm_up, max_growth_mib=args.max_growth_mib,
                                              progress=progress))
        else:
            options = {} if cap is None else {"max_tokens_per_phone": cap}
            report = asyncio.run(fuzz_inputs(engine, args.count, max_chars=args.max_chars,
                                             long_chars=args.long_chars, seed=args.seed, options=options,
                                             progress=progress, note=note))
    finally:
        engine.close()
    summary = {"kind": args.kind, "engine": choice.description, **report.summary()}
    if cap is not None:
        summary["max_tokens_per_phone"] = cap
    ok = getattr(report, "ok", True)
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    return 0 if ok else 1

"""``agent-tts bench-default-voice``: first audio and RTF of the bundled default voice on this machine."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

# First units as the segmenter cuts them: a 7-word clause, and the 5-word first clause of a long sentence.
CLAUSE = "Sure, I can help you with that, "
SENTENCE = "Your order shipped on Monday, and the courier expects to deliver it by Thursday afternoon."
REPLY = ("Hi there, thanks for reaching out. I can see your order shipped on Monday, and the courier expects to "
         "deliver it by Thursday afternoon. Is there anything else I can help you with today?")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench-default-voice", help="time the bundled default voice: first audio, RTF",
        description="Time to first audio of the bundled default voice from a unit's text (phonemes + model; "
        "p50 and p95), for a 7-word clause and for a long sentence (whose first clause is spoken first), the "
        "first audio of a reply streamed by an "
        "LLM-paced text source from its first token, and the RTF of a whole reply.")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.set_defaults(handler=run)


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"p50_ms": 1000 * statistics.median(ordered),
            "p95_ms": 1000 * ordered[int(round(0.95 * (len(ordered) - 1)))], "n": len(ordered)}


async def _first_audio(engine, text) -> float:
    stream = engine.stream(text)
    try:
        chunk = await stream.__anext__()
    finally:
        await stream.aclose()
    return chunk.timings.since_unit_ready_s


async def _from_first_token(engine) -> float:
    from agent_tts.conversation.scripted_llm import ScriptedLLM

    first_token: list[float] = []

    async def deltas():
        async for token in ScriptedLLM(first_token_s=0.0, tokens_per_second=40).stream(REPLY):
            first_token.append(time.perf_counter()) if not first_token else None
            yield token
    stream = engine.stream(deltas())
    try:
        await stream.__anext__()
    finally:
        await stream.aclose()
    return time.perf_counter() - first_token[0]


async def _rtf(engine) -> float:
    started = time.perf_counter()
    pcm = await engine.synthesize_async(REPLY)
    return (time.perf_counter() - started) / (len(pcm) / engine.sample_rate)


def run(args: argparse.Namespace) -> int:
    from agent_tts.default_voice.engine import DefaultVoiceSynthesizer

    engine = DefaultVoiceSynthesizer()
    engine.warm_up()
    figures = {"device": "cpu", "voice": engine.name}
    try:
        for name, text in (("clause_7_words", CLAUSE), ("sentence_first_clause", SENTENCE)):
            figures[name] = _percentiles([asyncio.run(_first_audio(engine, text)) for _ in range(args.runs)])
        figures["reply_from_first_llm_token"] = _percentiles(
            [asyncio.run(_from_first_token(engine)) for _ in range(max(5, args.runs // 3))])
        figures["rtf"] = statistics.median(asyncio.run(_rtf(engine)) for _ in range(3))
    finally:
        engine.close()
    for name in ("clause_7_words", "sentence_first_clause", "reply_from_first_llm_token"):
        f = figures[name]
        print(f"{name:28s} first audio p50 {f['p50_ms']:6.1f} ms  p95 {f['p95_ms']:6.1f} ms  (n={f['n']})")
    print(f"{'whole reply':28s} RTF {figures['rtf']:.3f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(figures, handle, indent=2)
    return 0

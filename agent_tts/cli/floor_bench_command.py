"""``agent-tts bench-floor``: the least first-audio time and real-time factor any implementation could reach here.

Counts the work of the first unit of `agent-tts bench`'s two cases on a
real-size voice (random weights), measures this machine's best fp32 and bf16
matrix-product rates and read bandwidth, and prints each part's floor in
fp32, bf16 and int8 (as `Voice.load` runs them on this CPU) beside the engine
issue's targets. Compare with `agent-tts bench` figures from the same machine.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import asdict
from pathlib import Path

from agent_tts.cli.bench_voice import bench_voice_toml, say

# The engine issue's targets for this CPU class (2 cores, fp32, real size).
FIRST_AUDIO_TARGET_MS = 400.0
RTF_TARGET = 0.5
FLOOR_PRECISIONS = ("fp32", "bf16", "int8")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench-floor",
        help="the least first-audio time and RTF this machine allows (FLOPs and bytes over measured peak rates)",
        description="Count the FLOPs and bytes of each part of the first audio and of steady speech on a "
        "real-size v2 voice with random weights, measure this machine's best fp32 and bf16 matrix-product rates "
        "and memory read bandwidth, and print the least time each part can take in fp32, bf16 and int8: a floor "
        "for any implementation at that precision.",
    )
    parser.add_argument("--voice", metavar="TOML", help="count this voice instead of a random real-size one")
    parser.add_argument("--repeats", type=int, default=20, help="timed repeats per rate measurement (default 20)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from agent_tts.cli.bench_command import PARAGRAPH, SENTENCE
    from agent_tts.perf.machine_rates import MachineRates, measure_machine_rates
    from agent_tts.cpu_features import cpu_features
    from agent_tts.perf.work_floor import count_work, floor_precision, time_floor
    from agent_tts.text.segmenter import segment_text
    from agent_tts.voice import Voice

    with tempfile.TemporaryDirectory(prefix="agent-tts-floor-") as tmp:
        toml = bench_voice_toml(args.voice, Path(tmp))
        say("measuring this machine's matrix-product rate and read bandwidth ...")
        before = measure_machine_rates(args.repeats)
        voice = Voice.load(toml, "cpu")  # the floors are this CPU's
        voice.frontend.warm_up()
        cases = {}
        for name, text in (("sentence_20_chars", SENTENCE), ("paragraph_3_sentences", PARAGRAPH)):
            unit = segment_text(text)[0]
            say(f"counting the work of {unit!r} ...")
            cases[name] = (unit, count_work(voice, unit))
        say("measuring the rates again (the best of both counts) ...")
        after = measure_machine_rates(args.repeats)
    rates = MachineRates(max(before.gemm_gflops, after.gemm_gflops), max(before.read_gb_per_s, after.read_gb_per_s),
                         before.threads, max(before.bf16_gemm_gflops, after.bf16_gemm_gflops))
    cpu = cpu_features()
    figures = {"cpu": cpu.as_dict(), "cpu_summary": cpu.summary(), "rates": asdict(rates),
               "rates_before": asdict(before), "rates_after": asdict(after),
               "targets": {"first_audio_ms": FIRST_AUDIO_TARGET_MS, "rtf": RTF_TARGET}, "cases": {}}
    for name, (unit, work) in cases.items():
        floors = {precision: time_floor(work, rates, floor_precision(precision, cpu.native_bf16)).as_dict()
                  for precision in FLOOR_PRECISIONS}
        figures["cases"][name] = {"unit": unit, "work": work.as_dict(), "floor": floors["fp32"], "floors": floors}
    _print(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, ensure_ascii=False, default=str))
    return 0


def rtf_verdict(floor: dict) -> str:
    """Whether the RTF target is within reach: judged by the streaming floor, the measure the target is set in (the
    whole-utterance floor is lower, since a streaming window re-decodes its left context)."""
    return _verdict(floor["rtf_streaming"], RTF_TARGET)


def _verdict(floor: float, target: float) -> str:
    if floor <= target:
        return "within reach at these rates"
    return f"out of reach at these rates: it needs a machine {floor / target:.2f}x faster in both"


def _print(figures: dict) -> None:
    rates = figures["rates"]
    print(f"CPU: {figures['cpu_summary']}")
    print(f"machine: best matrix product fp32 {rates['gemm_gflops']:.0f} GFLOP/s, bf16 "
          f"{rates['bf16_gemm_gflops']:.0f} GFLOP/s, best read {rates['read_gb_per_s']:.1f} GB/s, "
          f"{rates['threads']} threads (best of two measurements)")
    for name, case in figures["cases"].items():
        work = case["work"]
        plan = work["chunk_plan"]
        print(f"{name}: first unit {case['unit']!r} ({work['text_phones']} phones, "
              f"{work['prefill_positions']} prefill positions)")
        print(f"  {'part':<22} {'GFLOP':>8} {'MB fp32':>8}  floor ms: " + "  ".join(f"{p:>6}" for p in case["floors"]))
        floors = list(case["floors"].values())
        steps = floors[0]["first_chunk_steps"]
        rows = (
            ("BERT", work["bert_gflop"], work["bert_mbytes"], "bert_ms", 1),
            ("GPT prefill", work["prefill_gflop"], work["gpt_mbytes"], "prefill_ms", 1),
            (f"{steps} AR steps", work["step_gflop"] * steps, work["step_mbytes"] * steps, "step_ms", steps),
            (f"decode of {work['first_window_tokens']} tokens", work["first_window_gflop"], work["sovits_mbytes"],
             "first_decode_ms", 1),
        )
        for part, gflop, mbytes, key, times in rows:
            print(f"  {part:<22} {gflop:8.2f} {mbytes:8.0f}            "
                  + "  ".join(f"{floor[key] * times:6.0f}" for floor in floors))
        for floor in floors:
            print(f"  {floor['precision']}: first audio floor {floor['first_audio_ms']:.0f} ms with a "
                  f"{plan['first_tokens']}-token first chunk (target {FIRST_AUDIO_TARGET_MS:.0f}: "
                  f"{_verdict(floor['first_audio_ms'], FIRST_AUDIO_TARGET_MS)}); "
                  f"{floor['first_audio_one_token_chunk_ms']:.0f} ms with a 1-token first chunk")
            print(f"    AR step floor {floor['step_ms']:.1f} ms ({floor['step_mbytes']:.0f} MB read per token); "
                  f"RTF floor: whole-utterance decode {floor['rtf_whole']:.2f}, streaming "
                  f"({plan['left_context']}+{plan['max_tokens']}+{plan['holdback']}-token windows) "
                  f"{floor['rtf_streaming']:.2f}, one part at a time (streaming target {RTF_TARGET}: "
                  f"{rtf_verdict(floor)}); {floor['rtf_overlapped']:.2f} if AR steps and "
                  f"decoding overlapped perfectly")

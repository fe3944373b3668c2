"""``agent-tts bench-concurrency``: N concurrent streams, the batched engine against thread-per-stream, one run."""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from agent_tts.cli.bench_command import PARAGRAPH, SENTENCE, TOKENS_PER_PHONE
from agent_tts.cli.bench_voice import bench_voice_toml, say
from agent_tts.cli.engine_arguments import add_device_argument
from agent_tts.models.packed_linear import voice_linear_layouts
from agent_tts.models.precision import PRECISIONS

TEXTS = {"sentence_20_chars": SENTENCE, "paragraph_3_sentences": PARAGRAPH}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench-concurrency",
        help="N concurrent streams: batched AR steps against one thread per stream (real-size random weights)",
        description="Build a real-size GPT-SoVITS v2 voice with random weights and run N concurrent streams of the "
        "20-character sentence and of the 3-sentence paragraph through the batched engine (one AR step for every "
        "stream) and through thread-per-stream decoding, in the same run: aggregate AR tokens and audio seconds "
        "per wall second, per-stream first audio p50/p95 and RTF, peak memory. --stage ar runs the AR decoding "
        "alone as well (SoVITS decoding costs the same per stream either way).",
    )
    parser.add_argument("--streams", nargs="+", type=int, default=[1, 2, 4, 8, 16], metavar="N")
    parser.add_argument("--engines", nargs="+", choices=("batched", "threads"), default=["batched", "threads"])
    parser.add_argument("--texts", nargs="+", choices=tuple(TEXTS), default=list(TEXTS))
    parser.add_argument("--stage", nargs="+", choices=("full", "ar"), default=["full", "ar"],
                        help="full: the whole pipeline, audio out; ar: the AR decoding alone")
    add_device_argument(parser)
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="what the voice's models compute in (default fp32; auto, bf16, int8, fp16: see "
                        "docs/precision.md)")
    parser.add_argument("--voice", metavar="TOML", help="use this voice instead of a random real-size one")
    parser.add_argument("--json", metavar="PATH", help="also write the records as JSON")
    parser.add_argument("--plot", metavar="PATH.png", help="throughput and first-audio p95 against streams")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from agent_tts.compute_device import compute_device
    from agent_tts.cpu_features import cpu_features
    from agent_tts.errors import OptionError
    from agent_tts.perf.concurrency import as_dict, measure_ar_only, measure_streams
    from agent_tts.voice import Voice

    if min(args.streams) < 1:
        raise OptionError("--streams: every count must be at least 1")
    device = compute_device(args.device)
    options = dict(fixed_tokens_per_phone=TOKENS_PER_PHONE)
    records: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="agent-tts-bench-") as tmp:
        started = time.perf_counter()
        voice = Voice.load(bench_voice_toml(args.voice, Path(tmp)), device, precision=args.precision)
        precision = voice.precision.describe() if voice.precision is not None else "fp32"
        linears = voice_linear_layouts(voice)
        say(f"voice loaded in {time.perf_counter() - started:.1f} s ({precision}; linears: {linears})")
    if device.type == "cpu":
        say(f"CPU: {cpu_features().summary()}")
    voice.frontend.warm_up()
    for engine in args.engines:  # warm-up: first calls allocate caches and load kernels
        measure_streams(voice, engine, "你好，很高兴认识你。", 1, options)
    measures = {"full": measure_streams, "ar": measure_ar_only}
    for stage in args.stage:
        for text_name in args.texts:
            for streams in args.streams:
                for engine in args.engines:  # side by side at each count, so both see the same hour
                    say(f"{stage}, {text_name}, {streams} stream(s), {engine} ...")
                    record = as_dict(measures[stage](voice, engine, TEXTS[text_name], streams, options))
                    record["text_name"] = text_name
                    records.append(record)
                    _print_record(record)
    figures = {"device": str(device), "machine": _machine(device), "precision": precision, "linears": linears,
               "cpu": cpu_features().summary(), "torch": torch.__version__,
               "torch_threads": torch.get_num_threads(), "tokens_per_phone": TOKENS_PER_PHONE, "records": records}
    _print_summary(records)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, ensure_ascii=False))
    if args.plot:
        from agent_tts.perf.concurrency_plot import plot_concurrency

        voice_name = args.voice or "real-size random-weight v2 voice"
        path = plot_concurrency(records, args.plot, f"agent-tts bench-concurrency, {figures['machine']}, "
                                                    f"{device}, {precision}, {voice_name}")
        say(f"plot: {path}")
    return 0


def _machine(device) -> str:
    import os

    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def _print_record(record: dict) -> None:
    print(f"{record['stage']:4} {record['text_name']:22} {record['streams']:3} streams {record['engine']:8} "
          f"AR {record['ar_tokens_per_s']:7.1f} tok/s  audio {record['audio_s_per_wall_s']:5.2f} s/s  "
          f"first p50/p95 {1000 * record['first_audio_p50_s']:6.0f}/{1000 * record['first_audio_p95_s']:6.0f} ms  "
          f"RTF p50 {record['rtf_p50']:5.2f}  peak {record['peak_rss_mib']:6.0f} MiB  rows {record['max_batch_rows']}"
          + _scheduler_line(record), flush=True)


def _scheduler_line(record: dict) -> str:
    """The batched engine's steady state: its full-batch steps alone, and the share of the wall in prefills."""
    parts = []
    if record.get("full_batch_step_tokens_per_s"):
        parts.append(f"full-batch steps {record['full_batch_step_tokens_per_s']:.1f} tok/s")
    if record.get("prefill_s") is not None:
        parts.append(f"prefills {100 * record['prefill_s'] / record['wall_s']:.0f}% of the wall "
                     f"in {record['prefill_passes']} passes")
    return f"  ({', '.join(parts)})" if parts else ""


def _print_summary(records: list[dict]) -> None:
    """Batched over threads at each count, and batched N streams over batched 1 stream (aggregate AR tokens/s)."""
    by_key = {(r["stage"], r["text_name"], r["engine"], r["streams"]): r for r in records}
    for (stage, text, engine, streams), record in sorted(by_key.items()):
        if engine != "batched":
            continue
        threads = by_key.get((stage, text, "threads", streams))
        single = by_key.get((stage, text, "batched", 1))
        parts = []
        if threads:
            parts.append(f"{record['ar_tokens_per_s'] / threads['ar_tokens_per_s']:.2f}x threads")
        if single and streams > 1:
            parts.append(f"{record['ar_tokens_per_s'] / single['ar_tokens_per_s']:.2f}x one stream")
            if record.get("full_batch_step_tokens_per_s") and single.get("full_batch_step_tokens_per_s"):
                steps = record["full_batch_step_tokens_per_s"] / single["full_batch_step_tokens_per_s"]
                parts.append(f"its full-batch steps {steps:.2f}x one stream's")
        if parts:
            print(f"{stage:4} {text:22} {streams:3} streams: batched AR tokens/s = {', '.join(parts)}")

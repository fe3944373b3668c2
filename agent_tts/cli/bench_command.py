"""``agent-tts bench``: first-audio time, AR and SoVITS speed, RTF and memory, streaming vs whole, one run.

Every backend and precision asked for is measured in the same run, one after
the other per case, so that their figures share the machine's hour.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

from agent_tts.cli.bench_voice import bench_voice_tomls, say
from agent_tts.cli.engine_arguments import add_device_argument
from agent_tts.models.packed_linear import voice_linear_layouts
from agent_tts.models.precision import PRECISIONS
from agent_tts.voice import BACKENDS

SENTENCE = "今天天气很好，我们一起去公园散步，好吗？"
PARAGRAPH = ("您的订单已经发货，预计明天下午送到。如果您不在家，快递员会把包裹放在门卫室。"
             "还有其他问题的话，随时联系我们的客服。")
# Mandarin runs about 4 syllables (8 phones) per second at 25 tokens per second.
TOKENS_PER_PHONE = 3.0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="time the streaming engine against the whole-sentence path (real-size random weights)",
        description="Build a real-size GPT-SoVITS v2 voice with random weights (GPT, SoVITS, HuBERT, RoBERTa-large, "
        "a synthetic reference clip), force a fixed token count, and time a 20-character Chinese sentence and "
        "a 3-sentence paragraph through the streaming path and the whole-sentence path (AR to the end, then "
        "one decode) in the same run.",
    )
    add_device_argument(parser)
    parser.add_argument("--runs", type=int, default=20, help="first-audio runs per case and path (default 20)")
    parser.add_argument("--full-runs", type=int, default=2,
                        help="complete runs per case and path for RTF, after one more that is reported apart (it "
                        "meets the case's window lengths for the first time; default 2)")
    parser.add_argument("--voice", metavar="TOML", help="use this voice instead of a random real-size one")
    parser.add_argument("--versions", nargs="+", choices=("v2", "v2Pro", "v2ProPlus"), default=["v2"],
                        help="random real-size voices of these SoVITS versions, measured in the same run (they share "
                        "the GPT; v2Pro adds the speaker-verification model, run once per reference clip, and "
                        "v2ProPlus a wider decoder)")
    parser.add_argument("--precision", nargs="+", choices=PRECISIONS, default=["fp32"],
                        help="one or more, measured in the same run (the ONNX backend runs fp32; OpenVINO fp32, bf16, "
                        "int8, auto): "
                        "auto (int8 where the CPU has AMX or AVX512-BF16, else fp32), bf16, int8 (int8 weights for the "
                        "GPT's AR step, the rest as bf16 where native), fp16 (CUDA); default fp32")
    parser.add_argument("--backend", nargs="+", choices=BACKENDS, default=["torch"],
                        help="one or more, measured in the same run (onnx and openvino export the voice first; "
                        "openvino: the SoVITS decoder and BERT on OpenVINO, the GPT on ONNX Runtime, or on torch "
                        "with int8 weights for int8 and for auto on AMX/AVX512-BF16)")
    parser.add_argument("--first-chunk-tokens", nargs="+", type=int, metavar="N",
                        help="first-chunk sizes in tokens: the first is used for every figure, the others get "
                        "streaming first-audio runs of their own (default: the engine's, 10)")
    parser.add_argument("--onnx-dir", metavar="DIR",
                        help="with --voice: its ONNX export, instead of exporting it in the run")
    parser.add_argument("--streaming-only", action="store_true",
                        help="skip the whole-sentence path (the slow half of a run): for comparing configurations")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.set_defaults(handler=run)


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"p50": statistics.median(ordered), "p95": ordered[int(round(0.95 * (len(ordered) - 1)))],
            "n": len(ordered)}


async def _stream_first_audio(synthesizer, text: str, seed: int, plan) -> dict:
    stream = synthesizer.stream(text, seed=seed, fixed_tokens_per_phone=TOKENS_PER_PHONE, chunk_plan=plan)
    try:
        chunk = await stream.__anext__()
    finally:
        await stream.aclose()
    t = chunk.timings
    return {"first_audio_s": t.since_unit_ready_s, "frontend_s": t.frontend_s, "bert_s": t.bert_s,
            "prefill_s": t.prefill_s, "first_decode_ms": t.decode_ms, "first_chunk_audio_s": chunk.seconds}


async def _stream_full(synthesizer, text: str, seed: int, plan) -> dict:
    started = time.perf_counter()
    chunks = [chunk async for chunk in synthesizer.stream(text, seed=seed, fixed_tokens_per_phone=TOKENS_PER_PHONE,
                                                          chunk_plan=plan)]
    wall = time.perf_counter() - started
    audio = sum(chunk.seconds for chunk in chunks)
    last_of_unit = [chunk for chunk in chunks if chunk.last]
    return {"rtf": wall / audio, "audio_s": audio, "wall_s": wall,
            "ar_ms_per_token": statistics.mean(c.timings.ar_ms_per_token for c in last_of_unit),
            "sovits_ms_per_chunk": statistics.mean(c.timings.decode_ms for c in chunks),
            "chunks": len(chunks)}


def _whole_first_audio(voice, text: str, seed: int) -> float:
    from agent_tts.engine.synthesizer import SynthesisOptions, whole_utterance
    from agent_tts.text.segmenter import SegmenterOptions, segment_text

    sentence_units = SegmenterOptions(first_min_cjk_chars=60, first_min_words=40)
    first_sentence = segment_text(text, sentence_units)[0]
    started = time.perf_counter()
    whole_utterance(voice, first_sentence, SynthesisOptions(seed=seed, fixed_tokens_per_phone=TOKENS_PER_PHONE,
                                                            segmenter=sentence_units))
    return time.perf_counter() - started


def _whole_full(voice, text: str, seed: int) -> dict:
    from agent_tts.engine.synthesizer import SynthesisOptions, whole_utterance
    from agent_tts.text.segmenter import SegmenterOptions

    options = SynthesisOptions(seed=seed, fixed_tokens_per_phone=TOKENS_PER_PHONE,
                               segmenter=SegmenterOptions(first_min_cjk_chars=60, first_min_words=40))
    started = time.perf_counter()
    pcm = whole_utterance(voice, text, options)
    wall = time.perf_counter() - started
    return {"rtf": wall / (len(pcm) / voice.sample_rate), "audio_s": len(pcm) / voice.sample_rate, "wall_s": wall}


def _load_voice(toml: Path, backend: str, precision: str, args: argparse.Namespace, scratch: Path):
    from agent_tts.voice import Voice, VoiceSpec

    if backend != "torch":
        from agent_tts.onnx.export import StepBar, export_voice

        export_dir = Path(args.onnx_dir) if args.onnx_dir else scratch / "onnx" / toml.stem
        if not export_dir.is_dir():
            started = time.perf_counter()
            say("exporting the voice to ONNX ...")
            export_voice(VoiceSpec.from_toml(toml), export_dir, StepBar())
            say(f"  done in {time.perf_counter() - started:.1f} s")
        return Voice.load(toml, device=args.device, backend=backend, onnx_dir=export_dir, precision=precision)
    return Voice.load(toml, device=args.device, precision=precision)


def _first_audio_figures(runs: list[dict]) -> dict:
    return {"first_audio_s": _percentiles([run["first_audio_s"] for run in runs]),
            "first_audio_parts_s": {key: statistics.median(run[key] for run in runs)
                                    for key in ("frontend_s", "bert_s", "prefill_s")},
            "first_chunk_decode_ms": statistics.median(run["first_decode_ms"] for run in runs),
            "first_chunk_audio_s": statistics.median(run["first_chunk_audio_s"] for run in runs)}


def _bench_case(synthesizer, text: str, args: argparse.Namespace, plans: list) -> dict:
    voice = synthesizer.voice
    plan = plans[0]
    streaming = [asyncio.run(_stream_first_audio(synthesizer, text, seed, plan)) for seed in range(args.runs)]
    # The case's first complete run meets its window lengths for the first time (OpenVINO compiles each, oneDNN
    # makes each bf16 convolution's kernels): reported on its own, not in the steady figures.
    first_full = asyncio.run(_stream_full(synthesizer, text, args.full_runs, plan))
    stream_full = [asyncio.run(_stream_full(synthesizer, text, seed, plan)) for seed in range(args.full_runs)]
    first = _first_audio_figures(streaming)
    other_first_chunks = {
        other.first_tokens: _first_audio_figures(
            [asyncio.run(_stream_first_audio(synthesizer, text, seed, other)) for seed in range(args.runs)])
        for other in plans[1:]}
    return {
        "first_chunk_tokens": plan.first_tokens,
        "streaming": {
            **first,
            "ar_ms_per_token": statistics.median(run["ar_ms_per_token"] for run in stream_full),
            "sovits_ms_per_chunk": statistics.median(run["sovits_ms_per_chunk"] for run in stream_full),
            "rtf": statistics.median(run["rtf"] for run in stream_full),
            "rtf_first_complete_run": first_full["rtf"],
            "audio_s": stream_full[0]["audio_s"],
        },
        "streaming_first_audio_by_first_chunk_tokens": other_first_chunks,
        **({} if args.streaming_only else _whole_case(voice, text, args, first["first_audio_s"]["p50"])),
    }


def _whole_case(voice, text: str, args: argparse.Namespace, streaming_first_p50: float) -> dict:
    whole_first = _percentiles([_whole_first_audio(voice, text, seed) for seed in range(args.runs)])
    whole_full = [_whole_full(voice, text, seed) for seed in range(args.full_runs)]
    return {"whole": {"first_audio_s": whole_first, "rtf": statistics.median(run["rtf"] for run in whole_full)},
            "first_audio_ratio_whole_over_streaming_p50": whole_first["p50"] / streaming_first_p50}


def run(args: argparse.Namespace) -> int:
    import os

    import torch

    from agent_tts.compute_device import compute_device
    from agent_tts.cpu_features import cpu_features
    from agent_tts.engine.chunked_decoder import ChunkPlan
    from agent_tts.engine.synthesizer import Synthesizer
    from agent_tts.errors import AgentTTSError

    args.device = str(compute_device(args.device))
    configurations = _configurations(list(dict.fromkeys(args.backend)), list(dict.fromkeys(args.precision)))
    try:
        plans = [ChunkPlan(first_tokens=n) for n in args.first_chunk_tokens or [ChunkPlan().first_tokens]]
    except ValueError as exc:
        raise AgentTTSError(f"--first-chunk-tokens: {exc}") from exc
    if args.voice and args.versions != ["v2"]:
        raise AgentTTSError("--versions chooses the random-weight voices; --voice names one voice (of its own version)")
    versions = tuple(dict.fromkeys(args.versions))
    synthesizers, loaded = {}, {}
    with tempfile.TemporaryDirectory(prefix="agent-tts-bench-") as tmp:
        tomls = bench_voice_tomls(args.voice, Path(tmp), versions)
        for toml in tomls.values():
            for configuration, (backend, precision) in configurations.items():
                started, resident = time.perf_counter(), _resident_mib()
                voice = _load_voice(toml, backend, precision, args, Path(tmp))
                label = configuration if len(tomls) == 1 else f"{configuration} {voice.version}"
                loaded[label] = {"backend": backend, "voice_version": voice.version,
                                 "precision": voice.precision.describe() if voice.precision is not None else "fp32",
                                 "linears": voice_linear_layouts(voice),
                                 "load_s": time.perf_counter() - started,
                                 "resident_added_by_load_mib": _resident_mib() - resident}
                say(f"{label}: voice loaded in {loaded[label]['load_s']:.1f} s ({loaded[label]['precision']})")
                voice.frontend.warm_up()
                compiling = getattr(voice.sovits, "background_compile", None)
                if compiling is not None and compiling.is_alive():
                    say(f"{label}: waiting for OpenVINO to compile the decoder for short units' lengths ...")
                    compiling.join()
                synthesizers[label] = Synthesizer(voice)
                asyncio.run(_stream_full(synthesizers[label], "你好，很高兴认识你。", seed=0, plan=plans[0]))  # warm-up

    _warn_if_memory_is_short(len(synthesizers))
    figures: dict = {"device": args.device, "torch": torch.__version__, "tokens_per_phone": TOKENS_PER_PHONE,
                     "machine": _machine(args.device), "cpu": cpu_features().as_dict(),
                     "cpu_summary": cpu_features().summary(), "load_average": os.getloadavg(), "backends": loaded}
    if args.device == "cpu":
        figures["cpu_rates_before"] = _cpu_rates()
    for name, text in (("sentence_20_chars", SENTENCE), ("paragraph_3_sentences", PARAGRAPH)):
        for label, synthesizer in synthesizers.items():
            say(f"{name}, {label}: {args.runs} first-audio runs and {args.full_runs} complete runs per path ...")
            figures["backends"][label][name] = _bench_case(synthesizer, text, args, plans)
    for label, synthesizer in synthesizers.items():
        if synthesizer.scheduler is not None:
            figures["backends"][label]["ar_threads"] = synthesizer.scheduler.threads.as_dict()
    if args.device == "cpu":
        figures["cpu_rates_after"] = _cpu_rates()
    figures["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.device.startswith("cuda"):
        figures["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    _print(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


RUNS = {"torch": set(PRECISIONS), "onnx": {"fp32"}, "openvino": {"fp32", "bf16", "int8", "auto"}}


def _configurations(backends: list[str], precisions: list[str]) -> dict[str, tuple[str, str]]:
    """`torch fp32`, `torch bf16`, `onnx fp32` ...: every backend with each asked precision it runs (ONNX: fp32)."""
    from agent_tts.errors import OptionError

    configurations = {}
    for backend in backends:
        runs = [precision for precision in precisions if precision in RUNS[backend]] or (
            ["fp32"] if backend == "onnx" else [])
        for precision in runs:
            configurations[f"{backend} {precision}"] = (backend, precision)
    if not configurations:
        raise OptionError(f"no backend of {' '.join(backends)} runs --precision {' '.join(precisions)} (ONNX: fp32; "
                          "OpenVINO: fp32, bf16, int8, auto)")
    return configurations


def _meminfo_mib(field: str) -> float | None:
    """A field of /proc/meminfo (``MemTotal``, ``MemAvailable``) in MiB; None where there is none."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            name, _, value = line.partition(":")
            if name == field:
                return int(value.split()[0]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _warn_if_memory_is_short(configurations: int, share: float = 0.2) -> None:
    """Say so when the loaded voices leave under `share` of the memory: the runs grow (OpenVINO keeps each compiled
    length), and a run that swaps measures the disk (nine real-size configurations in one run reached 23 GiB)."""
    total, available = _meminfo_mib("MemTotal"), _meminfo_mib("MemAvailable")
    if total and available is not None and available < share * total:
        say(f"warning: {available:.0f} MiB of {total:.0f} MiB left after loading {configurations} configurations; "
            "the runs may swap (and measure the disk) or be killed: measure fewer configurations per run")


def _resident_mib() -> float:
    """This process's resident memory now (Linux; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * resource.getpagesize() / 2**20


def _cpu_rates() -> dict:
    """This VM's arithmetic rate and bandwidth now: shared machines vary by the hour, so runs say what they had."""
    from dataclasses import asdict

    from agent_tts.engine.openmp_pool import release_idle_workers
    from agent_tts.perf.machine_rates import measure_machine_rates

    rates = asdict(measure_machine_rates(repeats=10))
    release_idle_workers()  # this thread's OpenMP workers would slow the streams measured next
    return rates


def _machine(device: str) -> str:
    import os
    import platform

    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"


def describe_thread_tuning(threads: dict) -> str:
    """``2 thread(s) at the end, 3 trial(s), no switch``: what the thread tuning (intraop_threads.py) chose during
    the runs."""
    if not threads["enabled"]:
        return "no thread tuning (off, one thread, or not torch's CPU steps)"
    switches = ", ".join(f"{a} -> {b}" for a, b in threads["switches"]) or "no switch"
    return f"{threads['current']} thread(s) at the end, {threads['trials']} trial(s), {switches}"


def _print(figures: dict) -> None:
    print(f"device: {figures['device']} ({figures['machine']}), torch {figures['torch']}")
    print(f"CPU: {figures['cpu_summary']}; load average {' '.join(f'{x:.1f}' for x in figures['load_average'])}")
    if "cpu_rates_before" in figures:
        before, after = figures["cpu_rates_before"], figures["cpu_rates_after"]
        print(f"CPU rates before / after the runs: matrix product {before['gemm_gflops']:.0f} / "
              f"{after['gemm_gflops']:.0f} GFLOP/s, read {before['read_gb_per_s']:.1f} / "
              f"{after['read_gb_per_s']:.1f} GB/s (compare with agent-tts bench-floor)")
    backends = figures["backends"]
    for label, runs in backends.items():
        print(f"{label}: {runs['backend']} backend, {runs['precision']}; {runs['voice_version']} voice, loaded in "
              f"{runs['load_s']:.1f} s, adding {runs['resident_added_by_load_mib']:.0f} MiB resident; linears: "
              f"{runs['linears']}")
        if "ar_threads" in runs:
            print(f"  AR steps: {describe_thread_tuning(runs['ar_threads'])}")
        for name in ("sentence_20_chars", "paragraph_3_sentences"):
            case = runs[name]
            s, w = case["streaming"], case.get("whole")
            parts = s["first_audio_parts_s"]
            print(f"  {name}:")
            print(f"    streaming first audio  p50 {s['first_audio_s']['p50'] * 1000:7.0f} ms  "
                  f"p95 {s['first_audio_s']['p95'] * 1000:7.0f} ms  (n={s['first_audio_s']['n']}; frontend "
                  f"{parts['frontend_s'] * 1000:.0f} ms, BERT {parts['bert_s'] * 1000:.0f} ms, prefill "
                  f"{parts['prefill_s'] * 1000:.0f} ms, first chunk decode {s['first_chunk_decode_ms']:.0f} ms)")
            if w is not None:
                print(f"    whole    first audio  p50 {w['first_audio_s']['p50'] * 1000:7.0f} ms  "
                      f"p95 {w['first_audio_s']['p95'] * 1000:7.0f} ms  (n={w['first_audio_s']['n']})")
                print(f"    ratio whole/streaming (p50): {case['first_audio_ratio_whole_over_streaming_p50']:.1f}x "
                      f"(first chunk {case['first_chunk_tokens']} tokens)")
            for tokens, other in case["streaming_first_audio_by_first_chunk_tokens"].items():
                print(f"    first chunk {tokens} tokens: streaming first audio p50 "
                      f"{other['first_audio_s']['p50'] * 1000:.0f} ms  p95 {other['first_audio_s']['p95'] * 1000:.0f} "
                      f"ms (prefill {other['first_audio_parts_s']['prefill_s'] * 1000:.0f} ms, first chunk decode "
                      f"{other['first_chunk_decode_ms']:.0f} ms)")
            print(f"    AR {s['ar_ms_per_token']:.1f} ms/token, SoVITS {s['sovits_ms_per_chunk']:.0f} ms/chunk, "
                  f"RTF streaming {s['rtf']:.2f} (the case's first complete run {s['rtf_first_complete_run']:.2f})"
                  + (f", whole {w['rtf']:.2f}" if w is not None else "")
                  + f", audio {s['audio_s']:.1f} s")
    first, *others = backends
    if others:
        print(f"against {first} (same run; above 1 = faster than {first}):")
    for label in others:
        for name in ("sentence_20_chars", "paragraph_3_sentences"):
            base, other = backends[first][name]["streaming"], backends[label][name]["streaming"]
            print(f"  {label}, {name}: first audio p50 {base['first_audio_s']['p50'] * 1000:.0f} -> "
                  f"{other['first_audio_s']['p50'] * 1000:.0f} ms "
                  f"({base['first_audio_s']['p50'] / other['first_audio_s']['p50']:.2f}x), "
                  f"AR {base['ar_ms_per_token']:.1f} -> {other['ar_ms_per_token']:.1f} ms/token "
                  f"({base['ar_ms_per_token'] / other['ar_ms_per_token']:.2f}x), "
                  f"SoVITS {base['sovits_ms_per_chunk']:.0f} -> {other['sovits_ms_per_chunk']:.0f} ms/chunk, "
                  f"RTF {base['rtf']:.2f} -> {other['rtf']:.2f}")
    print(f"peak RSS {figures['peak_rss_mib']:.0f} MiB (all configurations of the run)" + (
        f", peak CUDA {figures['peak_cuda_mib']:.0f} MiB" if "peak_cuda_mib" in figures else ""))

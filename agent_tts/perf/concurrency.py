"""N concurrent streams on one voice, measured: the batched engine against thread-per-stream, in the same process.

`measure_streams` runs N streams at once through `Synthesizer.stream` (the
whole pipeline: frontend, BERT, AR steps, SoVITS chunks) and records what a
deployment cares about: aggregate AR tokens and audio seconds per wall
second, each stream's first audio and RTF, and the peak resident memory
during the run. `measure_ar_only` runs the same N units through the AR
decoding alone (the scheduler's batch, or one decoding loop per thread), which
isolates what batching changes: SoVITS decoding costs the same per stream
either way. Each record names its engine (`batched` or `threads`), stage,
text and number of streams; a batched record also gives, from the
scheduler's log, the tokens per second of the steps that held every
stream's row (the steady state) and the seconds spent in prefills, and in how
many passes.
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from agent_tts.engine.ar_batch import ARRequest
from agent_tts.engine.openmp_pool import release_idle_workers
from agent_tts.engine.scheduler import scheduler_for
from agent_tts.engine.synthesizer import SynthesisOptions, Synthesizer, decode_options, unit_request
from agent_tts.engine.t2s_decoding import generate_semantic_tokens
from agent_tts.voice import Voice

ENGINES = ("batched", "threads")


@dataclass(frozen=True)
class ConcurrencyRecord:
    """One run: `streams` streams of one text at once through one engine."""

    engine: str
    stage: str               # "full" (audio out) or "ar" (AR decoding alone)
    text: str
    streams: int
    wall_s: float
    ar_tokens: int
    ar_tokens_per_s: float
    audio_s_per_wall_s: float
    first_audio_p50_s: float
    first_audio_p95_s: float
    rtf_p50: float
    rtf_p95: float
    peak_rss_mib: float
    max_batch_rows: int      # the most rows one batched step held (1 for threads)
    full_batch_step_tokens_per_s: float | None = None
    """Batched: tokens per second of the steps alone that held a row of every stream (the steady state, without
    prefills or the ramp up and down); None for threads or if no step held them all."""
    prefill_s: float | None = None  # batched: seconds the scheduler spent in prefills
    prefill_passes: int | None = None  # batched: in how many passes (newcomers waiting together share one)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[int(round(fraction * (len(ordered) - 1)))]


class PeakMemory:
    """The process's peak resident memory while the `with` block runs, sampled every 20 ms from /proc."""

    def __enter__(self) -> "PeakMemory":
        self.peak = _rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="peak-memory", daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss_mib())

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mib())


def _rss_mib() -> float:
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _synthesizer(voice: Voice, engine: str) -> Synthesizer:
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    return Synthesizer(voice, batching=engine == "batched")


def _clear_scheduler_log(voice: Voice, engine: str) -> None:
    """Forget the steps and prefills the scheduler has logged, so what it logs next is this run's alone."""
    if engine == "batched":
        scheduler = scheduler_for(voice.gpt)
        for log in (scheduler.batch_sizes, scheduler.step_seconds, scheduler.prefill_seconds,
                    scheduler.prefill_sizes):
            log.clear()


def _scheduler_figures(voice: Voice, engine: str, streams: int) -> dict:
    """From the scheduler's log of this run: the most rows a step held, the full-batch step rate, prefill time."""
    if engine != "batched":
        return {"max_batch_rows": 1}
    scheduler = scheduler_for(voice.gpt)
    steps = list(zip(scheduler.batch_sizes, scheduler.step_seconds))
    full = [seconds for rows, seconds in steps if rows == streams]
    return {"max_batch_rows": max((rows for rows, _ in steps), default=0),
            "full_batch_step_tokens_per_s": streams * len(full) / sum(full) if full else None,
            "prefill_s": sum(scheduler.prefill_seconds), "prefill_passes": len(scheduler.prefill_sizes)}


async def _one_stream(synthesizer: Synthesizer, text: str, options: dict) -> dict:
    started = time.perf_counter()
    first = None
    tokens = 0
    audio = 0.0
    async for chunk in synthesizer.stream(text, **options):
        if first is None:
            first = time.perf_counter() - started
        tokens += len(chunk.semantic_tokens)
        audio += chunk.seconds
    wall = time.perf_counter() - started
    return {"first_audio_s": first, "tokens": tokens, "audio_s": audio, "wall_s": wall}


def measure_streams(voice: Voice, engine: str, text: str, streams: int, options: dict) -> ConcurrencyRecord:
    """`streams` concurrent streams of `text` (seeds 0..N-1) through the whole pipeline."""
    synthesizer = _synthesizer(voice, engine)
    _clear_scheduler_log(voice, engine)

    async def run_all() -> list[dict]:
        return await asyncio.gather(*(_one_stream(synthesizer, text, {**options, "seed": seed})
                                      for seed in range(streams)))

    with PeakMemory() as memory:
        started = time.perf_counter()
        results = asyncio.run(run_all())
        wall = time.perf_counter() - started
    firsts = [result["first_audio_s"] for result in results]
    rtfs = [result["wall_s"] / result["audio_s"] for result in results]
    tokens = sum(result["tokens"] for result in results)
    return ConcurrencyRecord(engine, "full", text, streams, wall, tokens, tokens / wall,
                             sum(result["audio_s"] for result in results) / wall,
                             statistics.median(firsts), percentile(firsts, 0.95),
                             statistics.median(rtfs), percentile(rtfs, 0.95), memory.peak,
                             **_scheduler_figures(voice, engine, streams))


def measure_ar_only(voice: Voice, engine: str, text: str, streams: int, options: dict) -> ConcurrencyRecord:
    """`streams` units of `text` decoded at once by the AR stage alone: the scheduler's batch or one loop per
    thread. First audio here is the time to the first token; RTF counts 25 tokens as one second."""
    import torch

    synthesis = SynthesisOptions(**options)
    phonemes = voice.frontend(text, synthesis.language)
    decode = decode_options(synthesis, len(phonemes.phones))
    template = unit_request(voice, phonemes, decode, None)
    _clear_scheduler_log(voice, engine)
    # This thread ran BERT for the template and now only waits: its idle OpenMP workers would slow the threads
    # that decode (openmp_pool.py). Submitting to the scheduler gives them back too; the threads engine must not
    # be measured with them.
    release_idle_workers()
    results: list[dict] = [{} for _ in range(streams)]

    def request(seed: int) -> ARRequest:
        return ARRequest(template.phone_ids, template.bert, template.prompt, decode,
                         torch.Generator(device=voice.engine_device).manual_seed(seed))

    def consume(index: int, tokens, started: float) -> None:
        first, count = None, 0
        for _ in tokens:
            count += 1
            if first is None:
                first = time.perf_counter() - started
        results[index] = {"first_audio_s": first, "tokens": count, "wall_s": time.perf_counter() - started}

    with PeakMemory() as memory:
        started = time.perf_counter()
        if engine == "batched":
            scheduler = scheduler_for(voice.gpt)
            units = [scheduler.submit(request(seed), max_ahead=10**6) for seed in range(streams)]
            workers = [threading.Thread(target=consume, args=(index, unit.tokens(), started))
                       for index, unit in enumerate(units)]
        else:
            def decode_alone(index: int) -> None:
                unit = request(index)
                consume(index, generate_semantic_tokens(voice.gpt, unit.phone_ids[None], unit.bert[None],
                                                        unit.prompt[None], decode, generator=unit.generator),
                        started)
            workers = [threading.Thread(target=decode_alone, args=(index,)) for index in range(streams)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        wall = time.perf_counter() - started
    tokens = sum(result["tokens"] for result in results)
    firsts = [result["first_audio_s"] for result in results]
    rtfs = [result["wall_s"] / (result["tokens"] / 25) for result in results]
    return ConcurrencyRecord(engine, "ar", text, streams, wall, tokens, tokens / wall, tokens / 25 / wall,
                             statistics.median(firsts), percentile(firsts, 0.95),
                             statistics.median(rtfs), percentile(rtfs, 0.95), memory.peak,
                             **_scheduler_figures(voice, engine, streams))


def as_dict(record: ConcurrencyRecord) -> dict:
    return asdict(record)

"""Cancel storm: many streams, each cancelled at a random moment by one of the four ways a stream is stopped.

The ways: closing the stream (`aclose()`), cancelling the task that consumes
it, `engine.cancel_active()` from outside (barge-in), and pipecat's
`InterruptionFrame` through the TTS service. The moments: right away (before
the first chunk: frontend or prefill), after the first chunk, after a few
chunks (the worker is decoding or stepping ahead), at a unit boundary, or at
a random time. Checked for every stream: the cancel returns within
`bound_s` (else it is a hang, and every thread's stack is dumped), no chunk
reaches the consumer after the cancel, the stream's worker thread is gone,
and no prefill, AR step or SoVITS window began after the cancel flag was set.
At the end a fresh stream must be served as fast as before the storm.
"""

from __future__ import annotations

import asyncio
import faulthandler
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

from agent_tts.engine.cancel import CancelFlag
from agent_tts.engine.unit_stream import UnitStreamEngine
from agent_tts.stress.resources import stream_workers

PATHS = ("aclose", "task", "cancel_active", "interruption")
MOMENTS = ("at_once", "first_chunk", "few_chunks", "unit_boundary", "random_time")
TEXTS = ("Your order shipped on Monday, and it should arrive by Friday afternoon. Thanks for waiting.",
         "您好，您的订单已经发货了，预计明天下午送到。如果您不在家，快递员会放在门卫室。",
         "Let me check that for you. One moment please, I am looking at your account now.",
         "好的，我帮您查一下。请稍等，我正在查看您的账户信息，马上就好。")


@dataclass
class StormReport:
    streams: int
    hangs: int = 0
    chunks_after_cancel: int = 0
    leaked_workers: int = 0
    work_after_cancel: int = 0            # prefills, AR steps and SoVITS windows begun after the flag was set
    errors: list[str] = field(default_factory=list)
    cancel_s: list[float] = field(default_factory=list)   # from the cancel to the stream being closed
    by_path: Counter = field(default_factory=Counter)
    by_moment: Counter = field(default_factory=Counter)
    by_phase: Counter = field(default_factory=Counter)    # where the stream was when its cancel came
    first_audio_before_s: float = 0.0
    first_audio_after_s: float = 0.0
    bound_s: float = 0.0
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.hangs or self.chunks_after_cancel or self.leaked_workers or self.work_after_cancel
                    or self.errors)

    def summary(self) -> dict:
        cancel = sorted(self.cancel_s)
        return {
            "streams": self.streams, "hangs": self.hangs, "chunks_after_cancel": self.chunks_after_cancel,
            "leaked_workers": self.leaked_workers, "work_begun_after_cancel": self.work_after_cancel,
            "errors": self.errors[:10], "cancel_bound_s": self.bound_s,
            "cancel_s": {"p50": statistics.median(cancel), "p95": cancel[int(0.95 * (len(cancel) - 1))],
                         "max": cancel[-1]} if cancel else {},
            "by_path": dict(self.by_path), "by_moment": dict(self.by_moment), "by_phase": dict(self.by_phase),
            "next_request_first_audio_s": {"before_storm": self.first_audio_before_s,
                                           "after_storm": self.first_audio_after_s},
            "wall_s": self.wall_s,
        }


async def _first_audio(engine: UnitStreamEngine, text: str, options: dict) -> float:
    started = time.perf_counter()
    stream = engine.stream(text, **options)
    try:
        await stream.__anext__()
        return time.perf_counter() - started
    finally:
        await stream.aclose()


def _phase(flag, chunks: list) -> str:
    begun = flag.begun_when_set if flag is not None else Counter()
    if not begun["prefill"]:
        return "before the first prefill"
    if not chunks:
        return "first unit, before its first chunk"
    if chunks[-1].last:
        return "at a unit boundary"
    return "mid-unit (decoding or stepping ahead)"


class _Storm:
    def __init__(self, engine: UnitStreamEngine, rng: random.Random, report: StormReport, options: dict,
                 pipeline=None) -> None:
        self.engine = engine
        self.rng = rng
        self.report = report
        self.options = options
        self.pipeline = pipeline

    async def _moment(self, moment: str, chunks: list, arrived: asyncio.Event) -> None:
        """Wait until the chosen moment of the stream."""
        async def until(condition) -> None:
            while not condition():
                arrived.clear()
                await arrived.wait()

        if moment == "at_once":
            await asyncio.sleep(self.rng.uniform(0, 0.03))
        elif moment == "first_chunk":
            await until(lambda: len(chunks) >= 1)
        elif moment == "few_chunks":
            count = self.rng.randint(2, 5)
            await until(lambda: len(chunks) >= count)
        elif moment == "unit_boundary":
            await until(lambda: bool(chunks) and chunks[-1].last)
        else:
            await asyncio.sleep(self.rng.uniform(0, 1.5))

    async def one_stream(self, path: str, moment: str) -> None:
        """One stream of a random text, cancelled at `moment` through `path`.

        `aclose`: the consumer closes the stream after the first chunk that arrives once the moment has come
        (closing from outside while the consumer waits for a chunk is the task path); `task`: the consuming
        task is cancelled at the moment; `cancel_active`: the engine's barge-in, from outside the consumer.
        """
        report = self.report
        options = {**self.options, "seed": self.rng.randrange(1 << 30)}
        flag = CancelFlag()
        stream = self.engine.stream(self.rng.choice(TEXTS), cancel=flag, **options)
        chunks: list = []
        arrived = asyncio.Event()
        due = asyncio.Event()
        closed_at: list[float] = []

        async def consume() -> None:
            try:
                async for chunk in stream:
                    chunks.append(chunk)
                    arrived.set()
                    if path == "aclose" and due.is_set():
                        cancelled_at = time.perf_counter()
                        held = len(chunks)
                        await stream.aclose()
                        closed_at.append(time.perf_counter() - cancelled_at)
                        report.by_phase[_phase(flag, chunks[:held])] += 1
                        return
            finally:
                arrived.set()

        consumer = asyncio.create_task(consume())
        point = asyncio.create_task(self._moment(moment, chunks, arrived))
        await asyncio.wait({point, consumer}, return_when=asyncio.FIRST_COMPLETED)
        point.cancel()
        if consumer.done():
            report.by_phase["ended before its moment"] += 1
            await consumer
            return
        if path == "aclose":
            due.set()
            await consumer
            if closed_at:
                report.cancel_s.append(closed_at[0])
            else:
                report.by_phase["ended before its moment"] += 1
            return
        cancelled_at = time.perf_counter()
        if path == "task":
            consumer.cancel()
            held = len(chunks)
            await asyncio.gather(consumer, return_exceptions=True)
        else:
            self.engine.cancel_active()
            held = len(chunks)
            await consumer
        report.cancel_s.append(time.perf_counter() - cancelled_at)
        report.by_phase[_phase(flag, chunks[:held])] += 1
        report.chunks_after_cancel += len(chunks) - held
        report.work_after_cancel += sum(flag.begun_after_set(kind) for kind in ("prefill", "ar_step", "decode"))

    async def one_interruption(self, moment: str) -> None:
        report, pipeline = self.report, self.pipeline
        from pipecat.frames.frames import InterruptionFrame, TTSAudioRawFrame

        pipeline.forget()
        started = time.perf_counter()
        await pipeline.speak(self.rng.choice(TEXTS))
        if moment == "at_once":
            await asyncio.sleep(self.rng.uniform(0, 0.03))
        elif moment == "random_time":
            await asyncio.sleep(self.rng.uniform(0, 1.5))
        else:
            await pipeline.wait_for(TTSAudioRawFrame, started, self.report.bound_s * 4)
        pushed = await pipeline.interrupt()
        seen = await pipeline.wait_for(InterruptionFrame, pushed, self.report.bound_s)
        if seen is None:
            report.hangs += 1
            return
        while self.engine.active_streams and time.perf_counter() - pushed < self.report.bound_s:
            await asyncio.sleep(0.005)
        report.cancel_s.append(time.perf_counter() - pushed)
        await asyncio.sleep(0.05)  # anything still in flight from the interrupted turn would arrive now
        stale = pipeline.audio_contexts_before(seen.at) & pipeline.audio_contexts_after(seen.at)
        report.chunks_after_cancel += len(stale)
        report.by_phase["pipecat turn (phase not observed)"] += 1


async def cancel_storm(engine: UnitStreamEngine, streams: int, seed: int = 0, paths: tuple[str, ...] = PATHS,
                       bound_s: float = 10.0, options: dict | None = None, progress=None) -> StormReport:
    """Run `streams` streams on `engine`, each cancelled at a random moment by one of `paths`."""
    rng = random.Random(seed)
    options = dict(options or {})
    report = StormReport(streams, bound_s=bound_s)
    started = time.perf_counter()
    report.first_audio_before_s = statistics.median([await _first_audio(engine, TEXTS[0], options)
                                                     for _ in range(3)])
    pipeline = None
    if "interruption" in paths:
        from agent_tts.pipecat.tts_service import GPTSoVITSTTSService
        from agent_tts.stress.pipecat_harness import ServicePipeline

        pipeline = ServicePipeline(GPTSoVITSTTSService(voice=engine, engine_options=options, warm_up=False))
        await pipeline.start()
    storm = _Storm(engine, rng, report, options, pipeline)
    try:
        for index in range(streams):
            path, moment = paths[index % len(paths)], rng.choice(MOMENTS)
            report.by_path[path] += 1
            report.by_moment[moment] += 1
            work = storm.one_interruption(moment) if path == "interruption" else storm.one_stream(path, moment)
            try:
                await asyncio.wait_for(work, bound_s * 6)
            except TimeoutError:
                report.hangs += 1
                print(f"cancel storm: stream {index} ({path}, {moment}) hung; every thread's stack:", file=sys.stderr)
                faulthandler.dump_traceback(sys.stderr)
            except Exception as exc:  # noqa: BLE001 - counted and reported; the storm goes on
                report.errors.append(f"stream {index} ({path}, {moment}): {type(exc).__name__}: {exc}")
            if path != "interruption" and stream_workers():
                await asyncio.sleep(0.5)  # a worker may be finishing its join right now
                report.leaked_workers += len(stream_workers())
            if progress is not None and (index + 1) % 50 == 0:
                progress(index + 1, streams)
    finally:
        if pipeline is not None:
            await pipeline.close()
    report.first_audio_after_s = statistics.median([await _first_audio(engine, TEXTS[0], options)
                                                    for _ in range(3)])
    report.wall_s = time.perf_counter() - started
    return report

"""A pipecat test runner whose script can wait for a frame instead of sleeping a guessed time.

`run_script(processor, steps)` is pipecat's `run_test` (a real pipeline:
source -> processor -> sink) with two more kinds of step: `AwaitFrame(kind)`
waits until the processor pushes a frame of that kind downstream, and
`AwaitCondition(check)` until a check holds, so a test can, say, interrupt
"once the first audio is out" on a fast machine and on a busy one alike.

`run_beside(worker, script)` is for the child-process scenarios that build
their own pipeline: it runs the worker beside the scenario's script and, when
a step of the script fails, prints where every thread and task was, cancels the
pipeline and waits for it to finish before re-raising, so the child exits with the step's traceback instead of
hanging in `asyncio.run`'s teardown (which cancels pipecat's tasks all at
once: the worker then waits forever for a CancelFrame no task carries). A
pipeline that does not finish in time is a hang of ours: every thread's
stack is written to stderr and the process exits.

`LoopLag` measures how late the event loop runs: a task that sleeps 10 ms
over and over and records how late it wakes. The real-time tests use its
maximum to tell a machine busy enough to stall the pipeline (then a speed
figure is printed, not asserted) from one where a guarantee must hold.
"""

from __future__ import annotations

import asyncio
import faulthandler
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipecat.frames.frames import EndFrame, Frame, StartFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.tests.utils import SleepFrame
from pipecat.workers.runner import WorkerRunner


@dataclass(frozen=True)
class AwaitFrame:
    """A script step: wait until the processor pushes a frame of `kind` downstream after this step began."""

    kind: type
    timeout: float = 60.0


@dataclass(frozen=True)
class AwaitCondition:
    """A script step: wait until `condition()` is true (polled every 10 ms)."""

    condition: Callable[[], bool]
    timeout: float = 60.0


class _Recorder(FrameProcessor):
    def __init__(self, direction: FrameDirection) -> None:
        super().__init__(enable_direct_mode=True)
        self.direction = direction
        self.frames: list[Frame] = []
        self.arrived = asyncio.Condition()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction == self.direction and not isinstance(frame, (StartFrame, EndFrame)):
            self.frames.append(frame)
            async with self.arrived:
                self.arrived.notify_all()
        await self.push_frame(frame, direction)

    async def wait_for_next(self, kind: type, timeout: float) -> None:
        seen = len(self.frames)
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(
                lambda: any(isinstance(frame, kind) for frame in self.frames[seen:])), timeout)


async def until(condition: Callable[[], bool], timeout: float) -> None:
    """Return once `condition()` holds (polled every 10 ms); TimeoutError after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def run_script(processor: FrameProcessor, steps: Sequence[Frame | SleepFrame | AwaitFrame | AwaitCondition], *,
                     pipeline_params: PipelineParams | None = None,
                     start_timeout: float = 30.0) -> tuple[list[Frame], list[Frame]]:
    """Run `steps` through `processor` in a real pipeline; returns (downstream frames, upstream frames)."""
    source, sink = _Recorder(FrameDirection.UPSTREAM), _Recorder(FrameDirection.DOWNSTREAM)
    worker = PipelineWorker(Pipeline([source, processor, sink]), cancel_on_idle_timeout=False,
                            params=pipeline_params or PipelineParams())
    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def _on_started(worker, frame) -> None:
        started.set()

    async def push() -> None:
        try:
            await asyncio.wait_for(started.wait(), start_timeout)
            for step in steps:
                if isinstance(step, SleepFrame):
                    await asyncio.sleep(step.sleep)
                elif isinstance(step, AwaitFrame):
                    await sink.wait_for_next(step.kind, step.timeout)
                elif isinstance(step, AwaitCondition):
                    await until(step.condition, step.timeout)
                else:
                    await worker.queue_frame(step)
        finally:  # the pipeline ends whatever happened, so a failed step fails the test instead of hanging it
            await worker.queue_frame(EndFrame())

    runner = WorkerRunner()
    await runner.add_workers(worker)
    for outcome in await asyncio.gather(runner.run(), push(), return_exceptions=True):
        if isinstance(outcome, BaseException):
            raise outcome
    return sink.frames, source.frames


async def run_beside(worker: PipelineWorker, script: Awaitable[None], *, finish_timeout: float = 60.0) -> None:
    """Run `worker` until it finishes, with `script` beside it; a failed script cancels the pipeline, then raises."""
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    running = asyncio.ensure_future(runner.run())
    try:
        await script
    except BaseException:
        print("the scenario's script failed; where every thread and every task was:", file=sys.stderr, flush=True)
        faulthandler.dump_traceback(all_threads=True)
        print_tasks()
        await worker.cancel(reason="the scenario's script failed")
        await _finish_or_die(running, finish_timeout, "after its script failed")
        raise
    await _finish_or_die(running, finish_timeout, "after its script ended")


def print_tasks() -> None:
    """Every pending asyncio task with the chain of awaits it is suspended in (innermost last), on stderr."""
    for task in asyncio.all_tasks():
        chain, awaited = [], task.get_coro()
        while awaited is not None:
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None) \
                or getattr(awaited, "gi_frame", None)
            if frame is not None:
                chain.append(f"{frame.f_code.co_name} ({Path(frame.f_code.co_filename).name}:{frame.f_lineno})")
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "ag_await", None) \
                or getattr(awaited, "gi_yieldfrom", None)
        print(f"task {task.get_name()}: {' > '.join(chain)}", file=sys.stderr)
    sys.stderr.flush()


async def _finish_or_die(running: asyncio.Future, timeout: float, when: str) -> None:
    try:
        await asyncio.wait_for(asyncio.shield(running), timeout)
    except TimeoutError:
        print(f"the pipeline did not finish within {timeout:g} s {when}; every thread's stack:", file=sys.stderr,
              flush=True)
        faulthandler.dump_traceback(all_threads=True)
        os._exit(3)


@dataclass
class LoopLag:
    """How late the running event loop wakes a task that sleeps `period` seconds, while it runs (`start`/`stop`)."""

    period: float = 0.01
    lateness: list[float] = field(default_factory=list)
    _task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    @property
    def max_ms(self) -> float:
        return 1000 * max(self.lateness, default=0.0)

    def summary(self) -> dict[str, float]:
        lateness = sorted(self.lateness) or [0.0]
        return {"max_ms": self.max_ms, "p99_ms": 1000 * lateness[int(0.99 * (len(lateness) - 1))],
                "samples": len(self.lateness)}

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.period)
            self.lateness.append(max(0.0, time.perf_counter() - before - self.period))

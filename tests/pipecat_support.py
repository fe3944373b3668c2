"""A pipecat test runner whose script can wait for a frame instead of sleeping a guessed time.

`run_script(processor, steps)` is pipecat's `run_test` (a real pipeline:
source -> processor -> sink) with two more kinds of step: `AwaitFrame(kind)`
waits until the processor pushes a frame of that kind downstream, and
`AwaitCondition(check)` until a check holds, so a test can, say, interrupt
"once the first audio is out" on a fast machine and on a busy one alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

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


async def _until(condition: Callable[[], bool], timeout: float) -> None:
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
                    await _until(step.condition, step.timeout)
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

"""A long-lived pipecat pipeline around the TTS service, for runs that send it many turns and interruptions."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from pipecat.frames.frames import EndFrame, Frame, InterruptionFrame, StartFrame, TTSAudioRawFrame, TTSSpeakFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner


@dataclass(frozen=True)
class Seen:
    """A frame that came out of the service, and when (perf_counter)."""

    at: float
    frame: Frame


class _Sink(FrameProcessor):
    def __init__(self) -> None:
        super().__init__(enable_direct_mode=True)
        self.seen: list[Seen] = []
        self.arrived = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction == FrameDirection.DOWNSTREAM and not isinstance(frame, (StartFrame, EndFrame)):
            self.seen.append(Seen(time.perf_counter(), frame))
            self.arrived.set()
        await self.push_frame(frame, direction)


class ServicePipeline:
    """source -> `service` -> sink, running until `close()`; `speak` and `interrupt` push frames into it."""

    def __init__(self, service: FrameProcessor) -> None:
        self.service = service
        self.sink = _Sink()
        self.worker = PipelineWorker(Pipeline([service, self.sink]), cancel_on_idle_timeout=False,
                                     params=PipelineParams())
        self._started = asyncio.Event()
        self._run: asyncio.Task | None = None

        @self.worker.event_handler("on_pipeline_started")
        async def _on_started(worker, frame) -> None:
            self._started.set()

    async def start(self, timeout: float = 60.0) -> None:
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(self.worker)
        self._run = asyncio.create_task(runner.run())
        await asyncio.wait_for(self._started.wait(), timeout)

    async def speak(self, text: str) -> None:
        await self.worker.queue_frame(TTSSpeakFrame(text))

    async def interrupt(self) -> float:
        """Push an interruption; returns when it was pushed."""
        pushed = time.perf_counter()
        await self.worker.queue_frame(InterruptionFrame())
        return pushed

    async def wait_for(self, kind: type, after: float, timeout: float) -> Seen | None:
        """The first frame of `kind` seen after the instant `after`, waiting up to `timeout` seconds."""
        deadline = time.perf_counter() + timeout
        while True:
            for seen in self.sink.seen:
                if seen.at >= after and isinstance(seen.frame, kind):
                    return seen
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return None
            self.sink.arrived.clear()
            try:
                await asyncio.wait_for(self.sink.arrived.wait(), remaining)
            except TimeoutError:
                return None

    def audio_contexts_after(self, after: float) -> set[str]:
        return {seen.frame.context_id for seen in self.sink.seen
                if seen.at > after and isinstance(seen.frame, TTSAudioRawFrame)}

    def audio_contexts_before(self, before: float) -> set[str]:
        return {seen.frame.context_id for seen in self.sink.seen
                if seen.at < before and isinstance(seen.frame, TTSAudioRawFrame)}

    def forget(self) -> None:
        """Drop what was seen so far (a long run would otherwise keep every frame)."""
        self.sink.seen.clear()

    async def close(self, timeout: float = 60.0) -> None:
        await self.worker.queue_frame(EndFrame())
        if self._run is not None:
            await asyncio.wait_for(self._run, timeout)

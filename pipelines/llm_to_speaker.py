"""LLM -> TTS -> speaker: prompts from the command line or stdin, answered aloud clause by clause.

    python pipelines/llm_to_speaker.py "Where is my order?" "Can I return it?"
    echo "Tell me a joke" | python pipelines/llm_to_speaker.py -
    python pipelines/llm_to_speaker.py --llm-url http://localhost:11434/v1 --llm-model llama3.2 "Hi!"

Without --llm-url/--llm-model an offline scripted responder answers. With no
voice registered, the bundled default voice speaks. Each turn prints its
first-audio and first-sound times.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterable, AsyncIterator, Iterable

from pipecat.frames.frames import BotStoppedSpeakingFrame, EndFrame, LLMMessagesAppendFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from agent_tts.audio.devices import device_choice
from agent_tts.cli.engine_arguments import add_compute_arguments
from agent_tts.conversation.stdin import stdin_lines
from agent_tts.pipecat.services import SYSTEM_PROMPT, make_llm
from agent_tts.pipecat.sounddevice_transport import SoundDeviceTransport, SoundDeviceTransportParams
from agent_tts.pipecat.tts_service import GPTSoVITSTTSService
from agent_tts.pipecat.turn_timing import TurnTimer


class TurnDone(FrameProcessor):
    """Sets an event each time the bot stops speaking (the transport sends that upstream)."""

    def __init__(self) -> None:
        super().__init__()
        self.spoken = asyncio.Event()

    async def process_frame(self, frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, BotStoppedSpeakingFrame):
            self.spoken.set()
        await self.push_frame(frame, direction)


# How long a cancelled pipeline may take to finish.
CANCEL_TIMEOUT_S = 10.0


def build(tts: GPTSoVITSTTSService, llm: FrameProcessor, transport: SoundDeviceTransport):
    """The pipeline and the pieces a caller drives: (pipeline, user aggregator, turn-done marker)."""
    context = LLMContext([{"role": "system", "content": SYSTEM_PROMPT}])
    aggregators = LLMContextAggregatorPair(context)
    done = TurnDone()
    pipeline = Pipeline([aggregators.user(), llm, tts, done, transport.output(), aggregators.assistant()])
    return pipeline, aggregators.user(), done


async def stdin_prompts() -> AsyncIterator[str]:
    """Non-empty lines of standard input, as they are typed."""
    async for line in stdin_lines():
        if line.strip():
            yield line.strip()


async def _as_async(prompts: Iterable[str] | AsyncIterable[str]) -> AsyncIterator[str]:
    if isinstance(prompts, AsyncIterable):
        async for prompt in prompts:
            yield prompt
    else:
        for prompt in prompts:
            yield prompt


async def speak_prompts(prompts: Iterable[str] | AsyncIterable[str], tts: GPTSoVITSTTSService, llm: FrameProcessor,
                        transport: SoundDeviceTransport, timer: TurnTimer, turn_timeout_s: float = 120.0,
                        observers: list | None = None) -> None:
    """Answer each prompt aloud, one after the other; returns when the last answer has been played."""
    pipeline, _, done = build(tts, llm, transport)
    rate = transport.output()._params.audio_out_sample_rate  # the TTS produces at the transport's rate
    worker = PipelineWorker(pipeline, params=PipelineParams(enable_metrics=True, audio_out_sample_rate=rate),
                            observers=[timer, *(observers or [])], cancel_on_idle_timeout=False)

    async def drive() -> None:
        async for prompt in _as_async(prompts):
            done.spoken.clear()
            print(f"you: {prompt}", flush=True)
            await worker.queue_frame(LLMMessagesAppendFrame([{"role": "user", "content": prompt}], run_llm=True))
            await asyncio.wait_for(done.spoken.wait(), timeout=turn_timeout_s)
        timer.flush()
        await worker.queue_frame(EndFrame())

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    running = asyncio.ensure_future(runner.run())
    try:
        await drive()
    except BaseException:
        # End the pipeline through pipecat (a CancelFrame) before raising: left to asyncio.run's teardown, which
        # cancels every task at once, the worker would wait forever for a CancelFrame no task carries.
        await worker.cancel(reason="a prompt was not answered")
        await asyncio.wait_for(asyncio.shield(running), CANCEL_TIMEOUT_S)
        raise
    await running


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prompts", nargs="*", help="prompts to answer; '-' or none reads them from stdin, one per line")
    parser.add_argument("--voice", help="a registered voice name or a voice TOML (default: yours, else the bundled one)")
    add_compute_arguments(parser)
    parser.add_argument("--llm-url", help="an OpenAI-compatible base URL, e.g. http://localhost:11434/v1")
    parser.add_argument("--llm-model", help="the model name at that URL")
    parser.add_argument("--output-device", help="sound device name or index")
    parser.add_argument("--sample-rate", type=int, default=24000, help="pipeline output rate (default 24000)")
    args = parser.parse_args(argv)
    prompts = [p for p in args.prompts if p != "-"] or stdin_prompts()
    params = SoundDeviceTransportParams(audio_out_enabled=True, audio_out_sample_rate=args.sample_rate,
                                        output_device=device_choice(args.output_device))
    tts = GPTSoVITSTTSService(voice=args.voice, device=args.device, precision=args.precision)
    asyncio.run(speak_prompts(prompts, tts, make_llm(args.llm_url, args.llm_model), SoundDeviceTransport(params),
                              TurnTimer()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

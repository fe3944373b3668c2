"""Child process of the spoken-context tests: the voice agent pipeline on PulseAudio null sinks, interrupted mid-reply.

Arguments: the repository's pipelines/ folder, then `plain` or `slow-words`
(a processor between the speaker and the assistant context that takes 0.5 s
per word frame, as a busy event loop or a slow transcript logger would, so
the interruption overtakes words that have already played: pipecat #4996).

The agent answers a question in the bundled voice; once it has played
`WORDS_BEFORE_BARGE_IN` words, speech is played into its microphone; the
agent stops and answers the next turn in full. Prints one JSON object: the
context's messages, the interruption times, every word frame the speaker
released (time, context, text), the TTS's audio frames (time, context), and
how many turns the heard-text guard repaired.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import numpy as np
import sounddevice
import soxr
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    EndFrame,
    Frame,
    InterruptionFrame,
    LLMMessagesAppendFrame,
    TTSAudioRawFrame,
    TTSTextFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMAssistantAggregator
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from agent_tts.default_voice.engine import DefaultVoiceSynthesizer
from agent_tts.pipecat.heard_text import HeardTextGuard
from agent_tts.pipecat.scripted_llm import ScriptedLLMService
from agent_tts.pipecat.sounddevice_transport import SoundDeviceTransport
from agent_tts.pipecat.tts_service import GPTSoVITSTTSService

LONG_ANSWER = ("Your order shipped on Monday from our warehouse in Leeds. The courier collected it in the "
               "afternoon, and it passed through the regional depot on Tuesday morning. It is now on the van "
               "for your area, and the driver expects to reach you between two and four this afternoon.")
SECOND_ANSWER = "Of course, what else would you like to know?"
WORDS_BEFORE_BARGE_IN = 9
SLOW_WORD_S = 0.5
BLOCK_MS = int(os.environ.get("BLOCK_MS", "40"))


class SlowWords(FrameProcessor):
    """Takes `SLOW_WORD_S` over each word frame before passing it on (a busy consumer of the transcript)."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSTextFrame):
            await asyncio.sleep(SLOW_WORD_S)
        await self.push_frame(frame, direction)


class Recorder(BaseObserver):
    """Times of the frames the tests judge by."""

    def __init__(self, tts, output) -> None:
        super().__init__()
        self.tts, self.output = tts, output
        self.events: dict[str, list] = {"interruptions": [], "bot_started": [], "tts_audio": [], "released": []}
        self.seen: set[tuple[int, int]] = set()
        self.bot_started = asyncio.Event()

    async def on_push_frame(self, data: FramePushed) -> None:
        frame = data.frame
        if (frame.id, id(data.source)) in self.seen:  # a word frame counts once from the TTS, once from the speaker
            return
        self.seen.add((frame.id, id(data.source)))
        now = time.perf_counter()
        if isinstance(frame, InterruptionFrame):
            if data.source is self.output:
                self.events["interruptions"].append(now)
        elif isinstance(frame, BotStartedSpeakingFrame):
            self.events["bot_started"].append(now)
            self.bot_started.set()
        elif isinstance(frame, TTSAudioRawFrame) and data.source is self.tts:
            self.events["tts_audio"].append([now, frame.context_id])
        elif isinstance(frame, TTSTextFrame) and data.source is self.output:
            self.events["released"].append([now, frame.context_id, frame.text])


async def until(condition, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def main(pipelines: str, mode: str) -> None:
    sys.path.insert(0, pipelines)
    import voice_agent

    engine = DefaultVoiceSynthesizer()
    user_speech = soxr.resample(await engine.synthesize_async("Wait, I have another question for you."),
                                engine.sample_rate, voice_agent.INPUT_RATE)
    replies = iter([LONG_ANSWER, SECOND_ANSWER, SECOND_ANSWER])
    llm = ScriptedLLMService(lambda _: next(replies), first_token_s=0.1, tokens_per_second=60)
    params = voice_agent.transport_params("agent_mic_in", "agent_tts_capture", output_rate=engine.sample_rate)
    params.keep_output_timeline = True
    params.block_ms = BLOCK_MS
    transport = SoundDeviceTransport(params)
    tts = GPTSoVITSTTSService(voice=engine)
    context = LLMContext([{"role": "system", "content": "test"}])
    pipeline = voice_agent.build(transport, None, llm, tts, context=context,
                                 before_context=[SlowWords()] if mode == "slow-words" else [])
    guard = next(p for p in pipeline.processors if isinstance(p, HeardTextGuard))
    assistant = next(p for p in pipeline.processors if isinstance(p, LLMAssistantAggregator))
    turns_stopped: list[dict] = []

    @assistant.event_handler("on_assistant_turn_stopped")
    async def on_turn_stopped(aggregator, message) -> None:
        turns_stopped.append({"content": message.content, "interrupted": message.interrupted})

    recorder = Recorder(tts, transport.output())
    worker = PipelineWorker(pipeline, params=voice_agent.pipeline_params(params), observers=[recorder],
                            cancel_on_idle_timeout=False)
    result: dict = {}

    def step(name: str) -> None:  # on stderr, so a hung run's stack dump says how far it got
        print(f"scenario step: {name}", file=sys.stderr, flush=True)

    async def drive() -> None:
        try:
            await asyncio.sleep(1.0)
            step("first question")
            await worker.queue_frame(LLMMessagesAppendFrame([{"role": "user", "content": "Where is my order?"}],
                                                            run_llm=True))
            await asyncio.wait_for(recorder.bot_started.wait(), timeout=60)
            recorder.bot_started.clear()
            step("waiting for the words before the barge-in")
            await until(lambda: len(recorder.events["released"]) >= WORDS_BEFORE_BARGE_IN, timeout=60)
            result["user_speech_started"] = time.perf_counter()
            step("user speaks")
            await asyncio.to_thread(sounddevice.play, user_speech.astype(np.float32), voice_agent.INPUT_RATE,
                                    device="agent_mic_out", blocking=True)
            step("waiting for the next turn")
            await asyncio.wait_for(recorder.bot_started.wait(), timeout=60)  # the next turn is answered ...
            step("waiting for that turn to end in full")
            await until(lambda: any(not turn["interrupted"] for turn in turns_stopped), timeout=60)  # ... in full
            await asyncio.sleep(0.5)
            step("done")
        except BaseException as exc:
            step(f"failed: {type(exc).__name__}: {exc}")
            raise
        finally:  # the pipeline ends whatever happened, so a failed step fails the test instead of hanging it
            await worker.queue_frame(EndFrame())

    runner = WorkerRunner()
    await runner.add_workers(worker)
    # A failed step ends the pipeline with its EndFrame like a passing one, and this waits for that end instead of
    # cancelling the runner as soon as `drive` raises: a failed run hung for 300 s in that cancel, inside
    # asyncio.run's teardown.
    outcomes = await asyncio.gather(runner.run(), drive(), return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    result.update(recorder.events)
    result["messages"] = [message for message in context.messages if isinstance(message, dict)]
    result["turns_stopped"] = turns_stopped
    result["repaired_turns"] = guard.repaired_turns
    output = transport.output()
    result["sample_rate"] = output.device_sample_rate
    result["timeline"] = [[block.dac_time, block.frames, block.audio_frames, block.filled] for block in output.timeline]
    result["underruns"] = output.underruns
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "plain"))

"""Child process of the barge-in test: the voice agent pipeline on PulseAudio null sinks.

The agent answers a question in the bundled voice; while it speaks, speech is
played into its microphone (by `paplay`, whose buffer lives in the sound
server, so a busy machine does not cut gaps into the user's speech). Prints
one JSON object: the speech onsets as the transport's VAD heard them and as
the pipeline's did, the early holds, interruptions, flushes, bot speaking
times, the output device's played-block timeline, every audio frame the TTS
pushed (time and context), the underruns and how late the event loop ran.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import soxr
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    EndFrame,
    InterruptionFrame,
    LLMMessagesAppendFrame,
    TTSAudioRawFrame,
    VADUserStartedSpeakingFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.pipeline.worker import PipelineWorker

from pipecat_support import LoopLag, run_beside
from pulse_support import say_into_the_microphone

sys.path.insert(0, sys.argv[1])  # the repository's pipelines/
import voice_agent  # noqa: E402

from agent_tts.default_voice.engine import DefaultVoiceSynthesizer  # noqa: E402
from agent_tts.pipecat.scripted_llm import ScriptedLLMService  # noqa: E402
from agent_tts.pipecat.sounddevice_transport import SoundDeviceTransport  # noqa: E402
from agent_tts.pipecat.tts_service import GPTSoVITSTTSService  # noqa: E402

LONG_ANSWER = ("Your order shipped on Monday from our warehouse in Leeds. The courier collected it in the "
               "afternoon, and it passed through the regional depot on Tuesday morning. It is now on the van "
               "for your area, and the driver expects to reach you between two and four this afternoon.")
SECOND_ANSWER = "Of course, what else would you like to know?"
# No comma: a pause inside the user's speech longer than the end-of-turn silence would make two user turns.
USER_SPEECH = "Hold on I have another question for you."


class Recorder(BaseObserver):
    """Times of the frames the test judges by; TTS audio frames as (time, context) from the TTS itself."""

    def __init__(self, tts) -> None:
        super().__init__()
        self.tts = tts
        self.events: dict[str, list] = {"vad_onsets": [], "interruptions": [], "tts_interrupted": [],
                                        "interruption_path": [], "bot_started": [], "tts_audio": []}
        self.seen: set[int] = set()
        self.bot_started = asyncio.Event()

    async def on_push_frame(self, data: FramePushed) -> None:
        frame = data.frame
        if isinstance(frame, InterruptionFrame):  # each processor's push: where the interruption spends its time
            self.events["interruption_path"].append([time.perf_counter(), type(data.source).__name__])
            if data.source is self.tts:
                self.events["tts_interrupted"].append(time.perf_counter())  # the TTS has handled it
        if frame.id in self.seen:
            return
        self.seen.add(frame.id)
        now = time.perf_counter()
        if isinstance(frame, VADUserStartedSpeakingFrame):
            self.events["vad_onsets"].append(now)
        elif isinstance(frame, InterruptionFrame):
            self.events["interruptions"].append(now)
        elif isinstance(frame, BotStartedSpeakingFrame):
            self.events["bot_started"].append(now)
            self.bot_started.set()
        elif isinstance(frame, TTSAudioRawFrame) and data.source is self.tts:
            self.events["tts_audio"].append([now, frame.context_id])


async def main() -> None:
    engine = DefaultVoiceSynthesizer()
    user_speech = soxr.resample(await engine.synthesize_async(USER_SPEECH), engine.sample_rate, voice_agent.INPUT_RATE)
    replies = iter([LONG_ANSWER, SECOND_ANSWER, SECOND_ANSWER])
    llm = ScriptedLLMService(lambda _: next(replies), first_token_s=0.1, tokens_per_second=60)
    params = voice_agent.transport_params("agent_mic_in", "agent_tts_capture", output_rate=engine.sample_rate)
    params.keep_output_timeline = True
    transport = SoundDeviceTransport(params)
    tts = GPTSoVITSTTSService(voice=engine)
    pipeline = voice_agent.build(transport, None, llm, tts)
    recorder = Recorder(tts)
    worker = PipelineWorker(pipeline, params=voice_agent.pipeline_params(params), observers=[recorder],
                            cancel_on_idle_timeout=False)
    result = {}
    lag = LoopLag()

    async def drive() -> None:
        lag.start()
        await asyncio.sleep(1.0)
        await worker.queue_frame(LLMMessagesAppendFrame([{"role": "user", "content": "Where is my order?"}],
                                                        run_llm=True))
        await asyncio.wait_for(recorder.bot_started.wait(), timeout=30)
        recorder.bot_started.clear()
        await asyncio.sleep(1.5)
        result["user_speech_started"] = time.perf_counter()
        await say_into_the_microphone(user_speech, voice_agent.INPUT_RATE)
        await asyncio.wait_for(recorder.bot_started.wait(), timeout=30)  # the next turn is answered
        await asyncio.sleep(2.0)
        await lag.stop()
        await worker.queue_frame(EndFrame())

    await run_beside(worker, drive())
    output = transport.output()
    result.update(recorder.events)
    result["speech_onsets"] = list(transport.input().speech_onsets)
    result["held_at"] = list(output.held_at)
    result["dropped_at"] = list(output.dropped_at)
    result["device_underflows"] = output.device_underflows
    result["false_alarms"] = output.false_alarms
    result["loop_lag"] = lag.summary()
    result["timeline"] = [[block.dac_time, block.frames, block.audio_frames, block.filled]
                          for block in output.timeline]
    result["flushed_at"] = list(output.flushed_at)
    result["sample_rate"] = output.device_sample_rate
    result["underruns"] = output.underruns
    result["buffer_ms"] = output.buffer_ms
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())

"""Child process: the microphone demo (voice_agent with local Whisper) on PulseAudio null sinks.

Speaks each question given as an argument into the agent's microphone
(synthesized by the bundled voice), waits for the answer, and prints one JSON
object with the turn lines the demo printed and the first-audio / first-sound
times from the end of the user's speech.
"""

from __future__ import annotations

import asyncio
import json
import sys

import soxr
from pipecat.frames.frames import BotStoppedSpeakingFrame, EndFrame
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.pipeline.worker import PipelineWorker

from pipecat_support import run_beside, until
from pulse_support import say_into_the_microphone

sys.path.insert(0, sys.argv[1])
import voice_agent  # noqa: E402

from agent_tts.default_voice.engine import DefaultVoiceSynthesizer  # noqa: E402
from agent_tts.pipecat.services import make_llm, make_stt  # noqa: E402
from agent_tts.pipecat.sounddevice_transport import SoundDeviceTransport  # noqa: E402
from agent_tts.pipecat.tts_service import GPTSoVITSTTSService  # noqa: E402
from agent_tts.pipecat.turn_timing import TurnTimer  # noqa: E402


class BotStopped(BaseObserver):
    def __init__(self) -> None:
        super().__init__()
        self.stopped = asyncio.Event()

    async def on_push_frame(self, data: FramePushed) -> None:
        if isinstance(data.frame, BotStoppedSpeakingFrame):
            self.stopped.set()


async def main(questions: list[str]) -> None:
    engine = DefaultVoiceSynthesizer()
    speech = [soxr.resample(await engine.synthesize_async(q), engine.sample_rate, voice_agent.INPUT_RATE)
              for q in questions]
    params = voice_agent.transport_params("agent_mic_in", "agent_tts_capture")
    transport = SoundDeviceTransport(params)
    pipeline = voice_agent.build(transport, make_stt(), make_llm(), GPTSoVITSTTSService(voice=engine))
    lines: list[str] = []
    timer, bot = TurnTimer(report=lines.append), BotStopped()
    worker = PipelineWorker(pipeline, params=voice_agent.pipeline_params(params), observers=[timer, bot],
                            cancel_on_idle_timeout=False)

    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def _on_started(worker, frame) -> None:
        started.set()

    async def user() -> None:
        # Speak once the agent listens (on a busy machine that takes longer than any fixed wait would allow).
        await asyncio.wait_for(started.wait(), timeout=60)
        await until(lambda: transport.input().captured_frames > 0, timeout=30)
        await asyncio.sleep(0.5)
        for pcm in speech:
            bot.stopped.clear()
            await say_into_the_microphone(pcm, voice_agent.INPUT_RATE)
            await asyncio.wait_for(bot.stopped.wait(), timeout=60)
            await asyncio.sleep(0.5)
        timer.flush()
        await worker.queue_frame(EndFrame())

    try:
        await run_beside(worker, user())
    finally:
        microphone = transport.input()
        print(f"microphone: {microphone.captured_frames} frames captured, {microphone.overflows} overflows, "
              f"speech heard at {list(microphone.speech_onsets)}", file=sys.stderr, flush=True)
    print(json.dumps({"turns": lines, "opened_by": [t.opened_by for t in timer.turns],
                      "first_audio_ms": [1000 * (t.first_audio - t.asked) for t in timer.turns],
                      "first_sound_ms": [1000 * (t.first_sound - t.asked) for t in timer.turns if t.first_sound]}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[2:]))

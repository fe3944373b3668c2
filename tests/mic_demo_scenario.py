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

from pipecat_support import run_beside
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

    async def user() -> None:
        await asyncio.sleep(2.0)
        for pcm in speech:
            bot.stopped.clear()
            await say_into_the_microphone(pcm, voice_agent.INPUT_RATE)
            await asyncio.wait_for(bot.stopped.wait(), timeout=60)
            await asyncio.sleep(0.5)
        timer.flush()
        await worker.queue_frame(EndFrame())

    await run_beside(worker, user())
    print(json.dumps({"turns": lines, "opened_by": [t.opened_by for t in timer.turns],
                      "first_audio_ms": [1000 * (t.first_audio - t.asked) for t in timer.turns],
                      "first_sound_ms": [1000 * (t.first_sound - t.asked) for t in timer.turns if t.first_sound]}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[2:]))

"""Child process of the transport fault tests: speak through SoundDeviceTransport while something is wrong.

`missing`: the output device does not exist. `rate RATE`: the pipeline runs at
a rate the device refuses. `vanish`: the sound server is killed while the
agent speaks. Prints one JSON object: whether the pipeline finished, the seconds
it took, and the transport's counters.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

from pipecat.frames.frames import EndFrame, TTSSpeakFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker

from agent_tts.default_voice.engine import DefaultVoiceSynthesizer
from agent_tts.pipecat.sounddevice_transport import SoundDeviceTransport, SoundDeviceTransportParams
from agent_tts.pipecat.tts_service import GPTSoVITSTTSService
from pipecat_support import run_beside

TEXT = "This is a longer answer. " * 8


async def main(case: str, argument: str | None) -> None:
    rate = int(argument) if case == "rate" else 22050
    device = "no-such-device" if case == "missing" else "agent_tts_capture"
    transport = SoundDeviceTransport(SoundDeviceTransportParams(audio_out_enabled=True, output_device=device))
    tts = GPTSoVITSTTSService(voice=DefaultVoiceSynthesizer())
    worker = PipelineWorker(Pipeline([tts, transport.output()]), params=PipelineParams(audio_out_sample_rate=rate),
                            cancel_on_idle_timeout=False)
    started = time.perf_counter()

    async def drive() -> None:
        await worker.queue_frame(TTSSpeakFrame(TEXT))
        if case == "vanish":
            await asyncio.sleep(2.0)
            subprocess.run(["pulseaudio", "--kill"], check=False)
        await asyncio.sleep(4.0)
        await worker.queue_frame(TTSSpeakFrame("Still here."))
        await worker.queue_frame(EndFrame())

    await run_beside(worker, drive(), finish_timeout=120)
    output = transport.output()
    print(json.dumps({"finished": True, "seconds": time.perf_counter() - started, "device_rate": output.device_sample_rate,
                      "played_frames": output.played_frames}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))

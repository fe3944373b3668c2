"""Child process of the pipecat playback tests: prompts -> scripted LLM -> TTS -> SoundDeviceTransport.

Arguments: the repository's pipelines/ folder, an output folder, the pipeline's
output sample rate, then the prompts. Saves what the TTS pushed (`synthesized.npy`, int16 at
that rate) and prints one JSON object with the transport's counters (each
underrun: when the device ran dry and how much it had played by then), when
the TTS pushed how much audio, how late the event loop ran, and each turn's
first-audio and first-sound times.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import numpy as np
from pipecat.frames.frames import TTSAudioRawFrame
from pipecat.observers.base_observer import BaseObserver, FramePushed

sys.path.insert(0, sys.argv[1])
import llm_to_speaker  # noqa: E402

from agent_tts.default_voice.engine import DefaultVoiceSynthesizer  # noqa: E402
from agent_tts.pipecat.services import make_llm  # noqa: E402
from agent_tts.pipecat.sounddevice_transport import SoundDeviceTransport, SoundDeviceTransportParams  # noqa: E402
from agent_tts.pipecat.tts_service import GPTSoVITSTTSService  # noqa: E402
from agent_tts.pipecat.turn_timing import TurnTimer  # noqa: E402
from pipecat_support import LoopLag  # noqa: E402


class TeeTTSAudio(BaseObserver):
    def __init__(self, tts) -> None:
        super().__init__()
        self.tts = tts
        self.pieces: list[bytes] = []
        self.pushed: list[tuple[float, int]] = []  # (when, frames pushed so far)
        self.seen: set[int] = set()

    async def on_push_frame(self, data: FramePushed) -> None:
        if isinstance(data.frame, TTSAudioRawFrame) and data.source is self.tts and data.frame.id not in self.seen:
            self.seen.add(data.frame.id)
            self.pieces.append(data.frame.audio)
            self.pushed.append((time.perf_counter(), sum(map(len, self.pieces)) // 2))


async def main(folder: Path, rate: int, prompts: list[str]) -> None:
    tts = GPTSoVITSTTSService(voice=DefaultVoiceSynthesizer())
    tee = TeeTTSAudio(tts)
    transport = SoundDeviceTransport(SoundDeviceTransportParams(
        audio_out_enabled=True, audio_out_sample_rate=rate, output_device="agent_tts_capture"))
    lines: list[str] = []
    timer = TurnTimer(report=lines.append)
    lag = LoopLag()
    lag.start()
    await llm_to_speaker.speak_prompts(prompts, tts, make_llm(), transport, timer, observers=[tee])
    await lag.stop()
    np.save(folder / "synthesized.npy", np.frombuffer(b"".join(tee.pieces), np.int16))
    output = transport.output()
    print(json.dumps({"underruns": output.underruns, "underrun_log": list(output.underrun_log),
                      "buffer_ms": output.buffer_ms, "device_underflows": output.device_underflows,
                      "first_buffer_ms": output._params.output_buffer_ms,
                      "max_callback_gap_ms": output.max_callback_gap_ms,
                      "pushed": tee.pushed, "loop_lag": lag.summary(),
                      "played_frames": output.played_frames,
                      "device_rate": output.device_sample_rate, "turns": lines,
                      "first_audio_ms": [1000 * (t.first_audio - t.asked) for t in timer.turns],
                      "first_sound_ms": [1000 * (t.first_sound - t.asked) for t in timer.turns if t.first_sound]}))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]))

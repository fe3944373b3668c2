"""The device thread (PortAudio calls with a deadline) and the early barge-in's VAD, without a sound device."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest
import soxr
from pipecat.audio.vad.vad_controller import VADController
from pipecat.frames.frames import InputAudioRawFrame

from agent_tts.audio.devices import device_call, device_call_async
from agent_tts.errors import AudioDeviceError, DeviceTimeoutError
from agent_tts.pipecat.webrtc_vad import SpeechOnsets, WebRTCVADAnalyzer


def test_a_call_that_blocks_is_a_one_line_error_at_its_deadline_and_later_calls_still_run():
    release = threading.Event()
    started = time.perf_counter()
    with pytest.raises(DeviceTimeoutError) as caught:
        device_call(release.wait, "opening the sound output 'stuck'", timeout=0.2)
    assert time.perf_counter() - started < 1.0
    message = str(caught.value)
    assert "opening the sound output 'stuck'" in message and "0.2 s" in message and "\n" not in message
    assert isinstance(caught.value, AudioDeviceError)
    release.set()  # the stuck call returns; the thread takes the next one
    assert device_call(lambda: threading.current_thread().name, "naming the thread") == "agent-tts-portaudio"


def test_the_async_call_leaves_the_event_loop_running_while_portaudio_blocks():
    async def scenario() -> tuple[int, float]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        started = time.perf_counter()
        with pytest.raises(DeviceTimeoutError):
            await device_call_async(lambda: time.sleep(0.6), "closing the sound output", timeout=0.3)
        elapsed = time.perf_counter() - started
        ticker.cancel()
        return ticks, elapsed

    ticks, elapsed = asyncio.run(scenario())
    assert elapsed < 0.55 and ticks >= 5  # the loop ran while the call blocked, and gave up at the deadline
    device_call(lambda: None, "waiting for the blocked call to end", timeout=5)


def test_an_exception_in_the_call_reaches_the_caller():
    def fails() -> None:
        raise ValueError("no such device")

    with pytest.raises(ValueError, match="no such device"):
        device_call(fails, "opening")


def speech_with_pauses() -> np.ndarray:
    from agent_tts.default_voice.engine import DefaultVoiceSynthesizer

    engine = DefaultVoiceSynthesizer()
    try:
        parts = [soxr.resample(asyncio.run(engine.synthesize_async(text)), engine.sample_rate, 16000)
                 for text in ("Hello there.", "Where is my order?", "Thanks.")]
    finally:
        engine.close()
    pause = np.zeros(12_800, np.float32)
    noise = np.random.default_rng(0).normal(0, 0.002, sum(len(p) for p in parts) + 4 * len(pause))
    audio = np.concatenate([pause, parts[0], pause, parts[1], pause, parts[2], pause]) + noise
    return (np.clip(audio, -1, 1) * 32767).astype(np.int16)


def test_speech_onsets_fire_on_the_same_blocks_as_pipecats_vad_controller():
    pcm = speech_with_pauses()
    blocks = [pcm[i:i + 160].tobytes() for i in range(0, len(pcm) - 159, 160)]  # 10 ms, as the transport's
    onsets = SpeechOnsets(WebRTCVADAnalyzer(mode=3), 16000)
    ours = [index for index, block in enumerate(blocks) if onsets.feed(block)]

    async def pipecats() -> list[int]:
        analyzer = WebRTCVADAnalyzer(mode=3)
        analyzer.set_sample_rate(16000)
        controller = VADController(analyzer, audio_idle_timeout=0)
        started: list[int] = []
        current = 0

        @controller.event_handler("on_speech_started")
        async def on_started(_controller) -> None:
            started.append(current)

        for current, block in enumerate(blocks):
            await controller.process_frame(InputAudioRawFrame(audio=block, sample_rate=16000, num_channels=1))
        await analyzer.cleanup()
        return started

    theirs = asyncio.run(pipecats())
    assert len(ours) >= 3 and ours == theirs

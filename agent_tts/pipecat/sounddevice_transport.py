"""`SoundDeviceTransport`: pipecat audio input and output over `sounddevice` (PortAudio), no PyAudio build needed.

Output: audio frames go into a ring buffer that a PortAudio callback drains
in blocks; `write_audio_frame` returns once the buffer is back under
`output_buffer_ms`, so the pipeline is paced by the device's clock and an
interruption has little to throw away. On an `InterruptionFrame` the ring
buffer is flushed at once: the device plays silence from its next block.
Underruns (the device ran dry and more audio of the same speech came
within 0.5 s) are counted. Input: a callback stream pushes `InputAudioRawFrame`s of
`block_ms`. Devices are chosen by index or (part of) a name. A missing device,
a rate the device refuses, or a device that disappears is one log line; the
pipeline keeps running.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from loguru import logger
from pipecat.frames.frames import Frame, InputAudioRawFrame, InterruptionFrame, OutputAudioRawFrame, StartFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor, FrameProcessorSetup
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import BaseTransport, TransportParams

from agent_tts.audio.devices import close_stream, open_error


# Audio arriving this soon after the device ran dry means the device starved mid-speech.
UNDERRUN_WINDOW_S = 0.5


class SoundDeviceTransportParams(TransportParams):
    """Transport parameters plus the devices, the block size and how far output may run ahead of the device."""

    input_device: int | str | None = None
    output_device: int | str | None = None
    block_ms: int = 20
    output_buffer_ms: int = 60
    keep_output_timeline: bool = False


@dataclass(frozen=True)
class PlayedBlock:
    """One device block: when it was filled and when it reaches the speaker (perf_counter seconds), and how
    much of it was audio."""

    filled: float
    dac_time: float
    frames: int
    audio_frames: int


class SoundDeviceOutputTransport(BaseOutputTransport):
    """Plays the pipeline's audio on a sounddevice output stream through a ring buffer."""

    _params: SoundDeviceTransportParams

    def __init__(self, params: SoundDeviceTransportParams, **kwargs) -> None:
        super().__init__(params, **kwargs)
        self._stream = None
        self._device_rate = 0
        self._resampler = None
        self._lock = threading.Lock()
        self._buffer = np.zeros(0, np.int16)
        self._room = asyncio.Event()
        self._writer_waiting = False  # the callback wakes the event loop only when a write waits for room
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failed = False
        self._had_audio = False
        self._starved_at: float | None = None
        self.underruns = 0
        self.played_frames = 0
        self.flushed_at: deque[float] = deque(maxlen=1000)  # when each interruption emptied the buffer
        self.timeline: deque[PlayedBlock] | None = deque(maxlen=100_000) if params.keep_output_timeline else None

    @property
    def device_sample_rate(self) -> int:
        return self._device_rate

    async def setup(self, setup: FrameProcessorSetup) -> None:
        await super().setup(setup)
        self._loop = asyncio.get_running_loop()

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        self._open()
        await self.set_transport_ready(frame)

    def _open(self) -> None:
        try:
            import sounddevice
        except OSError as exc:
            logger.error(f"{self}: sound output needs PortAudio ({exc}); audio will be dropped")
            self._failed = True
            return
        device = self._params.output_device
        rate = self.sample_rate
        for attempt_rate in (rate, None):
            try:
                if attempt_rate is None:
                    attempt_rate = int(sounddevice.query_devices(device, "output")["default_samplerate"])
                    logger.warning(f"{self}: the device refuses {rate} Hz; playing at {attempt_rate} Hz, resampled")
                self._stream = sounddevice.OutputStream(
                    samplerate=attempt_rate, channels=1, dtype="int16", device=device,
                    blocksize=attempt_rate * self._params.block_ms // 1000, callback=self._callback,
                    finished_callback=self._finished, latency="low")
                self._stream.start()
                self._device_rate = attempt_rate
                break
            except Exception as exc:  # noqa: BLE001 - PortAudioError, ValueError for unknown devices
                self._stream = None
                last_error = exc
        if self._stream is None:
            logger.error(f"{self}: {open_error('output', device, rate, last_error)}; audio will be dropped")
            self._failed = True
            return
        if self._device_rate != rate:
            import soxr
            self._resampler = soxr.ResampleStream(rate, self._device_rate, 1, dtype="int16")

    def _callback(self, outdata: np.ndarray, frames: int, time_info, status) -> None:
        out = outdata[:, 0]
        with self._lock:
            take = min(frames, len(self._buffer))
            out[:take] = self._buffer[:take]
            out[take:] = 0
            self._buffer = self._buffer[take:]
            if 0 < take < frames or (take == 0 and self._had_audio):
                self._starved_at = time.perf_counter()
            self._had_audio = take == frames
            self.played_frames += take
            wake_writer = self._writer_waiting and len(self._buffer) <= self._high_water()
            if wake_writer:
                self._writer_waiting = False
        if self.timeline is not None:
            now = time.perf_counter()
            dac = now + max(0.0, time_info.outputBufferDacTime - time_info.currentTime)
            self.timeline.append(PlayedBlock(now, dac, frames, take))
        if wake_writer and self._loop is not None:
            self._loop.call_soon_threadsafe(self._room.set)

    def _high_water(self) -> int:
        return self._device_rate * self._params.output_buffer_ms // 1000

    def _finished(self) -> None:
        if self._stream is not None and not self._failed:
            self._failed = True
            logger.error(f"{self}: the sound output stopped (device gone?); audio will be dropped")
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._room.set)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        if self._failed or self._stream is None:
            return True  # dropped, logged once; the pipeline keeps running
        pcm = np.frombuffer(frame.audio, np.int16)
        if frame.num_channels > 1:
            pcm = pcm.reshape(-1, frame.num_channels).mean(axis=1).astype(np.int16)
        if self._resampler is not None:
            pcm = self._resampler.resample_chunk(pcm)
        with self._lock:
            # The device ran dry and audio is still coming: a gap in the speech, not its end.
            if self._starved_at is not None and time.perf_counter() - self._starved_at < UNDERRUN_WINDOW_S:
                self.underruns += 1
            self._starved_at = None
            self._buffer = np.concatenate([self._buffer, pcm])
        while not self._failed:
            with self._lock:
                if len(self._buffer) <= self._high_water():
                    break
                self._room.clear()
                self._writer_waiting = True
            try:
                await asyncio.wait_for(self._room.wait(), timeout=1.0)
            except TimeoutError:
                if not self._stream.active:
                    self._finished()
        return True

    def flush(self) -> None:
        """Drop everything queued for the device (barge-in)."""
        with self._lock:
            self._buffer = np.zeros(0, np.int16)
            self._had_audio = False
            self._starved_at = None
            self.flushed_at.append(time.perf_counter())
        self._room.set()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, InterruptionFrame):
            self.flush()
        await super().process_frame(frame, direction)

    def _close(self) -> None:
        stream, self._stream = self._stream, None
        close_stream(stream)

    async def stop(self, frame) -> None:
        await super().stop(frame)
        # Let what is queued play out before closing.
        deadline = time.perf_counter() + 2.0
        while len(self._buffer) and not self._failed and time.perf_counter() < deadline:
            await asyncio.sleep(self._params.block_ms / 1000)
        self._close()

    async def cancel(self, frame) -> None:
        await super().cancel(frame)
        self._close()

    async def cleanup(self) -> None:
        await super().cleanup()
        self._close()


class SoundDeviceInputTransport(BaseInputTransport):
    """Captures microphone audio with a sounddevice input stream and pushes it in blocks of `block_ms`."""

    _params: SoundDeviceTransportParams

    def __init__(self, params: SoundDeviceTransportParams, **kwargs) -> None:
        super().__init__(params, **kwargs)
        self._stream = None
        self.overflows = 0

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        loop = asyncio.get_running_loop()
        device = self._params.input_device
        rate = self.sample_rate
        channels = self._params.audio_in_channels

        def callback(indata: np.ndarray, frames: int, time_info, status) -> None:
            if status.input_overflow:
                self.overflows += 1
            audio_frame = InputAudioRawFrame(audio=bytes(indata), sample_rate=rate, num_channels=channels)
            asyncio.run_coroutine_threadsafe(self.push_audio_frame(audio_frame), loop)

        try:
            import sounddevice
            self._stream = sounddevice.RawInputStream(
                samplerate=rate, channels=channels, dtype="int16", device=device,
                blocksize=rate * self._params.block_ms // 1000, callback=callback, latency="low")
            self._stream.start()
        except Exception as exc:  # noqa: BLE001 - PortAudioError, ValueError, OSError
            self._stream = None
            logger.error(f"{self}: {open_error('input', device, rate, exc)}; continuing without a microphone")
        await self.set_transport_ready(frame)

    def _close(self) -> None:
        stream, self._stream = self._stream, None
        close_stream(stream)

    async def stop(self, frame) -> None:
        self._close()
        await super().stop(frame)

    async def cancel(self, frame) -> None:
        self._close()
        await super().cancel(frame)

    async def cleanup(self) -> None:
        self._close()
        await super().cleanup()


class SoundDeviceTransport(BaseTransport):
    """A local microphone and speaker for pipecat through sounddevice."""

    def __init__(self, params: SoundDeviceTransportParams | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self._params = params or SoundDeviceTransportParams(audio_in_enabled=True, audio_out_enabled=True)
        self._input: SoundDeviceInputTransport | None = None
        self._output: SoundDeviceOutputTransport | None = None

    def input(self) -> FrameProcessor:
        if self._input is None:
            self._input = SoundDeviceInputTransport(self._params, name=self._input_name)
        return self._input

    def output(self) -> FrameProcessor:
        if self._output is None:
            self._output = SoundDeviceOutputTransport(self._params, name=self._output_name)
        return self._output

"""`SoundDeviceTransport`: pipecat audio input and output over `sounddevice` (PortAudio), no PyAudio build needed.

Output goes through two buffers. The device's own (`device_latency_ms`,
200 ms) rides out a late PortAudio callback on a busy machine: with
PortAudio's "low" latency (about 30 ms) the device ran dry under CPU load, and
each time PulseAudio's ALSA plugin reconnected the stream, a second or two of
silence. In front of it, a ring buffer that the callback drains in blocks:
`write_audio_frame` returns once it is back under its high water mark
(`output_buffer_ms`, 200 ms, to start with), so the pipeline is paced by the
device's clock. The ring buffer carries the device through a stalled event
loop; when the device runs dry mid-speech anyway (an underrun: more audio of
the same speech came within 0.5 s), the mark doubles, up to
`max_output_buffer_ms`. Neither size delays a barge-in, which empties both.

Barge-in. On an `InterruptionFrame` the ring buffer is flushed, what the
pipeline still hands over of the interrupted turn while pipecat drops its
queue is discarded, and what the device itself holds is dropped by aborting
the stream, which is started again at once on the device thread. With
`barge_in_vad_mode` set (the early barge-in), the input's PortAudio callback
also runs the pipeline's WebRTC VAD (same mode and `VADParams`, deciding on the
same block as pipecat's `VADController`, see `SpeechOnsets`) and, where speech
starts, stops the speaker right there on the audio thread, before the
interruption has crossed the pipeline: the ring buffer is held (its callback
plays silence) and the stream aborted. The `InterruptionFrame` that follows
flushes what was held; if none comes within `barge_in_hold_ms` (the pipeline
chose not to interrupt), a warning is logged and the held audio plays on,
late, less what the device held. So set it only for pipelines that
interrupt when the user starts speaking (pipecat's default;
`pipelines/voice_agent.py` does).

Input: a callback stream pushes `InputAudioRawFrame`s of `block_ms`. Devices
are chosen by index or (part of) a name. Every PortAudio call is made off the
event loop with a deadline (`agent_tts.audio.devices`' device thread; the
barge-in's abort on the input's audio thread), and calls on one stream never
overlap. A missing device, a rate the device refuses, a device that
disappears, or one whose driver stops answering is one log line; the
pipeline keeps running. Counters for the tests and the curious: underruns
(with when and after how much), device underflows (PortAudio's own), the
longest wait between callbacks, flushes, holds, drops, false alarms, and
with `keep_output_timeline` every block's fill time, DAC time and audio.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from loguru import logger
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.frames.frames import Frame, InputAudioRawFrame, InterruptionFrame, OutputAudioRawFrame, StartFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessorSetup
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import BaseTransport, TransportParams

from agent_tts.audio.devices import (
    CLOSE_TIMEOUT_S,
    DEVICE_LATENCY_MS,
    DEVICE_THREAD,
    abort_and_close,
    device_call_async,
    open_error,
)
from agent_tts.errors import DeviceTimeoutError
from agent_tts.pipecat.webrtc_vad import SpeechOnsets, WebRTCVADAnalyzer

# Audio arriving this soon after the device ran dry means the device starved mid-speech.
UNDERRUN_WINDOW_S = 0.5
# A VAD onset this soon after an interruption is the speech that caused it: no second hold.
ONSET_AFTER_INTERRUPTION_S = 0.5
# How long a write waits for room before asking whether the device still runs.
DEVICE_ALIVE_CHECK_S = 1.0


class SoundDeviceTransportParams(TransportParams):
    """Transport parameters plus the devices, the block size, how far output may run ahead of the device, and
    the early barge-in (`barge_in_vad_mode`: the pipeline's WebRTC VAD mode, None for off)."""

    input_device: int | str | None = None
    output_device: int | str | None = None
    block_ms: int = 20
    device_latency_ms: int | None = DEVICE_LATENCY_MS
    output_buffer_ms: int = 200
    max_output_buffer_ms: int = 800
    keep_output_timeline: bool = False
    barge_in_vad_mode: int | None = None
    barge_in_vad_params: VADParams | None = None
    barge_in_hold_ms: int = 5000


def device_latency(params: SoundDeviceTransportParams) -> float | str:
    """The `latency` to open a stream with: `device_latency_ms`, or PortAudio's "low" where it is None."""
    return "low" if params.device_latency_ms is None else params.device_latency_ms / 1000


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
        self._closing = False
        self._had_audio = False
        self._starved_at: float | None = None
        self._starved_after = 0  # frames played when the device ran dry
        self._held_since: float | None = None  # the early barge-in's hold: the device plays silence meanwhile
        self._discarding = False  # while pipecat drops an interrupted turn's queue
        self._last_interruption = -1e9
        self._audible_until = 0.0  # when the audio already handed to the device has played out
        self._restarts = 0  # stream restarts under way: their finished callbacks are not a lost device
        self._control = threading.Lock()  # held around every PortAudio call on the stream after it is opened
        self.buffer_ms = params.output_buffer_ms
        self.underruns = 0
        self.played_frames = 0
        # Each underrun: when the device ran dry, and how many frames it had played by then.
        self.underrun_log: deque[tuple[float, int]] = deque(maxlen=1000)
        self.flushed_at: deque[float] = deque(maxlen=1000)  # when each interruption emptied the buffer
        self.held_at: deque[float] = deque(maxlen=1000)  # when the early barge-in silenced the device
        self.dropped_at: deque[float] = deque(maxlen=1000)  # when the device's own buffer was dropped (abort)
        self.device_underflows = 0  # blocks PortAudio reports the device ran dry before (it was not called in time)
        self.max_callback_gap_ms = 0.0  # the longest the device went without calling back while playing speech
        self._last_callback = 0.0
        self.false_alarms = 0
        self.timeline: deque[PlayedBlock] | None = deque(maxlen=100_000) if params.keep_output_timeline else None

    @property
    def device_sample_rate(self) -> int:
        return self._device_rate

    async def setup(self, setup: FrameProcessorSetup) -> None:
        await super().setup(setup)
        self._loop = asyncio.get_running_loop()

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        device = self._params.output_device
        try:
            await device_call_async(self._open, f"opening the sound output {device!r}")
        except DeviceTimeoutError as exc:
            logger.error(f"{self}: {exc}; audio will be dropped")
            self._failed = True
        await self.set_transport_ready(frame)

    def _open(self) -> None:
        """On the device thread: open and start the stream at the pipeline's rate, else at the device's."""
        try:
            import sounddevice
        except OSError as exc:
            logger.error(f"{self}: sound output needs PortAudio ({exc}); audio will be dropped")
            self._failed = True
            return
        device = self._params.output_device
        rate = self.sample_rate
        stream = None
        for attempt_rate in (rate, None):
            try:
                if attempt_rate is None:
                    attempt_rate = int(sounddevice.query_devices(device, "output")["default_samplerate"])
                    logger.warning(f"{self}: the device refuses {rate} Hz; playing at {attempt_rate} Hz, resampled")
                self._device_rate = attempt_rate
                stream = sounddevice.OutputStream(
                    samplerate=attempt_rate, channels=1, dtype="int16", device=device,
                    blocksize=attempt_rate * self._params.block_ms // 1000, callback=self._callback,
                    finished_callback=self._finished, latency=device_latency(self._params))
                stream.start()
                break
            except Exception as exc:  # noqa: BLE001 - PortAudioError, ValueError for unknown devices
                abort_and_close(stream)
                stream = None
                last_error = exc
        if stream is None:
            logger.error(f"{self}: {open_error('output', device, rate, last_error)}; audio will be dropped")
            self._failed = True
            return
        if self._device_rate != rate:
            import soxr
            self._resampler = soxr.ResampleStream(rate, self._device_rate, 1, dtype="int16")
        self._stream = stream
        if self._failed or self._closing:  # the open outlived its deadline, or the pipeline ended meanwhile
            self._stream = None
            abort_and_close(stream)

    def _callback(self, outdata: np.ndarray, frames: int, time_info, status) -> None:
        out = outdata[:, 0]
        now = time.perf_counter()
        dac = now + max(0.0, time_info.outputBufferDacTime - time_info.currentTime)
        false_alarm = False
        if status.output_underflow:
            self.device_underflows += 1
        with self._lock:
            if self._had_audio:
                self.max_callback_gap_ms = max(self.max_callback_gap_ms, 1000 * (now - self._last_callback))
            self._last_callback = now
            if self._held_since is not None and now - self._held_since > self._params.barge_in_hold_ms / 1000:
                self._held_since = None
                self.false_alarms += 1
                false_alarm = True
            take = 0 if self._held_since is not None else min(frames, len(self._buffer))
            out[:take] = self._buffer[:take]
            out[take:] = 0
            self._buffer = self._buffer[take:]
            if self._held_since is None and (0 < take < frames or (take == 0 and self._had_audio)):
                self._starved_at = now
                self._starved_after = self.played_frames + take
            self._had_audio = take == frames
            self.played_frames += take
            if take:
                self._audible_until = dac + take / self._device_rate
            wake_writer = self._writer_waiting and len(self._buffer) <= self._high_water()
            if wake_writer:
                self._writer_waiting = False
        if self.timeline is not None:
            self.timeline.append(PlayedBlock(now, dac, frames, take))
        if false_alarm:
            logger.warning(f"{self}: speech was heard but no interruption followed within "
                           f"{self._params.barge_in_hold_ms} ms; playing on (does the pipeline allow interruptions?)")
        if wake_writer and self._loop is not None:
            self._loop.call_soon_threadsafe(self._room.set)

    def _high_water(self) -> int:
        return self._device_rate * self.buffer_ms // 1000

    def _finished(self) -> None:
        if self._restarts:  # an abort of ours, not a lost device
            self._restarts -= 1
            return
        if self._stream is not None and not self._failed and not self._closing:
            self._failed = True
            logger.error(f"{self}: the sound output stopped (device gone?); audio will be dropped")
            self._wake_writer()

    def _wake_writer(self) -> None:
        if self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self._room.set)
            except RuntimeError:  # the loop is closed: nobody is waiting
                pass

    def hold_for_speech(self) -> None:
        """Early barge-in (from the input's audio thread): silence the device now, keeping what is queued until
        the pipeline's interruption flushes it (or `barge_in_hold_ms` passes)."""
        now = time.perf_counter()
        with self._lock:
            if now - self._last_interruption < ONSET_AFTER_INTERRUPTION_S:
                return
            self._held_since = now
            self.held_at.append(now)
            self._had_audio = False
            self._starved_at = None
        self._drop_device_buffer(here=True)
        self._wake_writer()

    def _drop_device_buffer(self, here: bool = False) -> None:
        """Silence what the device itself still holds (up to `device_latency_ms` of audio) by aborting the stream,
        which drops it; then start it again on the device thread. `here`: abort on the calling thread (the
        input's audio thread, which must not wait for the device thread to wake), else on the device thread.
        Without audio in the device, nothing to do."""
        stream = self._stream
        if stream is None or self._failed or time.perf_counter() >= self._audible_until:
            return
        self._audible_until = 0.0

        def abort() -> None:
            with self._control:  # PortAudio calls on one stream never overlap
                if self._stream is not stream:
                    return
                self._restarts += 1
                try:
                    stream.abort()
                except Exception as exc:  # noqa: BLE001 - PortAudioError: the device is gone
                    self._restarts -= 1
                    logger.error(f"{self}: the sound output could not stop ({exc}); audio will be dropped")
                    self._failed = True
                    return
                self.dropped_at.append(time.perf_counter())

        def start_again() -> None:
            with self._control:
                if self._stream is not stream or self._failed:
                    return
                try:
                    stream.start()
                except Exception as exc:  # noqa: BLE001 - PortAudioError: the device is gone
                    logger.error(f"{self}: the sound output could not restart ({exc}); audio will be dropped")
                    self._failed = True
                    self._wake_writer()

        if here:
            abort()
        else:
            DEVICE_THREAD.submit(abort)
        DEVICE_THREAD.submit(start_again)

    def _locked(self, call):
        with self._control:
            return call()

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        if self._failed or self._stream is None:
            return True  # dropped, logged once; the pipeline keeps running
        pcm = np.frombuffer(frame.audio, np.int16)
        if frame.num_channels > 1:
            pcm = pcm.reshape(-1, frame.num_channels).mean(axis=1).astype(np.int16)
        if self._resampler is not None:
            pcm = self._resampler.resample_chunk(pcm)
        grew = False
        with self._lock:
            if self._discarding and frame.interruptible:
                return True  # the interrupted turn's, taken from pipecat's queue before it was dropped
            # The device ran dry and audio is still coming: a gap in the speech, not its end.
            if self._starved_at is not None and time.perf_counter() - self._starved_at < UNDERRUN_WINDOW_S:
                self.underruns += 1
                self.underrun_log.append((self._starved_at, self._starved_after))
                grew = self.buffer_ms < self._params.max_output_buffer_ms
                self.buffer_ms = min(self._params.max_output_buffer_ms, 2 * self.buffer_ms)
            self._starved_at = None
            self._buffer = np.concatenate([self._buffer, pcm])
        if grew:
            logger.info(f"{self}: the device ran dry mid-speech (underrun {self.underruns}); "
                        f"the output buffer now holds up to {self.buffer_ms} ms")
        await self._wait_for_room()
        return True

    async def _wait_for_room(self) -> None:
        while not self._failed:
            with self._lock:
                if len(self._buffer) <= self._high_water() or self._held_since is not None:
                    return
                self._room.clear()
                self._writer_waiting = True
            try:
                await asyncio.wait_for(self._room.wait(), timeout=DEVICE_ALIVE_CHECK_S)
            except TimeoutError:
                await self._check_device_alive()

    async def _check_device_alive(self) -> None:
        stream = self._stream
        try:
            alive = stream is not None and await device_call_async(lambda: self._locked(lambda: stream.active),
                                                                   "asking the sound output whether it runs",
                                                                   DEVICE_ALIVE_CHECK_S)
        except DeviceTimeoutError:
            alive = False
        if not alive:
            self._finished()

    def flush(self) -> None:
        """Drop everything queued for the device (barge-in) and end an early barge-in's hold."""
        now = time.perf_counter()
        with self._lock:
            self._buffer = np.zeros(0, np.int16)
            self._had_audio = False
            self._starved_at = None
            self._held_since = None
            self._last_interruption = now
            self.flushed_at.append(now)
        self._drop_device_buffer()
        self._room.set()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if not isinstance(frame, InterruptionFrame):
            await super().process_frame(frame, direction)
            return
        self.flush()
        self._discarding = True
        try:
            await super().process_frame(frame, direction)  # pipecat drops the turn's queued audio
        finally:
            self._discarding = False

    async def _close(self) -> None:
        self._closing = True
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            await device_call_async(lambda: self._locked(lambda: abort_and_close(stream)), "closing the sound output",
                                    CLOSE_TIMEOUT_S)
        except DeviceTimeoutError as exc:
            logger.error(f"{self}: {exc}; the stream is left open")

    async def stop(self, frame) -> None:
        await super().stop(frame)
        # Let what is queued, and what the device holds, play out before closing.
        deadline = time.perf_counter() + 2.0
        while (len(self._buffer) or time.perf_counter() < self._audible_until) and not self._failed \
                and time.perf_counter() < deadline:
            await asyncio.sleep(self._params.block_ms / 1000)
        await self._close()

    async def cancel(self, frame) -> None:
        await super().cancel(frame)
        await self._close()

    async def cleanup(self) -> None:
        await super().cleanup()
        await self._close()


class SoundDeviceInputTransport(BaseInputTransport):
    """Captures microphone audio with a sounddevice input stream and pushes it in blocks of `block_ms`; with
    `barge_in_vad_mode` set, holds the output where the VAD hears speech start (see the module docstring)."""

    _params: SoundDeviceTransportParams

    def __init__(self, params: SoundDeviceTransportParams, output: SoundDeviceOutputTransport | None = None,
                 **kwargs) -> None:
        super().__init__(params, **kwargs)
        self._stream = None
        self._output = output
        self._closing = False
        self.overflows = 0
        self.captured_frames = 0
        self.speech_onsets: deque[float] = deque(maxlen=1000)  # when the early barge-in's VAD heard speech start

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        device = self._params.input_device
        loop = asyncio.get_running_loop()
        try:
            await device_call_async(lambda: self._open(loop), f"opening the sound input {device!r}")
        except DeviceTimeoutError as exc:
            logger.error(f"{self}: {exc}; continuing without a microphone")
        await self.set_transport_ready(frame)

    def _open(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the device thread: open and start the capture stream."""
        device = self._params.input_device
        rate = self.sample_rate
        channels = self._params.audio_in_channels
        onsets = self._onsets()
        output = self._output

        def callback(indata, frames: int, time_info, status) -> None:
            if status.input_overflow:
                self.overflows += 1
            self.captured_frames += frames
            pcm = bytes(indata)
            if onsets is not None and onsets.feed(pcm):
                self.speech_onsets.append(time.perf_counter())
                output.hold_for_speech()
            audio_frame = InputAudioRawFrame(audio=pcm, sample_rate=rate, num_channels=channels)
            asyncio.run_coroutine_threadsafe(self.push_audio_frame(audio_frame), loop)

        stream = None
        try:
            import sounddevice
            stream = sounddevice.RawInputStream(
                samplerate=rate, channels=channels, dtype="int16", device=device,
                blocksize=rate * self._params.block_ms // 1000, callback=callback,
                latency=device_latency(self._params))
            stream.start()
        except Exception as exc:  # noqa: BLE001 - PortAudioError, ValueError, OSError
            abort_and_close(stream)
            logger.error(f"{self}: {open_error('input', device, rate, exc)}; continuing without a microphone")
            return
        if self._closing:  # the pipeline ended while the device was opening
            abort_and_close(stream)
            return
        self._stream = stream

    def _onsets(self) -> SpeechOnsets | None:
        mode = self._params.barge_in_vad_mode
        if mode is None or self._output is None:
            return None
        return SpeechOnsets(WebRTCVADAnalyzer(mode=mode, params=self._params.barge_in_vad_params), self.sample_rate)

    async def _close(self) -> None:
        self._closing = True
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            await device_call_async(lambda: abort_and_close(stream), "closing the sound input", CLOSE_TIMEOUT_S)
        except DeviceTimeoutError as exc:
            logger.error(f"{self}: {exc}; the stream is left open")

    async def stop(self, frame) -> None:
        await self._close()
        await super().stop(frame)

    async def cancel(self, frame) -> None:
        await self._close()
        await super().cancel(frame)

    async def cleanup(self) -> None:
        await self._close()
        await super().cleanup()


class SoundDeviceTransport(BaseTransport):
    """A local microphone and speaker for pipecat through sounddevice."""

    def __init__(self, params: SoundDeviceTransportParams | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self._params = params or SoundDeviceTransportParams(audio_in_enabled=True, audio_out_enabled=True)
        self._input: SoundDeviceInputTransport | None = None
        self._output: SoundDeviceOutputTransport | None = None

    @property
    def params(self) -> SoundDeviceTransportParams:
        return self._params

    def input(self) -> SoundDeviceInputTransport:
        if self._input is None:
            speaker = self.output() if self._params.audio_out_enabled else None
            self._input = SoundDeviceInputTransport(self._params, speaker, name=self._input_name)
        return self._input

    def output(self) -> SoundDeviceOutputTransport:
        if self._output is None:
            self._output = SoundDeviceOutputTransport(self._params, name=self._output_name)
        return self._output

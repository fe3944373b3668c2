"""Play streamed audio on a sound device as it arrives: a ring buffer fed by the engine, drained by PortAudio.

`Player.play(chunks)` consumes one turn's `AudioChunk`s, starts the device
once a prebuffer is filled (sized from the generation speed measured on
earlier turns, plus the silence the listener already heard from underruns:
a turn that ran dry makes the next one wait that much longer), and returns
when the turn has been heard, with its statistics: first-sound instant,
underruns, seconds played. `stop()` (barge-in) drops everything queued: the
device is silent once it has played what it holds itself (`DEVICE_LATENCY_MS`,
enough to ride out late callbacks on a busy machine). Every PortAudio call is made on the
device thread (`agent_tts.audio.devices`) with a deadline: a stuck sound
server is an `AudioDeviceError`, not a hang.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterable
from dataclasses import dataclass, field

import numpy as np

from agent_tts.audio.devices import CLOSE_TIMEOUT_S, DEVICE_LATENCY_MS, abort_and_close, device_call, open_error
from agent_tts.engine.unit_stream import AudioChunk
from agent_tts.errors import AudioDeviceError, DeviceTimeoutError

__all__ = ["AudioDeviceError", "PlaybackStats", "Player"]

logger = logging.getLogger(__name__)

BLOCK_SECONDS = 0.02
MIN_PREBUFFER_SECONDS = 0.05
MAX_PREBUFFER_SECONDS = 3.0
DEVICE_STALL_SECONDS = 2.0
# The audio a turn is assumed to last when sizing the prebuffer for a generator slower than real time.
EXPECTED_TURN_SECONDS = 4.0


@dataclass
class PlaybackStats:
    """What happened on the device during one turn."""

    started: float = 0.0                  # perf_counter() when play() was called
    first_audio: float | None = None      # first chunk received from the engine
    first_sound: float | None = None      # estimated instant the first sample reached the device's output
    played_seconds: float = 0.0
    underruns: int = 0                    # times the device wanted audio the engine had not produced yet
    underrun_seconds: float = 0.0
    device_underflows: int = 0            # blocks PortAudio reports the device ran dry before (a late callback)
    prebuffer_seconds: float = 0.0        # audio held before the device started playing this turn
    stopped: bool = False
    played_at_stop: float | None = None   # played_seconds at the instant stop() emptied the buffer
    device_failed: bool = False


@dataclass
class _Segment:
    kind: str          # "audio", "underrun" or "idle"
    frames: int


@dataclass
class _TurnState:
    stats: PlaybackStats
    prebuffer_frames: int
    playing: bool = False      # the device was started for this turn
    ended: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Player:
    """Sound-device output for streamed speech, with a prebuffer, underrun accounting and an immediate stop.

    `device` is a sounddevice index or (part of) a name; None is the default
    output. `timeline` keeps the device's output as segments of audio, idle
    silence and underrun silence, for checking what was actually played.
    `keep_running=False` stops the device between turns (for devices without a
    clock, like an ALSA file device).
    """

    def __init__(self, sample_rate: int, device: int | str | None = None, block_seconds: float = BLOCK_SECONDS,
                 prebuffer_seconds: float | None = None, keep_timeline: bool = False,
                 keep_running: bool = True) -> None:
        self.sample_rate = sample_rate
        self.device = device
        self.blocksize = max(1, int(sample_rate * block_seconds))
        self.fixed_prebuffer = prebuffer_seconds
        # A real device keeps running between turns (playing silence): restarting a stream costs PulseAudio's
        # ALSA plugin a stall of up to 2 s. A device with no clock of its own (a WAV-file device) must be
        # stopped between turns instead, or it spins.
        self.keep_running = keep_running
        self.measured_rtf: float | None = None
        self.underrun_margin = 0.0  # prebuffer added for the underrun silence heard on earlier turns
        self.timeline: list[_Segment] | None = [] if keep_timeline else None
        self._lock = threading.Lock()
        self._buffer = np.zeros(0, np.float32)
        self._turn: _TurnState | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stream = None
        self._failure: str | None = None
        self._stopping = False

    # -- device -------------------------------------------------------------------------------

    def open(self) -> None:
        """Open the output stream now (play() opens it on first use)."""
        if self._stream is not None:
            return
        self._stream = device_call(self._open_stream, f"opening the sound output {self.device!r}")
        self._failure = None
        self._stopping = False

    def _open_stream(self):
        """On the device thread: the output stream, started when the device keeps running between turns."""
        try:
            import sounddevice
        except OSError as exc:  # PortAudio itself is missing
            raise AudioDeviceError(f"sound output needs PortAudio ({exc}); on Debian: apt-get install libportaudio2")
        self._callback_stop = sounddevice.CallbackStop  # the callback runs every block: no import there
        stream = None
        try:
            stream = sounddevice.OutputStream(
                samplerate=self.sample_rate, blocksize=self.blocksize, device=self.device, channels=1,
                dtype="float32", callback=self._callback, finished_callback=self._finished,
                # A device without a clock has no deadline to miss, and would start every turn with that much
                # silence primed.
                latency=DEVICE_LATENCY_MS / 1000 if self.keep_running else "low")
            if self.keep_running:
                stream.start()
        except (sounddevice.PortAudioError, ValueError) as exc:
            abort_and_close(stream)
            raise AudioDeviceError(open_error("output", self.device, self.sample_rate, exc)) from None
        return stream

    def close(self) -> None:
        self._stopping = True
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            device_call(lambda: abort_and_close(stream), "closing the sound output", CLOSE_TIMEOUT_S)
        except DeviceTimeoutError as exc:
            logger.error("%s; the stream is left open", exc)

    def __enter__(self) -> Player:
        self.open()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _finished(self) -> None:
        if self.keep_running and self._stream is not None and not self._stopping:
            self._fail("the sound device stopped")
            return
        turn = self._turn
        if turn is not None:
            self._signal_done(turn)

    def _fail(self, reason: str) -> None:
        self._failure = reason
        turn = self._turn
        if turn is not None:
            turn.stats.device_failed = True
            self._signal_done(turn)

    def _start_if_ready(self) -> None:
        """Start the device once the turn's prebuffer is filled (or the turn ended); it stops itself when drained."""
        with self._lock:
            turn = self._turn
            if turn is None or turn.playing or turn.stats.stopped or not len(self._buffer):
                return
            if len(self._buffer) < turn.prebuffer_frames and not turn.ended:
                return
            turn.playing = True
        if self.keep_running:
            return
        stream = self._stream

        def restart() -> None:
            if not stream.stopped:
                stream.stop()
            stream.start()
        try:
            device_call(restart, "starting the sound output")
        except Exception as exc:  # noqa: BLE001 - a device that disappeared, or a stuck one
            self._fail(f"the sound device failed: {exc}")

    # -- the device callback (PortAudio's thread) ----------------------------------------------

    def _callback(self, outdata: np.ndarray, frames: int, time_info, status) -> None:
        out = outdata[:, 0]
        with self._lock:
            turn = self._turn
            take = min(frames, len(self._buffer))
            out[:take] = self._buffer[:take]
            out[take:] = 0
            self._buffer = self._buffer[take:]
            if turn is None or not turn.playing:
                self._record("idle", frames)
                if self.keep_running:
                    return
                raise self._callback_stop
            if status.output_underflow:
                turn.stats.device_underflows += 1
            if take:
                self._record("audio", take)
                if turn.stats.first_sound is None:
                    latency = time_info.outputBufferDacTime - time_info.currentTime
                    turn.stats.first_sound = time.perf_counter() + max(0.0, latency)
                turn.stats.played_seconds += take / self.sample_rate
            if take < frames:
                if turn.ended:
                    self._record("idle", frames - take)
                    turn.playing = False
                    if self.keep_running:
                        self._signal_done(turn)
                        return
                    raise self._callback_stop
                self._record("underrun", frames - take)
                turn.stats.underruns += 1
                turn.stats.underrun_seconds += (frames - take) / self.sample_rate

    def _record(self, kind: str, frames: int) -> None:
        if self.timeline is None:
            return
        if self.timeline and self.timeline[-1].kind == kind:
            self.timeline[-1].frames += frames
        else:
            self.timeline.append(_Segment(kind, frames))

    def _signal_done(self, turn: _TurnState) -> None:
        if self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(turn.done.set)
            except RuntimeError:
                pass

    # -- turns ----------------------------------------------------------------------------------

    def prebuffer_seconds(self) -> float:
        """Audio to hold before starting: enough that a generator at the measured RTF does not starve a turn."""
        if self.fixed_prebuffer is not None:
            return self.fixed_prebuffer
        rtf = self.measured_rtf
        for_speed = 0.0 if rtf is None or rtf <= 1.0 else EXPECTED_TURN_SECONDS * (1 - 1 / rtf)
        return min(MAX_PREBUFFER_SECONDS, max(MIN_PREBUFFER_SECONDS, for_speed) + self.underrun_margin)

    async def play(self, chunks: AsyncIterable[AudioChunk]) -> PlaybackStats:
        """Play one turn's chunks as they arrive; return once it has been heard (or stopped)."""
        self._loop = asyncio.get_running_loop()
        self.open()
        stats = PlaybackStats(started=time.perf_counter(), prebuffer_seconds=self.prebuffer_seconds())
        turn = _TurnState(stats, int(stats.prebuffer_seconds * self.sample_rate))
        with self._lock:
            self._buffer = np.zeros(0, np.float32)
            self._turn = turn
        resampler = None
        produced_seconds = 0.0
        try:
            async for chunk in chunks:
                if stats.first_audio is None:
                    stats.first_audio = time.perf_counter()
                produced_seconds += chunk.seconds
                if turn.stats.stopped:
                    continue
                pcm = chunk.pcm
                if chunk.sample_rate != self.sample_rate:
                    if resampler is None:
                        import soxr
                        resampler = soxr.ResampleStream(chunk.sample_rate, self.sample_rate, 1, dtype="float32")
                    pcm = resampler.resample_chunk(pcm, last=False)
                self._append(pcm)
                self._start_if_ready()
            if resampler is not None and not turn.stats.stopped:
                self._append(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
        finally:
            with self._lock:
                turn.ended = True
                if not turn.playing and not len(self._buffer):
                    turn.done.set()
            self._start_if_ready()
            if stats.first_audio is not None and produced_seconds > 0:
                self._observe_rtf((time.perf_counter() - stats.first_audio) / produced_seconds)
        await self._wait_until_heard(turn)
        if stats.underruns and not stats.stopped and self.fixed_prebuffer is None:
            self.underrun_margin = min(MAX_PREBUFFER_SECONDS, self.underrun_margin + stats.underrun_seconds)
            logger.info("playback ran dry %d time(s) (%.0f ms of silence); the next turn prebuffers %.0f ms",
                        stats.underruns, 1000 * stats.underrun_seconds, 1000 * self.prebuffer_seconds())
        if self._failure is not None:
            logger.error("audio output failed: %s; the turn's audio was dropped", self._failure)
            self.close()
        with self._lock:
            if self._turn is turn:
                self._turn = None
        return stats

    async def _wait_until_heard(self, turn: _TurnState) -> None:
        """Wait for the device to drain the turn; a device that stops calling back counts as failed."""
        while not turn.done.is_set() and self._failure is None:
            with self._lock:
                remaining = len(self._buffer) / self.sample_rate
            try:
                await asyncio.wait_for(turn.done.wait(), timeout=remaining + DEVICE_STALL_SECONDS)
            except TimeoutError:
                with self._lock:
                    stalled = len(self._buffer) / self.sample_rate >= remaining
                if stalled:
                    self._fail("the sound device stopped taking audio")

    def _append(self, pcm: np.ndarray) -> None:
        with self._lock:
            self._buffer = np.concatenate([self._buffer, np.asarray(pcm, np.float32)])

    def _observe_rtf(self, rtf: float) -> None:
        # Time from the first chunk to the last over the audio produced: above 1 means slower than real time.
        self.measured_rtf = rtf if self.measured_rtf is None else 0.7 * self.measured_rtf + 0.3 * rtf

    def stop(self) -> None:
        """Barge-in: drop all queued audio now; the device is silent once it has played what it holds."""
        with self._lock:
            self._buffer = np.zeros(0, np.float32)
            turn = self._turn
            if turn is not None:
                turn.stats.stopped = True
                turn.stats.played_at_stop = turn.stats.played_seconds
                turn.ended = True
                turn.playing = False
        stream = self._stream
        if stream is not None and not self.keep_running:
            try:
                device_call(stream.abort, "stopping the sound output", CLOSE_TIMEOUT_S)
            except Exception:  # noqa: BLE001 - the device may be gone already, or stuck: it is silent either way
                pass
        if turn is not None:
            self._signal_done(turn)

"""What the player and the pipecat transport share about sound devices: naming, opening errors, and the one
thread every PortAudio call runs on.

A PortAudio call can block for a long time: opening, starting or aborting a
stream on ALSA's PulseAudio plugin waits for the sound server with no
deadline of its own, and a busy or stuck server makes that wait seconds or
forever. So no PortAudio call is made on an event loop or a caller's thread:
`device_call` runs it on `DeviceThread`, a daemon thread (a call stuck there
blocks neither the caller, past the deadline, nor the interpreter's exit),
one call at a time (PortAudio is not thread-safe), and past its deadline the
caller gets `DeviceTimeoutError`, one line naming the call. The stream's own
callbacks still run on PortAudio's threads.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from agent_tts.errors import DeviceTimeoutError

T = TypeVar("T")

# Audio a device holds ahead of the speaker (PortAudio's `latency`): enough to ride out a late callback on a busy
# machine. With PortAudio's "low" latency (about 30 ms on PulseAudio's ALSA plugin) the device ran dry under CPU
# load, and each time the plugin reconnects the stream: a second or two of silence in the middle of speech.
DEVICE_LATENCY_MS = 200
# Opening a stream on a loaded machine takes PulseAudio's ALSA plugin up to a few seconds; past this it is stuck.
OPEN_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 5.0


def device_choice(value: str | int | None) -> str | int | None:
    """A device as given on a command line: a number is an index, anything else (part of) a name."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


def open_error(kind: str, device: str | int | None, rate: int, reason: object) -> str:
    """One line saying which device could not be opened, why, and how to list the devices."""
    name = "the default device" if device is None else repr(device)
    return f"cannot open the sound {kind} {name} at {rate} Hz: {reason}. List devices with: python -m sounddevice"


class DeviceThread:
    """The thread that makes every PortAudio call, one at a time, so that none blocks an event loop for good."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[tuple[Callable[[], object], Future]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, function: Callable[[], T]) -> Future:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="agent-tts-portaudio", daemon=True)
                self._thread.start()
        future: Future = Future()
        self._calls.put((function, future))
        return future

    def _run(self) -> None:
        while True:
            function, future = self._calls.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(function())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                future.set_exception(exc)


DEVICE_THREAD = DeviceThread()


def _timed_out(what: str, timeout: float) -> DeviceTimeoutError:
    return DeviceTimeoutError(f"{what} did not return within {timeout:g} s (the sound server or driver is stuck); "
                              "restart it (pulseaudio -k) or pick another device")


def device_call(function: Callable[[], T], what: str, timeout: float = OPEN_TIMEOUT_S) -> T:
    """`function()` on the device thread; its result, its exception, or `DeviceTimeoutError` after `timeout`."""
    future = DEVICE_THREAD.submit(function)
    try:
        return future.result(timeout)
    except FutureTimeout:
        future.cancel()
        raise _timed_out(what, timeout) from None


async def device_call_async(function: Callable[[], T], what: str, timeout: float = OPEN_TIMEOUT_S) -> T:
    """`device_call` without blocking the event loop while PortAudio works."""
    future = DEVICE_THREAD.submit(function)
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
    except TimeoutError:
        raise _timed_out(what, timeout) from None


def abort_and_close(stream) -> None:
    """Abort and close a sounddevice stream, whatever state its device is in (run it on the device thread)."""
    if stream is None:
        return
    try:
        stream.abort()
        stream.close()
    except Exception:  # noqa: BLE001 - the device may be gone already
        pass

"""Seats for concurrent streams: a limit on how many speak at once, the rest waiting in order, or refused."""

from __future__ import annotations

import threading
from collections import deque

from agent_tts.engine.cancel import CancelFlag
from agent_tts.errors import EngineBusyError


class Admission:
    """Seats for concurrent streams: at most `max_streams` at once (None: no limit), the rest wait in order;
    beyond `max_waiting` waiting (None: no limit) a new stream is refused."""

    def __init__(self, max_streams: int | None = None, max_waiting: int | None = None) -> None:
        self.max_streams = max_streams
        self.max_waiting = max_waiting
        self.active = 0
        self._queue: deque[object] = deque()
        self._condition = threading.Condition()

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def acquire(self, cancel: CancelFlag) -> bool:
        """Take a seat (blocking, in order); False if `cancel` is set while waiting; `EngineBusyError` when full."""
        ticket = object()
        with self._condition:
            if self.max_streams is None or (self.active < self.max_streams and not self._queue):
                self.active += 1
                return True
            if self.max_waiting is not None and len(self._queue) >= self.max_waiting:
                raise EngineBusyError(f"busy: {self.active} streams active, {len(self._queue)} waiting; "
                                      "try again shortly")
            self._queue.append(ticket)
            wake = self._wake
            cancel.add_listener(wake)
            try:
                while not cancel.is_set() and not (self._queue[0] is ticket and self.active < self.max_streams):
                    self._condition.wait()
                self._queue.remove(ticket)
                if cancel.is_set():
                    self._condition.notify_all()
                    return False
                self.active += 1
                self._condition.notify_all()
                return True
            finally:
                cancel.remove_listener(wake)

    def release(self) -> None:
        with self._condition:
            self.active -= 1
            self._condition.notify_all()

    def _wake(self) -> None:
        with self._condition:
            self._condition.notify_all()

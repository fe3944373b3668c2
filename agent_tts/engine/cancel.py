"""A stream's stop request, shared by its consumer and by everything that does its work.

Work checks the flag with `try_begin(kind)` immediately before each piece it
would start (a prefill, an AR step, a SoVITS window decode). The check and
`set()` take the same lock, so once `set()` has returned no new piece of
work begins: a cancel stops a stream within the one step already running.
The flag counts the pieces begun, and those begun after it was set (always
0 for work that asks first; the count is what tests and the stress tool read).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable


class CancelFlag:
    """Set once to stop a stream; `try_begin` before each step of its work. Works like a `threading.Event`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._listeners: list[Callable[[], None]] = []
        self.begun: Counter[str] = Counter()
        self._begun_when_set: Counter[str] | None = None
        self.set_at: float | None = None  # perf_counter() when it was set

    def set(self) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self._begun_when_set = Counter(self.begun)
            self.set_at = time.perf_counter()
            self._event.set()
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)

    def try_begin(self, kind: str) -> bool:
        """True, counting one `kind` of work as begun, unless the flag is set (then the work must not start)."""
        with self._lock:
            if self._event.is_set():
                return False
            self.begun[kind] += 1
            return True

    @property
    def begun_when_set(self) -> Counter[str]:
        """The pieces of work begun before `set()` (empty while the flag is not set)."""
        return Counter(self._begun_when_set or {})

    def begun_after_set(self, kind: str) -> int:
        """Pieces of `kind` begun after `set()` returned."""
        if self._begun_when_set is None:
            return 0
        return self.begun[kind] - self._begun_when_set[kind]

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener()` (from the setting thread) when the flag is set; at once if it already is."""
        with self._lock:
            if not self._event.is_set():
                self._listeners.append(listener)
                return
        listener()

    def remove_listener(self, listener: Callable[[], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

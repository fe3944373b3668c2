"""Let the engine's threads leave native code before Python finalizes, so that exiting mid-speech exits cleanly.

The stream workers and the AR scheduler are daemon threads, so that a stuck
one never keeps a process alive. But a daemon thread that is inside torch (or
onnxruntime) with the GIL released when the interpreter finalizes is ended as
it takes the GIL back: glibc unwinds its stack by force, the unwind meets a
C++ frame that may not throw, and the whole process aborts with "terminate
called without an active exception" (exit status 134) after the program
itself had finished. Any program that exits while a stream is being
synthesized hit it, and so did one that exited a few milliseconds after a
cancel, while the scheduler finished the step it had begun.

So each such thread is registered here with the way to stop it. At exit
(an `atexit` hook, which runs before finalization, while threads can still
run) every registered stop is called, and the threads get
`EXIT_GRACE_SECONDS` together to end; a cancelled stream ends within the one
step or window it had begun.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Callable

logger = logging.getLogger(__name__)

EXIT_GRACE_SECONDS = 10.0


class ExitGuard:
    """Threads to stop, each with its way to stop it, before the interpreter finalizes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: weakref.WeakKeyDictionary[threading.Thread, Callable[[], None]] = weakref.WeakKeyDictionary()

    def register(self, thread: threading.Thread, stop: Callable[[], None]) -> None:
        """Have `stop_all` call `stop()` and wait for `thread`; a thread that has ended is dropped."""
        with self._lock:
            self._threads[thread] = stop

    def stop_all(self, grace_s: float = EXIT_GRACE_SECONDS) -> list[threading.Thread]:
        """Stop every registered thread still alive and wait up to `grace_s` for them; the ones still running."""
        with self._lock:
            registered = [(thread, stop) for thread, stop in self._threads.items() if thread.is_alive()]
        for thread, stop in registered:
            try:
                stop()
            except Exception:  # noqa: BLE001 - one failing stop must not keep the others from stopping
                logger.exception("stopping %s at exit failed", thread.name)
        deadline = time.monotonic() + grace_s
        for thread, _ in registered:
            thread.join(max(0.0, deadline - time.monotonic()))
        left = [thread for thread, _ in registered if thread.is_alive()]
        if left:
            logger.warning("%d engine thread(s) still running %.0f s after exit began: %s", len(left), grace_s,
                           ", ".join(thread.name for thread in left))
        return left


EXIT_GUARD = ExitGuard()
atexit.register(EXIT_GUARD.stop_all)


def stop_at_exit(thread: threading.Thread, stop: Callable[[], None]) -> None:
    """At interpreter exit, call `stop()` and wait (boundedly) for `thread` to end."""
    EXIT_GUARD.register(thread, stop)

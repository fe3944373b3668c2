"""What a process holds, for soak runs: resident memory, threads, open file descriptors."""

from __future__ import annotations

import gc
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from agent_tts.engine.unit_stream import STREAM_THREAD_PREFIX
from agent_tts.heap import return_freed_memory


@dataclass(frozen=True)
class Holdings:
    rss_mib: float
    threads: int
    stream_workers: int
    open_files: int


def rss_mib() -> float:
    """Resident memory now (Linux /proc), MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def stream_workers() -> list[threading.Thread]:
    """Per-stream worker threads alive now (the shared scheduler and PortAudio threads are not ones)."""
    return [thread for thread in threading.enumerate()
            if thread.name.startswith(STREAM_THREAD_PREFIX)]


def holdings(settle: bool = False) -> Holdings:
    """What the process holds now. `settle`: first collect garbage and hand the heap's free pages back, so that the
    resident memory is what is live (without it, the same soak's growth moved between -7 and +23 MiB from run to
    run as glibc kept more or fewer free pages)."""
    if settle:
        gc.collect()
        return_freed_memory()
    try:
        files = len(os.listdir("/proc/self/fd"))
    except OSError:
        files = -1
    return Holdings(rss_mib(), threading.active_count(), len(stream_workers()), files)

"""What a process holds, for soak runs: resident memory, threads, open file descriptors."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from agent_tts.engine.unit_stream import STREAM_THREAD_PREFIX


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


def holdings() -> Holdings:
    try:
        files = len(os.listdir("/proc/self/fd"))
    except OSError:
        files = -1
    return Holdings(rss_mib(), threading.active_count(), len(stream_workers()), files)

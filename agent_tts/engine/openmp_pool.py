"""Give back the calling thread's idle OpenMP workers, so that the thread computing next runs at full speed.

Torch's Linux CPU wheels run their parallel ops on GNU OpenMP (libgomp).
Every thread that runs such an op gets its own pool of worker threads, kept
after the op ends. Once the process holds more of these threads than there
are CPUs, libgomp stops letting idle workers spin between parallel regions
and puts them to sleep at once, in every pool; each of the few hundred small
parallel regions of an AR step then pays a wake-up. Measured on a 2-core
machine: one real-size AR step took 32 ms on the scheduler's thread while
the thread that had prepared the request kept its idle pool, and 20 ms once
that pool was given back (docs/engine.md, "Threads and OpenMP").

`release_idle_workers()` frees the calling thread's pool with
``omp_pause_resource_all(omp_pause_soft)`` (OpenMP 5.0; libgomp pauses only
the caller's pool). That thread's next parallel op makes a new pool, which
costs microseconds per worker. Threads call it when they hand their work to
another thread and wait: after loading a voice, when submitting a unit to
the AR scheduler, whenever a stream's worker waits for its tokens and
whenever the scheduler has nothing to step. Where
torch does not use libgomp (other OpenMP runtimes, other systems) it does
nothing.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

OMP_PAUSE_SOFT = 1


@functools.cache
def _pause_function() -> Callable[[int], int] | None:
    """``omp_pause_resource_all`` of the libgomp torch has loaded, or None."""
    if not sys.platform.startswith("linux"):
        return None
    import torch  # noqa: F401 - loads its libgomp, which is what we look for

    try:
        mapped = {line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines()
                  if "libgomp" in line.rsplit("/", 1)[-1]}
    except OSError:
        return None
    torch_lib = Path(sys.modules["torch"].__file__).parent / "lib"
    for path in sorted(mapped, key=lambda candidate: not candidate.startswith(str(torch_lib))):
        try:
            function = ctypes.CDLL(path).omp_pause_resource_all
        except (OSError, AttributeError):
            continue
        function.argtypes = [ctypes.c_int]
        function.restype = ctypes.c_int
        logger.debug("releasing idle OpenMP workers with %s", path)
        return function
    return None


def release_idle_workers() -> None:
    """Free the OpenMP worker pool of the calling thread (it must not be inside a parallel op; from Python it
    never is). Does nothing where torch does not run on libgomp."""
    pause = _pause_function()
    if pause is not None:
        pause(OMP_PAUSE_SOFT)

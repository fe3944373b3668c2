"""Hand the C heap's free pages back to the system, so that resident memory shows what is live."""

from __future__ import annotations

import ctypes


def return_freed_memory() -> None:
    """glibc's ``malloc_trim(0)``: freed heap pages go back to the system (glibc keeps them otherwise, and how many
    it keeps moves by tens of MiB with the order of allocations); nothing where the C library is not glibc."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass

"""Standard input as an async stream of lines, read off the event loop so typing or piping never blocks it."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator


async def stdin_lines() -> AsyncIterator[str]:
    """Each line of standard input as it arrives (with its newline), until end of input."""
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        yield line

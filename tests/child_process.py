"""Run a test's child process so that a hang shows where it was: every thread's stack, then the test fails.

`run_child` is `subprocess.run(..., capture_output=True, text=True)` with a
deadline. The child runs with Python's fault handler on (`PYTHONFAULTHANDLER`),
so when the deadline passes it is sent SIGABRT, writes the Python stack of
every thread to its stderr and dies; the test then fails with that dump (the
end of the child's stderr) instead of a bare timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

STACK_DUMP_CHARS = 12_000


def run_child(command: Sequence[str], *, timeout: float, env: dict[str, str] | None = None,
              input: str | None = None, cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    """The finished child (returncode, stdout, stderr as text); a test failure with its thread stacks if it hangs."""
    env = {**(os.environ if env is None else env), "PYTHONFAULTHANDLER": "1"}
    process = subprocess.Popen(list(command), env=env, cwd=cwd, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, stdin=subprocess.PIPE if input is not None else None)
    try:
        stdout, stderr = process.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        try:
            stdout, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
        pytest.fail(f"{' '.join(map(str, command))} did not finish in {timeout:g} s; the end of its stderr, with "
                    f"every thread's stack:\n{(stderr or '')[-STACK_DUMP_CHARS:]}", pytrace=False)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)

"""A process that exits while a stream is being synthesized exits cleanly (exit_guard.py).

Before the guard, the interpreter's finalization ended the stream worker and the AR scheduler (daemon threads)
inside torch, and the process aborted with "terminate called without an active exception" (status 134) after
the program had finished: every run of the child below did.
"""

from __future__ import annotations

import sys
import textwrap
import threading

import pytest

from agent_tts.engine.exit_guard import ExitGuard
from child_process import run_child
from engine_support import write_fixture_voice

EXIT_MID_STREAM = textwrap.dedent("""
    import asyncio, sys, threading
    from agent_tts.engine.synthesizer import Synthesizer
    from agent_tts.voice import Voice

    engine = Synthesizer(Voice.load(sys.argv[1], "cpu"), batching=sys.argv[2] == "batched")
    speaking = threading.Event()

    async def speak():
        async for _ in engine.stream("Your order shipped on Monday, and it should arrive by Friday. " * 4):
            speaking.set()

    threading.Thread(target=lambda: asyncio.run(speak()), daemon=True).start()
    assert speaking.wait(120), "no audio came"
    print("exiting mid-stream", flush=True)
""")


@pytest.mark.parametrize("mode", ["batched", "threads"])
def test_exiting_mid_stream_exits_cleanly(gsv_v2_fixture, tmp_path, mode):
    voice = write_fixture_voice(gsv_v2_fixture, tmp_path)
    completed = run_child([sys.executable, "-c", EXIT_MID_STREAM, str(voice), mode], timeout=300)
    assert completed.stdout.strip() == "exiting mid-stream", completed.stderr[-3000:]
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "terminate called" not in completed.stderr


def test_stop_all_stops_and_waits_and_names_a_thread_that_does_not_stop():
    guard = ExitGuard()
    stopped = threading.Event()
    obedient = threading.Thread(target=stopped.wait, name="obedient", daemon=True)
    release = threading.Event()
    stuck = threading.Thread(target=release.wait, name="stuck", daemon=True)
    for thread, stop in ((obedient, stopped.set), (stuck, lambda: None)):
        guard.register(thread, stop)
        thread.start()
    try:
        left = guard.stop_all(grace_s=0.5)
        assert not obedient.is_alive()
        assert left == [stuck]
    finally:
        release.set()
        stuck.join()
    assert guard.stop_all(grace_s=0.5) == []  # ended threads are not waited for again

"""`release_idle_workers` frees the calling thread's OpenMP pool, and only that thread's."""

from __future__ import annotations

import os
import threading

import pytest
import torch

from agent_tts.engine.openmp_pool import _pause_function, release_idle_workers

pytestmark = pytest.mark.skipif(_pause_function() is None or torch.get_num_threads() < 2,
                                reason="needs torch on libgomp with at least 2 threads")


def os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def parallel_op() -> None:
    torch.randn(4_000_000).exp_().sum()  # big enough for torch to use every intra-op thread


def test_release_frees_the_calling_threads_idle_workers() -> None:
    parallel_op()
    with_pool = os_threads()
    release_idle_workers()
    assert os_threads() == with_pool - (torch.get_num_threads() - 1)
    parallel_op()  # the next parallel op makes a new pool
    assert os_threads() == with_pool
    release_idle_workers()
    release_idle_workers()  # with no pool, nothing to do
    assert os_threads() == with_pool - (torch.get_num_threads() - 1)


def test_release_leaves_other_threads_pools_alone() -> None:
    parallel_op()
    ready, done = threading.Event(), threading.Event()

    def other() -> None:
        parallel_op()
        ready.set()
        done.wait(30)

    thread = threading.Thread(target=other)
    thread.start()
    try:
        assert ready.wait(30)
        before = os_threads()
        release_idle_workers()  # the main thread's pool only
        assert os_threads() == before - (torch.get_num_threads() - 1)
    finally:
        done.set()
        thread.join()


def test_the_scheduler_gives_back_its_workers_when_it_has_nothing_to_step(tmp_path, monkeypatch) -> None:
    from agent_tts.engine import scheduler as scheduler_module
    from agent_tts.engine.ar_batch import ARRequest, DecodeOptions
    from engine_support import tiny_gpt

    released_on: list[str] = []

    def recording_release() -> None:
        released_on.append(threading.current_thread().name)
        release_idle_workers()

    monkeypatch.setattr(scheduler_module, "release_idle_workers", recording_release)
    scheduler = scheduler_module.ARScheduler(tiny_gpt(tmp_path))
    request = ARRequest(torch.randint(0, 300, (12,)), torch.randn(1024, 12), torch.randint(0, 1000, (8,)),
                        DecodeOptions(max_tokens=40, suppress_eos=True))
    unit = scheduler.submit(request, max_ahead=3)  # nobody reads: the scheduler is idle once 3 tokens wait
    with scheduler.condition:
        assert scheduler.condition.wait_for(
            lambda: len(unit.buffer) == 3 and "agent-tts-scheduler" in released_on, timeout=60)
    tokens = list(unit.tokens())
    assert len(tokens) == 40  # it went on stepping once the tokens were taken

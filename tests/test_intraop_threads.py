"""The scheduler's choice of thread count: the policy on given step times, then wired into a real scheduler."""

from __future__ import annotations

import threading

import pytest
import torch

from agent_tts.engine.ar_batch import DecodeOptions
from agent_tts.engine.intraop_threads import FIRST_INTERVAL, FIRST_TRIAL, MAX_INTERVAL, IntraOpThreads
from agent_tts.engine.sampling import SamplingOptions
from agent_tts.engine.scheduler import ARScheduler
from agent_tts.engine.synthesizer import unit_request
from agent_tts.engine.t2s_decoding import generate_semantic_tokens
from agent_tts.voice import Voice
from engine_support import write_fixture_voice


def _run(threads: IntraOpThreads, steps: int, seconds_on, rows: int = 1) -> list[int]:
    """Feed `steps` steps whose time on n threads is `seconds_on(n)`; the thread count of each step."""
    used = []
    for _ in range(steps):
        count = threads.for_next_step()
        threads.step_took(seconds_on(count), rows, count)
        used.append(count)
    return used


SHARED = {2: 0.200, 1: 0.021}.get  # beside a busy process: a step on two threads spins through time slices
FREE = {2: 0.014, 1: 0.021}.get


def test_a_shared_cpu_moves_the_steps_to_one_thread_soon_and_a_free_one_back():
    threads = IntraOpThreads(full=2)
    used = _run(threads, FIRST_TRIAL + 3, SHARED)
    assert threads.current == 1 and threads.switches == [(2, 1)]
    assert used == [2] * FIRST_TRIAL + [1, 1, 1]
    _run(threads, 2 * FIRST_INTERVAL, SHARED)  # a trial of two threads loses after its first step
    assert threads.current == 1 and threads.interval == 2 * FIRST_INTERVAL
    _run(threads, 2 * FIRST_INTERVAL + 3, FREE)  # the next trial comes within the doubled interval, and wins
    assert threads.current == 2 and threads.switches == [(2, 1), (1, 2)]


def test_a_settled_choice_is_tried_ever_more_rarely():
    threads = IntraOpThreads(full=2)
    used = _run(threads, 20_000, FREE)
    assert threads.current == 2 and threads.switches == []
    assert threads.interval == MAX_INTERVAL and threads.trials > 10
    assert used.count(1) == 3 * threads.trials and used.count(1) < 0.005 * len(used)


def test_a_trial_over_a_changed_batch_decides_nothing():
    threads = IntraOpThreads(full=2)
    _run(threads, FIRST_TRIAL, SHARED, rows=1)
    # The trial's steps have four rows, the steps before it one: one step on one thread, compared with nothing,
    # then the count it had (compared with the one-row steps, these three would have switched it).
    assert _run(threads, 3, SHARED, rows=4) == [1, 2, 2]
    assert threads.current == 2 and threads.trials == 0


@pytest.mark.parametrize("threads", [IntraOpThreads(full=2, enabled=False), IntraOpThreads(full=1)])
def test_disabled_or_single_threaded_it_never_tries(threads):
    assert _run(threads, 3 * FIRST_TRIAL, SHARED) == [threads.full] * (3 * FIRST_TRIAL)
    assert not threads.enabled and threads.switches == []


def test_the_scheduler_steps_on_both_counts_and_the_tokens_are_as_alone(gsv_v2_fixture, tmp_path):
    voice = Voice.load(write_fixture_voice(gsv_v2_fixture, tmp_path))
    options = DecodeOptions(SamplingOptions(top_k=1), max_tokens=40, min_tokens=1)
    request = unit_request(voice, voice.frontend("您好，您的订单已经发货了。", "auto"), options, None)
    alone = list(generate_semantic_tokens(voice.gpt, request.phone_ids[None], request.bert[None],
                                          request.prompt[None], options))
    original = torch.get_num_threads()
    threads = IntraOpThreads(full=2, first_trial=2, first_interval=2, max_interval=2)  # a trial every other step
    scheduler = ARScheduler(voice.gpt, threads=threads)
    try:
        unit = scheduler.submit(request, max_ahead=2000)
        assert list(unit.tokens()) == alone
        assert set(scheduler.step_threads) == {1, 2} and scheduler.threads is threads
        threads.current = 1  # as after a switch: a stream's decode runs on the chosen count, in its own thread
        seen = []

        def decode() -> None:
            torch.set_num_threads(2)
            with unit.decoding():
                seen.append(torch.get_num_threads())

        worker = threading.Thread(target=decode)
        worker.start()
        worker.join()
        assert seen == [1]
        unit.close()
    finally:
        torch.set_num_threads(original)  # also the count threads made from now on start with

"""The streaming engine on the fixture voice (tiny random-weight models in the official formats)."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from dataclasses import replace

import numpy as np
import pytest

from agent_tts.engine.chunked_decoder import ChunkPlan
from agent_tts.engine.guards import is_looping, max_tokens_for
from agent_tts.engine.synthesizer import SynthesisOptions, Synthesizer, whole_utterance
from agent_tts.engine.unit_stream import Lookahead
from agent_tts.errors import AgentTTSError
from agent_tts.parity import snr_db
from agent_tts.stress.resources import stream_workers
from agent_tts.text.segmenter import segment_text
from agent_tts.voice import Voice
from engine_support import write_fixture_voice

TEXT = "你好，欢迎来到我们的客服中心。今天天气很好，我们一起去公园散步吧！"


@pytest.fixture(scope="module")
def voice(gsv_v2_fixture, tmp_path_factory) -> Voice:
    return Voice.load(write_fixture_voice(gsv_v2_fixture, tmp_path_factory.mktemp("voice")))


async def _collect(synthesizer: Synthesizer, text, **options) -> list:
    return [chunk async for chunk in synthesizer.stream(text, **options)]


def _worker_threads() -> list[threading.Thread]:
    """The streams' worker threads (the GPT's scheduler and the PortAudio thread are shared and outlive them)."""
    return stream_workers()


@pytest.mark.parametrize("noise_scale", [0.0, 0.5])
async def test_streamed_audio_matches_the_whole_utterance(voice, noise_scale):
    options = dict(seed=3, fixed_tokens=120, noise_scale=noise_scale)
    chunks = await _collect(Synthesizer(voice), TEXT, **options)
    streamed = np.concatenate([chunk.pcm for chunk in chunks])
    whole = whole_utterance(voice, TEXT, SynthesisOptions(**options))
    assert len(streamed) == len(whole) == 2 * 120 * 1280
    assert snr_db(streamed, whole) >= 30.0


def test_chunk_plan_grows_to_its_cap_and_refuses_bad_sizes():
    assert [ChunkPlan().chunk_tokens(index) for index in range(6)] == [10, 20, 40, 80, 100, 100]
    assert [ChunkPlan(first_tokens=4, growth=1.5, max_tokens=10).chunk_tokens(i) for i in range(5)] == [4, 6, 9, 10, 10]
    assert [ChunkPlan(first_tokens=25, growth=1.0, max_tokens=25).chunk_tokens(i) for i in range(3)] == [25] * 3
    with pytest.raises(ValueError, match="max_tokens"):
        ChunkPlan(first_tokens=10, max_tokens=5)
    with pytest.raises(ValueError, match="growth"):
        ChunkPlan(growth=0.5)


async def test_chunks_are_clause_first_small_then_growing(voice):
    plan = ChunkPlan(first_tokens=10, growth=2.0, max_tokens=40)
    chunks = await _collect(Synthesizer(voice), TEXT, seed=1, fixed_tokens=100, chunk_plan=plan)
    assert [chunk.unit_index for chunk in chunks] == [0, 0, 0, 0, 1, 1, 1, 1]
    # 10, 20, then 40 (the cap); the last chunk is the rest: 30 tokens, with the held-back ones.
    assert [len(chunk.pcm) // 1280 for chunk in chunks] == [10, 20, 40, 30] * 2
    assert [chunk.last for chunk in chunks] == [False, False, False, True] * 2
    assert [chunk.unit_text for chunk in chunks if chunk.first] == segment_text(TEXT)
    assert all(chunk.sample_rate == 32000 and chunk.pcm.dtype == np.float32 for chunk in chunks)
    timings = chunks[0].timings
    assert timings.produced > timings.unit_ready and timings.tokens == 13 and timings.ar_ms_per_token > 0


def _own_voice(gsv_v2_fixture, folder, monkeypatch, tuning: str, **options) -> Voice:
    """A voice over a copy of the fixture's GPT file: a GPT and scheduler of its own, made with thread tuning
    `tuning` (voices of one GPT file share both; intraop_threads.py)."""
    monkeypatch.setenv("AGENT_TTS_THREAD_TUNING", tuning)
    gpt = shutil.copy(gsv_v2_fixture / "models" / "s1.ckpt", folder / "s1.ckpt")
    return Voice.load(write_fixture_voice(gsv_v2_fixture, folder, gpt=gpt), **options)


async def _audio(synthesizer: Synthesizer, text: str = TEXT, **options) -> np.ndarray:
    return np.concatenate([chunk.pcm for chunk in await _collect(synthesizer, text, **options)])


async def test_same_seed_same_audio_other_seed_other_audio(gsv_v2_fixture, tmp_path, monkeypatch):
    # Bit for bit while the thread count stays: with tuning on, a busy machine may switch it between the runs.
    synthesizer = Synthesizer(_own_voice(gsv_v2_fixture, tmp_path, monkeypatch, "off"))
    first = await _audio(synthesizer, seed=7, top_k=15)
    again = await _audio(synthesizer, seed=7, top_k=15)
    other = await _audio(synthesizer, seed=8, top_k=15)
    assert np.array_equal(first, again)
    assert len(first) != len(other) or not np.array_equal(first, other)


async def test_a_thread_switch_between_runs_of_one_seed_changes_only_rounding(gsv_v2_fixture, tmp_path, monkeypatch):
    synthesizer = Synthesizer(_own_voice(gsv_v2_fixture, tmp_path, monkeypatch, "on"))
    threads = synthesizer.scheduler.threads
    if not threads.enabled:
        pytest.skip("torch has one thread here: there is no other count to switch to")
    first = await _audio(synthesizer, seed=7, top_k=15)
    threads.current = switched_to = threads.other  # what a trial that won does
    steps_before = len(synthesizer.scheduler.step_threads)
    again = await _audio(synthesizer, seed=7, top_k=15)
    assert switched_to in list(synthesizer.scheduler.step_threads)[steps_before:]
    assert len(again) == len(first) and snr_db(again, first) >= 80.0  # one thread against two measured 134 dB


async def test_closing_the_stream_stops_within_one_step_and_next_request_runs(voice):
    synthesizer = Synthesizer(voice)
    stream = synthesizer.stream(TEXT * 5, seed=1, fixed_tokens=400)
    first = await stream.__anext__()
    assert first.first and first.unit_index == 0
    await stream.aclose()
    assert synthesizer.steps_after_cancel == 0 and synthesizer.decodes_after_cancel == 0
    assert not _worker_threads()
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()
    follow_up = synthesizer.stream("再见。", seed=1, fixed_tokens=20)
    chunk = await follow_up.__anext__()
    assert chunk.unit_text == "再见。" and chunk.first
    await follow_up.aclose()


async def test_cancelling_the_consumer_task_stops_the_worker(voice):
    synthesizer = Synthesizer(voice)
    received = []

    async def consume() -> None:
        async for chunk in synthesizer.stream(TEXT * 5, seed=1, fixed_tokens=400):
            received.append(chunk)

    task = asyncio.create_task(consume())
    while not received:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    count = len(received)
    await asyncio.sleep(0.2)
    assert len(received) == count and not _worker_threads()
    assert synthesizer.steps_after_cancel == 0 and synthesizer.decodes_after_cancel == 0


async def test_llm_deltas_stream_in_and_units_follow_the_segmenter(voice):
    async def llm():
        for piece in ["你好，", "欢迎来到", "我们的客服", "中心。今天天气", "很好，我们一起去", "公园散步吧！"]:
            await asyncio.sleep(0.01)
            yield piece

    chunks = await _collect(Synthesizer(voice), llm(), seed=2, fixed_tokens=20)
    assert [chunk.unit_text for chunk in chunks if chunk.first] == segment_text(TEXT)


async def test_nothing_speakable_gives_no_audio_and_short_units_are_joined(voice):
    assert await _collect(Synthesizer(voice), "😀😀 ……", seed=1) == []
    chunks = await _collect(Synthesizer(voice), "好。我们一起去公园散步吧！", seed=1, fixed_tokens=20)
    assert {chunk.unit_index for chunk in chunks} == {0}
    assert chunks[0].unit_text == "好。我们一起去公园散步吧！"


async def test_token_budget_bounds_a_unit(voice):
    chunks = await _collect(Synthesizer(voice), "你好。", seed=1, max_tokens_per_phone=3.0, top_k=50)
    phones = len(voice.frontend("你好。", "auto").phones)
    assert sum(len(chunk.pcm) for chunk in chunks) <= max(12, 3 * phones) * 1280


def test_guards():
    assert max_tokens_for(10, 8.0, 1500, 12) == 80
    assert max_tokens_for(1, 8.0, 1500, 12) == 12
    assert max_tokens_for(1000, 8.0, 1500, 12) == 1500
    assert is_looping([5] * 10) and is_looping([1, 2, 3, 4] * 10)
    assert not is_looping([1, 2, 3, 4] * 9) and not is_looping(list(range(50)))


def test_bad_options_are_refused(voice):
    with pytest.raises(ValueError, match="speed"):
        SynthesisOptions(speed=10)
    with pytest.raises(AgentTTSError, match="unknown synthesis option"):
        Synthesizer(voice).synthesize("你好", sped=1.0)


async def test_a_real_time_consumer_never_waits_and_the_lookahead_follows_the_speed(voice):
    """Played at real-time pace, every chunk (units after the first included) is ready before it is due, while the
    worker keeps only about the adaptive bound of audio ahead instead of racing to the end.

    The bound tightens, and "never waits" holds, only when the worker computes well faster than real time; on a
    machine too busy for that (compute RTF above 0.5 in this run) those figures are printed instead of asserted,
    and only the bound on the audio ahead is checked."""
    synthesizer = Synthesizer(voice)
    play_clock = None
    late = []
    taken = []  # (when taken, seconds, when produced, bound after it)
    compute_s = 0.0  # the worker's own computing time, waits for the consumer excluded
    async for chunk in synthesizer.stream(TEXT + "还有其他问题的话，随时联系我们的客服。" * 2, seed=4,
                                          fixed_tokens_per_phone=3.0):
        now = asyncio.get_running_loop().time()
        timings = chunk.timings
        compute_s += timings.decode_ms / 1000
        if chunk.last:
            compute_s += (timings.frontend_s + timings.bert_s + timings.prefill_s
                          + timings.tokens * timings.ar_ms_per_token / 1000)
        taken.append((time.perf_counter(), chunk.seconds, chunk.timings.produced, chunk.timings.lookahead_s))
        if play_clock is None:
            play_clock = now
        elif now > play_clock + 0.02:
            late.append((chunk.unit_index, now - play_clock))
        play_clock = max(play_clock, now) + chunk.seconds
        await asyncio.sleep(max(0.0, play_clock - asyncio.get_running_loop().time() - chunk.seconds / 2))
    compute_rtf = compute_s / sum(entry[1] for entry in taken)
    settled = taken[-1][3]
    print(f"compute RTF {compute_rtf:.2f}; lookahead bound {settled:.2f} s; chunks late for a real-time consumer: "
          f"{late}")
    quiet = compute_rtf <= 0.5
    if quiet:
        assert not late
        assert Lookahead.MIN_SECONDS <= settled < synthesizer.options.max_buffered_seconds
    longest = max(entry[1] for entry in taken)
    ahead = []  # audio produced but not yet taken right after each chunk was produced, and the bound before it
    for index, (_, _, produced, _) in enumerate(taken):
        taken_before = sum(entry[1] for entry in taken if entry[0] < produced)
        bound_before = taken[index - 1][3] if index else synthesizer.options.max_buffered_seconds
        ahead.append((sum(entry[1] for entry in taken[:index + 1]) - taken_before, bound_before))
    # The worker produces while at most the bound is ahead: one chunk past it, one more at a unit's start.
    assert all(audio <= bound + 2 * longest + 0.05 for audio, bound in ahead)
    if quiet:
        assert sum(entry[1] for entry in taken) > max(audio for audio, _ in ahead) + 3  # it did not race to the end


def test_the_lookahead_bound_follows_the_measured_speed():
    fast = Lookahead(10.0, threading.Event())
    assert fast.bound == 10.0  # nothing measured yet
    fast.measured(0.4, 0.04, unit_start=True)
    fast.measured(1.0, 0.03, unit_start=False)
    assert fast.bound == Lookahead.MIN_SECONDS  # 2 x (0.04 + 1.0 x 0.079) is below the floor
    steady = Lookahead(10.0, threading.Event())
    steady.measured(0.4, 0.2, unit_start=True)
    steady.measured(1.0, 0.5, unit_start=False)
    assert steady.bound == pytest.approx(2 * (0.2 + 1.0 * (0.7 * 0.5 + 0.3 * 0.5)))
    slow = Lookahead(10.0, threading.Event())
    slow.measured(0.4, 1.1, unit_start=True)
    slow.measured(1.0, 1.6, unit_start=False)
    assert slow.bound == 10.0  # RTF > 1: the cap, the worker never pauses


async def test_a_failing_text_source_ends_the_stream_with_its_error(voice):
    async def broken_llm():
        yield "你好，"
        raise ConnectionError("LLM connection reset")

    with pytest.raises(AgentTTSError, match="text source failed: ConnectionError: LLM connection reset") as caught:
        await _collect(Synthesizer(voice), broken_llm(), seed=1, fixed_tokens=20)
    assert isinstance(caught.value.__cause__, ConnectionError)
    assert not _worker_threads()


async def test_a_failure_inside_synthesis_reaches_the_consumer_with_its_cause(voice):
    class BrokenDecoder:
        config = voice.sovits.config

        def decode(self, *args, **kwargs):
            raise RuntimeError("out of memory in the decoder")

    broken = Synthesizer(replace(voice, sovits=BrokenDecoder()))
    with pytest.raises(AgentTTSError, match="synthesis failed: RuntimeError: out of memory") as caught:
        await _collect(broken, TEXT, seed=1, fixed_tokens=30)
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert not _worker_threads()


@pytest.mark.parametrize("precision", ["int8", "bf16"])
async def test_reduced_precision_voices_speak_the_same_way_twice(gsv_v2_fixture, tmp_path, monkeypatch, precision):
    reduced = _own_voice(gsv_v2_fixture, tmp_path, monkeypatch, "off", precision=precision)
    from agent_tts.models.quantization import Int8WeightLinear

    assert isinstance(reduced.gpt.ar_predict_layer, Int8WeightLinear) == (precision == "int8")
    assert reduced.precision.name == precision
    options = dict(seed=5, fixed_tokens=60)
    first = await _audio(Synthesizer(reduced), "你好，欢迎光临。", **options)
    again = await _audio(Synthesizer(reduced), "你好，欢迎光临。", **options)
    assert first.dtype == np.float32 and np.array_equal(first, again) and np.abs(first).max() > 0
    with pytest.raises(AgentTTSError, match="precision"):
        Voice.load(write_fixture_voice(gsv_v2_fixture, tmp_path, "other"), precision="fp8")

"""Many conversations on one engine: concurrent streams share one batched AR step without hearing each other.

On the fixture voice (tiny random-weight models in the official formats) and a second voice made from the same
GPT file with another reference clip, so both voices' streams share one scheduler and one batch.
"""

from __future__ import annotations

import asyncio
import gc
import shutil
import threading
import time
import weakref

import numpy as np
import pytest
import soundfile
import torch

from agent_tts.engine.ar_batch import DecodeOptions
from agent_tts.engine.sampling import SamplingOptions
from agent_tts.engine.scheduler import ARScheduler, scheduler_for
from agent_tts.engine.synthesizer import Synthesizer, unit_request
from agent_tts.engine.t2s_decoding import generate_semantic_tokens
from agent_tts.errors import EngineBusyError
from agent_tts.parity import snr_db
from agent_tts.voice import Voice
from engine_support import write_fixture_voice

TEXTS = ["Your order shipped on Monday.", "您好，您的订单已经发货了。", "The refund takes three days.",
         "请问还有什么可以帮您？", "Thanks for calling, goodbye.", "我们明天早上八点见面。",
         "Please hold while I check.", "今天天气很好，我们去公园吧！"]
GREEDY = dict(top_k=1, fixed_tokens_per_phone=2.0)


@pytest.fixture(scope="module")
def voices(gsv_v2_fixture, tmp_path_factory) -> list[Voice]:
    folder = tmp_path_factory.mktemp("voices")
    clip, rate = soundfile.read(gsv_v2_fixture / "ref" / "ref.wav", dtype="float32")
    soundfile.write(folder / "reversed.wav", clip[::-1].copy(), rate)  # another speaker, as far as the model knows
    second = write_fixture_voice(gsv_v2_fixture, folder, name="second")
    second.write_text(second.read_text().replace(str(gsv_v2_fixture / "ref" / "ref.wav"), str(folder / "reversed.wav")))
    return [Voice.load(write_fixture_voice(gsv_v2_fixture, folder)), Voice.load(second)]


async def _speak(synthesizer: Synthesizer, text: str, **options) -> tuple[list[int], np.ndarray]:
    tokens, pcm = [], []
    async for chunk in synthesizer.stream(text, **options):
        tokens += chunk.semantic_tokens
        pcm.append(chunk.pcm)
    return tokens, np.concatenate(pcm)


def test_voices_of_one_gpt_file_share_the_model_and_its_scheduler(voices):
    first, second = voices
    assert first.gpt is second.gpt and not np.array_equal(first.ge.numpy(), second.ge.numpy())
    assert Synthesizer(first).scheduler is Synthesizer(second).scheduler is scheduler_for(first.gpt)


async def test_a_gpt_no_voice_holds_goes_with_its_scheduler(gsv_v2_fixture, tmp_path):
    # A process that drops a voice (a server replacing its weights, say) must get its GPT's memory back.
    gpt_file = shutil.copy(gsv_v2_fixture / "models" / "s1.ckpt", tmp_path / "s1.ckpt")
    voice = Voice.load(write_fixture_voice(gsv_v2_fixture, tmp_path, gpt=gpt_file))
    synthesizer = Synthesizer(voice)
    await _speak(synthesizer, TEXTS[0], seed=1, fixed_tokens=20)
    thread, gpt = synthesizer.scheduler._thread, weakref.ref(voice.gpt)
    del voice, synthesizer
    if thread is not None:
        thread.join(timeout=30)  # the scheduler's thread ends after IDLE_EXIT_SECONDS with nothing to do
        assert not thread.is_alive()
    del thread  # the exit guard keeps its stop call, and so the scheduler, while the thread object lives
    gc.collect()
    assert gpt() is None


async def test_eight_concurrent_streams_of_two_voices_each_sound_as_alone(voices):
    streams = [(voices[index % 2], text, dict(GREEDY, seed=10 + index)) for index, text in enumerate(TEXTS)]
    alone = [await _speak(Synthesizer(voice), text, **options) for voice, text, options in streams]
    scheduler = scheduler_for(voices[0].gpt)
    scheduler.batch_sizes.clear()
    together = await asyncio.gather(*(_speak(Synthesizer(voice), text, **options) for voice, text, options in streams))
    assert max(scheduler.batch_sizes) >= 4  # the streams really shared steps
    for (solo_tokens, solo_pcm), (tokens, pcm) in zip(alone, together):
        assert tokens == solo_tokens and len(tokens) > 20
        assert len(pcm) == len(solo_pcm) and snr_db(pcm, solo_pcm) >= 40


async def test_sampled_streams_with_seeds_are_the_same_in_a_batch(voices):
    options = [dict(seed=seed, top_k=20, temperature=1.2, fixed_tokens_per_phone=2.0) for seed in (1, 2, 3)]
    alone = [await _speak(Synthesizer(voices[0]), TEXTS[0], **o) for o in options]
    together = await asyncio.gather(*(_speak(Synthesizer(voices[0]), TEXTS[0], **o) for o in options))
    assert [tokens for tokens, _ in together] == [tokens for tokens, _ in alone]
    assert alone[0][0] != alone[1][0]  # the seeds matter


async def test_a_stream_cancelled_mid_batch_leaves_the_others_and_a_newcomer_is_as_alone(voices):
    voice = voices[0]
    long_text = "This answer is long enough to be interrupted after its first chunk of audio arrives."
    alone = [await _speak(Synthesizer(voice), text, **GREEDY, seed=5) for text in TEXTS[:3]]
    synthesizer = Synthesizer(voice)
    cut = synthesizer.stream(long_text, **GREEDY, seed=9)
    keep = [asyncio.create_task(_speak(Synthesizer(voice), text, **GREEDY, seed=5)) for text in TEXTS[:2]]
    await cut.__anext__()
    newcomer = asyncio.create_task(_speak(Synthesizer(voice), TEXTS[2], **GREEDY, seed=5))  # joins a running batch
    await cut.aclose()
    results = await asyncio.gather(*keep, newcomer)
    assert [tokens for tokens, _ in results] == [tokens for tokens, _ in alone]
    assert synthesizer.steps_after_cancel == 0 and synthesizer.decodes_after_cancel == 0


async def test_streams_beyond_the_limit_wait_in_order_and_a_full_queue_is_a_clear_error(voices):
    voice = voices[0]
    synthesizer = Synthesizer(voice, max_streams=1, max_waiting=1)
    try:
        order: list[str] = []

        async def speak(name: str, text: str) -> None:
            async for chunk in synthesizer.stream(text, **GREEDY, seed=1):
                if chunk.first and chunk.unit_index == 0:
                    order.append(name)

        first = asyncio.create_task(speak("first", TEXTS[0]))
        while not order:
            await asyncio.sleep(0.01)
        second = asyncio.create_task(speak("second", TEXTS[1]))  # waits for the seat
        while synthesizer.admission.waiting == 0:
            await asyncio.sleep(0.01)
        with pytest.raises(EngineBusyError, match="^busy: 1 streams active, 1 waiting"):
            await speak("third", TEXTS[2])
        await asyncio.gather(first, second)
        assert order == ["first", "second"]
    finally:
        synthesizer.admission.max_streams = synthesizer.admission.max_waiting = None  # shared by the module's voices


def _wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_a_lone_unit_waits_while_its_worker_decodes_and_steps_beside_another(voices):
    voice = voices[0]
    scheduler = ARScheduler(voice.gpt)  # its own: the module's shared scheduler is left alone
    phonemes = voice.frontend(TEXTS[0], "auto")

    def submit(seed: int):
        request = unit_request(voice, phonemes, DecodeOptions(max_tokens=1400, suppress_eos=True),
                               torch.Generator().manual_seed(seed))
        unit = scheduler.submit(request, max_ahead=2000)  # no backpressure: only the hold can stop its steps
        next(unit.tokens())
        return unit

    lone = submit(1)
    try:
        with lone.decoding():
            time.sleep(0.2)  # a step in flight when the hold began ends meanwhile
            held_at = lone.row.steps
            time.sleep(0.3)
            assert lone.row.steps == held_at and not lone.done
            other = submit(2)  # with another unit in the batch, the step runs for both
            _wait_until(lambda: lone.row.steps >= held_at + 5)
        other.close()
        _wait_until(lambda: other.done)
        stepped = lone.row.steps
        _wait_until(lambda: lone.row.steps > stepped + 5)  # alone again, not holding: stepped
    finally:
        lone.close()
        _wait_until(lambda: lone.done)


@pytest.mark.parametrize("prefill_positions", [4096, 1])
def test_newcomers_waiting_together_are_prefilled_in_one_pass_and_decode_as_alone(voices, prefill_positions):
    voice = voices[0]
    options = DecodeOptions(SamplingOptions(top_k=1), max_tokens=30, min_tokens=1)
    requests = [unit_request(voice, voice.frontend(text, "auto"), options, torch.Generator().manual_seed(seed))
                for seed, text in enumerate(TEXTS[:4])]
    assert len({request.phone_ids.shape[0] for request in requests}) > 1  # rows of different lengths
    alone = [list(generate_semantic_tokens(voice.gpt, request.phone_ids[None], request.bert[None],
                                           request.prompt[None], options)) for request in requests]
    scheduler = ARScheduler(voice.gpt, prefill_positions=prefill_positions)
    with scheduler.condition:  # the scheduler's thread takes newcomers under this lock: all four wait together
        units = [scheduler.submit(request, max_ahead=2000) for request in requests]
    assert [list(unit.tokens()) for unit in units] == alone
    # Over the budget of positions, one newcomer per pass.
    assert list(scheduler.prefill_sizes) == ([4] if prefill_positions > 1 else [1, 1, 1, 1])
    for unit in units:
        unit.close()


def test_a_lone_units_decode_begins_after_the_step_in_flight(voices):
    voice = voices[0]
    scheduler = ARScheduler(voice.gpt)
    model_step = scheduler.decoder.runner
    step_began = threading.Event()

    def slow_step(*args, **kwargs):  # the model's own step, after a pause long enough to be caught in flight
        step_began.set()
        time.sleep(0.05)
        return model_step(*args, **kwargs)

    scheduler.decoder.runner = slow_step
    request = unit_request(voice, voice.frontend(TEXTS[0], "auto"), DecodeOptions(max_tokens=1400, suppress_eos=True),
                           torch.Generator().manual_seed(1))
    unit = scheduler.submit(request, max_ahead=2000)
    try:
        next(unit.tokens())
        step_began.clear()
        step_began.wait(10)
        before = unit.row.steps  # the step in flight has not counted yet
        with unit.decoding():
            assert unit.row.steps == before + 1 and not scheduler.in_flight
            time.sleep(0.2)
            assert unit.row.steps == before + 1  # and none began while it decoded
    finally:
        unit.close()
        _wait_until(lambda: unit.done)

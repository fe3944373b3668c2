"""Word timing in the engines: the words of a unit's text, the GPT's attention probe, the monotonic alignment, and
the words each chunk carries on the fixture voice.

The fixture's GPT has random weights: its attention says nothing about where
the speech is, so these tests check that timing is complete and consistent
(every word once, in order, inside its chunk), not that it is accurate; the
default voice's accuracy is measured against ASR in test_default_voice.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agent_tts.engine.ar_batch import ARRequest, BatchDecoder, DecodeOptions
from agent_tts.engine.attention_alignment import MonotonicAligner, WordClock
from agent_tts.engine.cuda_graphs import FullCacheStep
from agent_tts.engine.sampling import SamplingOptions
from agent_tts.engine.synthesizer import Synthesizer
from agent_tts.models.t2s import TextAttentionProbe
from agent_tts.text.english.g2p import english_word_count
from agent_tts.text.frontend import TextFrontend
from agent_tts.text.segmenter import is_cjk
from agent_tts.text.word_map import UnitWord, unit_words
from agent_tts.voice import Voice
from engine_support import WORD_TEXT, check_word_times, tiny_gpt, write_fixture_voice

# -- the words of a unit's text ---------------------------------------------------------------


def _spoken(text: str, language: str) -> tuple[list[UnitWord], int]:
    phonemes = TextFrontend()(text, language)
    counter = english_word_count if language == "en" else None
    return unit_words(text, phonemes.spoken_words(), len(phonemes.phones), counter), len(phonemes.phones)


def test_written_words_keep_their_spelling_and_cover_the_text():
    text = "Your order, #42, costs $5.50! 🙂 Dr. Smith will call."
    words, phones = _spoken(text, "en")
    assert [word.text for word in words] == ["Your", "order,", "#42,", "costs", "$5.50!", "Dr.", "Smith", "will",
                                             "call."]
    assert "".join(text[w.span_start:w.span_end] for w in words) == text  # the emoji rides with "$5.50!"
    firsts = [word.first_phone for word in words]
    assert firsts == sorted(firsts) and firsts[0] >= 0 and firsts[-1] < phones
    # "#42," is read "number forty-two" and "$5.50!" "five dollars and fifty cents": each begins where its reading does
    frontend = TextFrontend()(text, "en")
    spoken = dict(frontend.spoken_words())
    assert words[2].first_phone == spoken["number"] and words[4].first_phone == spoken["five"]


def test_chinese_is_timed_per_character_through_word2ph_and_numbers_map_to_their_reading():
    text = "您好，您的订单2024年已经发货了。"
    words, _ = _spoken(text, "zh")
    assert [word.text for word in words][:3] == ["您", "好，", "您"] and words[-1].text == "了。"
    assert "".join(text[w.span_start:w.span_end] for w in words) == text
    phonemes = TextFrontend()(text, "zh")
    starts = np.cumsum([0] + phonemes.word2ph)
    year = next(word for word in words if word.text == "2024")
    assert year.first_phone == starts[7]  # 二零二四 begins after 您好,您的订单 (seven characters)
    assert all(is_cjk(word.text[0]) for word in words if word.text != "2024")


def test_japanese_words_come_from_openjtalk_and_are_shared_per_character():
    words, phones = _spoken("今日は良い天気ですね。", "ja")
    assert [word.text for word in words] == list("今日は良い天気です") + ["ね。"]
    firsts = [word.first_phone for word in words]
    assert firsts == sorted(firsts) and len(set(firsts)) == len(firsts) and firsts[-1] < phones


# -- the attention probe ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def gpt(tmp_path_factory):
    return tiny_gpt(tmp_path_factory.mktemp("gpt"), seed=5)


def _case(gpt, n_ref: int, n_unit: int, n_prompt: int, seed: int) -> ARRequest:
    g = torch.Generator().manual_seed(seed)
    n = n_ref + n_unit
    return ARRequest(torch.randint(0, gpt.config.phoneme_vocab_size, (n,), generator=g),
                     torch.randn(1024, n, generator=g), torch.randint(0, 1024, (n_prompt,), generator=g),
                     DecodeOptions(SamplingOptions(top_k=5), max_tokens=20, suppress_eos=True),
                     torch.Generator().manual_seed(seed), align_text=(n_ref, n))


@torch.inference_mode()
def test_the_probe_leaves_the_step_unchanged_and_gives_a_distribution_over_the_unit_phones(gpt):
    request = _case(gpt, 6, 9, 5, seed=1)
    length = 15 + 5
    plain, probed = gpt.new_cache(64), gpt.new_cache(64)
    args = (request.phone_ids[None], request.bert[None], request.prompt[None])
    gpt.prefill(*args, plain.row_view(0, length))
    probe = TextAttentionProbe(torch.tensor([6]), torch.tensor([15]), tuple(range(gpt.config.num_layers)))
    gpt.prefill(*args, probed.row_view(0, length), probe=probe)
    token, position, slot = torch.tensor([[3]]), torch.tensor([5]), torch.tensor([length])
    expected = gpt.step(token, position, slot, plain.view(1, length + 1))
    probe = TextAttentionProbe(torch.tensor([6]), torch.tensor([15]), tuple(range(gpt.config.num_layers)))
    logits = gpt.step(token, position, slot, probed.view(1, length + 1), probe=probe)
    assert torch.equal(logits, expected)
    weights = probe.weights[0]
    assert weights.shape[0] == length + 1
    assert torch.all(weights[:6] == 0) and torch.all(weights[15:] == 0) and torch.all(weights[6:15] > 0)
    assert abs(float(weights.sum()) - 1) < 1e-5


@torch.inference_mode()
def test_a_probe_over_a_window_of_slots_gives_the_weights_of_a_probe_over_every_key(gpt):
    request = _case(gpt, 6, 9, 5, seed=1)
    length = 15 + 5
    cache = gpt.new_cache(64)
    gpt.prefill(request.phone_ids[None], request.bert[None], request.prompt[None], cache.row_view(0, length))
    weights = []
    for window in (None, (6, 15), (2, 18)):
        probe = TextAttentionProbe(torch.tensor([6]), torch.tensor([15]), tuple(range(gpt.config.num_layers)), window)
        gpt.step(torch.tensor([[3]]), torch.tensor([5]), torch.tensor([length]), cache.view(1, length + 1),
                 probe=probe)
        weights.append(probe.weights)
    assert weights[0].shape == weights[1].shape == weights[2].shape == (1, length + 1)
    assert torch.allclose(weights[1], weights[0], atol=1e-6) and torch.allclose(weights[2], weights[0], atol=1e-6)


@pytest.mark.parametrize("runner", ["eager", "full cache"])
def test_each_token_gets_the_same_attention_alone_or_in_a_batch(gpt, runner):
    cases = [_case(gpt, 6, 9, 5, seed=1), _case(gpt, 4, 14, 8, seed=2), _case(gpt, 8, 5, 3, seed=3)]
    cases[2].align_text = None  # a row without word timing rides along

    def decode(requests, make_runner):
        decoder = BatchDecoder(gpt, make_runner())
        rows = [decoder.add(request) for request in requests]
        while not all(row.finished for row in rows):
            decoder.step([row for row in rows if not row.finished])
        return rows

    make = (lambda: FullCacheStep(gpt)) if runner == "full cache" else (lambda: None)
    alone = [decode([_case(gpt, 6, 9, 5, seed=1)], make)[0], decode([_case(gpt, 4, 14, 8, seed=2)], make)[0]]
    batched = decode(cases, make)
    for solo, row in zip(alone, batched):
        assert row.tokens == solo.tokens and len(row.attention) == len(row.tokens) == 20
        for a, b in zip(solo.attention, row.attention):
            assert a.shape == b.shape == (row.request.align_text[1] - row.request.align_text[0],)
            assert np.allclose(a, b, atol=1e-5) and abs(a.sum() - 1) < 1e-4
    assert batched[2].attention == []


# -- the monotonic alignment ------------------------------------------------------------------


def _attention_along(path: list[int], n: int, noise: float = 0.0, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    rows = []
    for phone in path:
        row = np.full(n, 0.01) + noise * rng.random(n)
        row[phone] += 1.0
        rows.append(row / row.sum())
    return rows


def test_the_aligner_follows_clean_attention_and_decides_the_same_chunk_by_chunk():
    path = [0, 0, 1, 1, 1, 2, 3, 3, 5, 5, 6, 6, 6, 7, 8, 9, 9, 9]  # phone 4 is skipped in one token
    whole, chunked = MonotonicAligner(10), MonotonicAligner(10)
    for row in _attention_along(path, 10):
        whole.add(row)
        chunked.add(row)
        if chunked.tokens in (4, 9, 13):
            chunked.decide(chunked.tokens - 2)
    whole.decide(len(path), final=True)
    chunked.decide(len(path), final=True)
    assert whole.phones == chunked.phones == path


def test_noisy_attention_still_gives_a_forward_path_that_ends_on_the_last_phones():
    rng = np.random.default_rng(3)
    aligner = MonotonicAligner(12)
    for index in range(40):
        aligner.add(rng.random(12))
        if index % 7 == 6:
            aligner.decide(index - 2)
    aligner.decide(40, final=True)
    steps = np.diff(aligner.phones)
    assert aligner.phones[0] == 0 and len(aligner.phones) == 40
    assert steps.min() >= 0 and steps.max() <= 2 and aligner.phones[-1] >= 12 - 3


def test_without_attention_words_are_placed_at_an_average_rate():
    aligner = MonotonicAligner(20)
    for _ in range(46):
        aligner.add(None)
    aligner.decide(46, final=True)
    assert aligner.phones[0] == 0 and aligner.phones[-1] == 19
    assert abs(aligner.phones[23] - 10) <= 2  # 2.3 tokens a phone


def test_the_word_clock_hands_out_every_word_once_with_the_chunk_it_begins_in():
    words = [UnitWord(f"w{k}", k, k + 1, first) for k, first in enumerate([0, 2, 3, 6, 9])]
    clock = WordClock(words, 10)
    path = [0, 0, 1, 2, 2, 3, 4, 5, 6, 6, 7, 7, 8, 9, 9]
    handed, chunk_ends = [], [5, 11]
    for index, row in enumerate(_attention_along(path, 10), 1):
        clock.add(row)
        if chunk_ends and index == chunk_ends[0] + 2:
            handed.append(clock.chunk_words(chunk_ends.pop(0), final=False))
    handed.append(clock.chunk_words(len(path), final=True))
    assert [[(w.text, t) for w, t in chunk] for chunk in handed] == [[("w0", 0), ("w1", 3)],
                                                                      [("w2", 5), ("w3", 8)], [("w4", 13)]]


# -- the GPT-SoVITS engine on the fixture voice -----------------------------------------------


@pytest.fixture(scope="module")
def voice(gsv_v2_fixture, tmp_path_factory) -> Voice:
    return Voice.load(write_fixture_voice(gsv_v2_fixture, tmp_path_factory.mktemp("voice")))


@pytest.mark.parametrize("batching", [True, False])
async def test_every_word_gets_a_time_inside_its_chunk_in_order(voice, batching):
    chunks = [chunk async for chunk in Synthesizer(voice, batching=batching).stream(
        WORD_TEXT, seed=1, fixed_tokens_per_phone=2.5)]
    timed = check_word_times(chunks, WORD_TEXT)
    assert len({chunk.unit_index for chunk in chunks}) == 3 and len(timed) == 10 + 13


async def test_words_are_the_same_alone_and_in_a_batch(voice):
    import asyncio

    async def speak(text):
        return [(w.text, round(w.start_s, 6)) async for chunk in Synthesizer(voice).stream(
            text, seed=2, fixed_tokens_per_phone=2.0) for w in chunk.words]

    alone = await speak(WORD_TEXT)
    together = await asyncio.gather(speak(WORD_TEXT), speak("Another stream rides along in the same batch."))
    assert together[0] == alone

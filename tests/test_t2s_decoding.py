"""The one AR step: cached steps equal a full recomputation; a row decodes the same tokens alone or in a batch,
with rows joining and leaving; the fixed-shape step (what a CUDA graph replays) equals the eager one; sampling
follows the reference."""

from __future__ import annotations

import pytest
import torch

from agent_tts.engine.ar_batch import ARRequest, BatchDecoder, DecodeOptions
from agent_tts.engine.cancel import CancelFlag
from agent_tts.engine.cuda_graphs import FullCacheStep
from agent_tts.engine.sampling import SamplingOptions, apply_repetition_penalty, sample_tokens
from agent_tts.engine.t2s_decoding import generate_semantic_tokens
from agent_tts.models.checkpoints import load_gpt
from agent_tts.models.synthetic import TINY_GPT_MODEL, write_gpt_checkpoint
from agent_tts.models.t2s import Text2SemanticModel
from engine_support import tiny_gpt


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Text2SemanticModel:
    return tiny_gpt(tmp_path_factory.mktemp("gpt"))


def _inputs(model: Text2SemanticModel, n_phones: int = 12, n_prompt: int = 9, seed: int = 7):
    g = torch.Generator().manual_seed(seed)
    phones = torch.randint(0, model.config.phoneme_vocab_size, (1, n_phones), generator=g)
    bert = torch.randn(1, 1024, n_phones, generator=g)
    prompt = torch.randint(0, 1024, (1, n_prompt), generator=g)
    return phones, bert, prompt


def _full_recompute_logits(model: Text2SemanticModel, phones, bert, tokens: torch.Tensor) -> torch.Tensor:
    """Next-token logits after ``tokens`` by rerunning the whole sequence in a fresh cache."""
    length = phones.shape[1] + tokens.shape[1]
    return model.prefill(phones, bert, tokens, model.new_cache(length).row_view(0, length))


@torch.inference_mode()
def test_cached_steps_match_full_recomputation(model) -> None:
    phones, bert, prompt = _inputs(model)
    cache = model.new_cache(64)
    length = phones.shape[1] + prompt.shape[1]
    logits = model.prefill(phones, bert, prompt, cache.row_view(0, length))
    tokens = prompt
    for _ in range(8):
        expected = _full_recompute_logits(model, phones, bert, tokens)
        assert (logits - expected).abs().max() / expected.abs().max() < 1e-5
        next_token = logits.argmax(-1, keepdim=True)
        tokens = torch.cat([tokens, next_token], dim=1)
        slot = torch.tensor([length])
        logits = model.step(next_token, torch.tensor([tokens.shape[1] - 1]), slot, cache.view(1, length + 1))
        length += 1
    assert cache.k.shape[3] == 64  # preallocated, never grown


def _solo(model, inputs, options, seed) -> list[int]:
    phones, bert, prompt = inputs
    return list(generate_semantic_tokens(model, phones, bert, prompt, options,
                                         generator=torch.Generator().manual_seed(seed)))


def test_same_seed_same_tokens_and_different_seed_differs(model) -> None:
    options = DecodeOptions(sampling=SamplingOptions(top_k=50, temperature=1.5), max_tokens=40, suppress_eos=True)
    inputs = _inputs(model)
    first, again, other = _solo(model, inputs, options, 1), _solo(model, inputs, options, 1), \
        _solo(model, inputs, options, 2)
    assert len(first) == 40 and first == again and first != other


def _request(inputs, options, seed) -> ARRequest:
    phones, bert, prompt = inputs
    return ARRequest(phones[0], bert[0], prompt[0], options, torch.Generator().manual_seed(seed))


def _cases(model):
    return [  # different lengths, sampling and stopping rules, one greedy
        (_inputs(model, 12, 9, seed=1), DecodeOptions(SamplingOptions(top_k=1), max_tokens=30, suppress_eos=True), 5),
        (_inputs(model, 7, 14, seed=2), DecodeOptions(SamplingOptions(top_k=20, temperature=1.3), max_tokens=45,
                                                      suppress_eos=True), 6),
        (_inputs(model, 20, 5, seed=3), DecodeOptions(SamplingOptions(top_k=50, top_p=0.8), max_tokens=25,
                                                      suppress_eos=True), 7),
        (_inputs(model, 9, 11, seed=4), DecodeOptions(SamplingOptions(top_k=5, repetition_penalty=2.0),
                                                      max_tokens=60, min_tokens=3), 8),
    ]


@pytest.mark.parametrize("runner", ["eager", "full cache"])
def test_rows_decode_alone_or_batched_alike_joining_and_leaving_at_any_step(model, runner) -> None:
    cases = _cases(model)
    alone = [_solo(model, inputs, options, seed) for inputs, options, seed in cases]
    decoder = BatchDecoder(model, FullCacheStep(model) if runner == "full cache" else None)
    joins = {0: [0, 1], 4: [2], 9: [3]}  # step -> cases that join before it
    rows, finished = {}, {}
    for step in range(200):
        for case in joins.get(step, []):
            rows[case] = decoder.add(_request(*cases[case]))
        live = [row for row in rows.values() if not row.finished]
        if step in (6, 7):
            live = live[1:]  # the first live row waits for its consumer: it is left out of two steps
        for case, row in list(rows.items()):
            if row.finished:
                finished[case] = list(row.tokens)
                decoder.remove(row)
                del rows[case]
        decoder.step([row for row in live if not row.finished])
        if not rows and step > 9:
            break
    assert [finished[case] for case in range(4)] == alone
    assert decoder.rows == [] and max(len(tokens) for tokens in alone) > 40


@torch.inference_mode()
def test_a_ragged_prefill_gives_each_row_its_solo_prefill(model) -> None:
    cases = [_inputs(model, 12, 9, seed=1), _inputs(model, 7, 14, seed=2), _inputs(model, 20, 5, seed=3)]
    solo = [model.prefill(phones, bert, prompt, model.new_cache(64).row_view(0, phones.shape[1] + prompt.shape[1]))
            for phones, bert, prompt in cases]
    cache = model.new_cache(64, rows=4)
    together = model.prefill_ragged([phones[0] for phones, _, _ in cases], [bert[0] for _, bert, _ in cases],
                                    [prompt[0] for _, _, prompt in cases], cache.prefill_view(1, 3, 25))
    for row, expected in enumerate(solo):
        torch.testing.assert_close(together[row: row + 1], expected, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(together[0], together[1])
    assert cache.k[:, 0].abs().max() == 0 and cache.k[:, 1:, :, 25:].abs().max() == 0  # its rows' slots only


@pytest.mark.parametrize("runner", ["eager", "full cache"])
def test_rows_prefilled_together_decode_as_alone_and_a_cancelled_one_is_left_out(model, runner) -> None:
    cases = _cases(model)
    alone = [_solo(model, inputs, options, seed) for inputs, options, seed in cases]
    decoder = BatchDecoder(model, FullCacheStep(model) if runner == "full cache" else None)
    cancelled = _request(*cases[0])
    cancelled.cancel = CancelFlag()
    cancelled.cancel.set()
    first = decoder.add_many([_request(*cases[0]), cancelled, _request(*cases[1]), _request(*cases[2])])
    assert first[1] is None and [row.index for row in (first[0], first[2], first[3])] == [0, 1, 2]
    assert cancelled.cancel.begun.get("prefill", 0) == 0
    rows = {0: first[0], 1: first[2], 2: first[3]}
    finished = {}
    for step in range(200):
        if step == 4:
            rows[3] = decoder.add_many([_request(*cases[3])])[0]  # and one that joins alone, later
        for case, row in list(rows.items()):
            if row.finished:
                finished[case] = list(row.tokens)
                decoder.remove(row)
                del rows[case]
        decoder.step(list(rows.values()))
        if not rows:
            break
    assert [finished[case] for case in range(4)] == alone


@pytest.mark.parametrize("runner", ["eager", "full cache"])
def test_the_cache_grows_as_rows_fill_it_and_rows_decode_as_in_a_cache_reserved_for_them(model, runner) -> None:
    long = (_inputs(model, 20, 200, seed=5), DecodeOptions(SamplingOptions(top_k=20), max_tokens=340,
                                                           suppress_eos=True), 11)
    short = (_inputs(model, 9, 30, seed=6), DecodeOptions(SamplingOptions(top_k=1), max_tokens=60,
                                                          suppress_eos=True), 12)
    results = {}
    for reserved in (False, True):
        max_len = 1024 if reserved else 256
        decoder = BatchDecoder(model, FullCacheStep(model) if runner == "full cache" else None, max_len=max_len)
        rows = [decoder.add(_request(*case)) for case in (long, short)]
        assert decoder.cache.max_len == max_len  # a row joins with room for its prefill, not its 340 tokens
        for step in range(400):
            live = [row for row in rows if not row.finished]
            if not live:
                break
            decoder.step(live if step % 5 else live[:1])  # now and then the short row rides along
        results[reserved] = [list(row.tokens) for row in rows]
        if not reserved:
            assert decoder.cache.max_len == 1024  # 256 -> 512 -> 1024 as the long row passed 256 and 512
    assert [len(tokens) for tokens in results[False]] == [340, 60]
    assert results[False] == results[True]


def test_eos_is_masked_for_min_tokens_then_stops(model, tmp_path) -> None:
    eos_model = load_gpt(write_gpt_checkpoint(tmp_path / "eos.ckpt", TINY_GPT_MODEL, seed=1))
    with torch.no_grad():
        # Feature 0 of the last layer's output is ~100 after its final norm, and only EOS reads it,
        # so EOS wins every step where it is allowed.
        eos_model.h.layers[-1].norm2.bias[0] = 100.0
        eos_model.ar_predict_layer.weight[eos_model.config.eos] = 0
        eos_model.ar_predict_layer.weight[eos_model.config.eos, 0] = 100.0
    phones, bert, prompt = _inputs(eos_model)
    tokens = list(generate_semantic_tokens(eos_model, phones, bert, prompt,
                                           DecodeOptions(sampling=SamplingOptions(top_k=1), min_tokens=11)))
    assert len(tokens) == 11
    tokens = list(generate_semantic_tokens(eos_model, phones, bert, prompt,
                                           DecodeOptions(sampling=SamplingOptions(top_k=1), min_tokens=11,
                                                         max_tokens=30, suppress_eos=True)))
    assert len(tokens) == 30 and eos_model.config.eos not in tokens


def test_a_cancel_after_a_token_stops_before_the_next_step(model) -> None:
    """The prefill gives token 1; steps 1-4 give tokens 2-5; a cancel while token 5 is consumed means no step 5."""
    phones, bert, prompt = _inputs(model)
    decoder = BatchDecoder(model)
    cancel = CancelFlag()
    produced: list[int] = []
    for token in generate_semantic_tokens(model, phones, bert, prompt, DecodeOptions(max_tokens=100,
                                                                                      suppress_eos=True),
                                          decoder=decoder, cancel=cancel):
        produced.append(token)
        if len(produced) == 5:
            cancel.set()
    assert len(produced) == 5
    assert decoder.steps == 4 and cancel.begun == {"prefill": 1, "ar_step": 4}
    assert cancel.begun_after_set("ar_step") == 0 and decoder.rows == []


def test_repetition_penalty_counts_each_seen_token_once() -> None:
    logits = torch.tensor([[2.0, -2.0, 1.0, 0.5]])
    seen = torch.tensor([[True, True, False, False]])
    assert apply_repetition_penalty(logits, seen, torch.tensor([[2.0]])).tolist() == [[1.0, -4.0, 1.0, 0.5]]


def test_top_k_one_is_greedy_on_penalised_logits_per_row() -> None:
    logits = torch.tensor([[3.0, 2.9, 0.0], [3.0, 2.9, 0.0]])
    seen = torch.tensor([[True, False, False], [False, False, False]])
    token, best = sample_tokens(logits, seen, [SamplingOptions(top_k=1, repetition_penalty=1.35)] * 2, [None, None])
    assert token.tolist() == [1, 0] and best.tolist() == [1, 0]

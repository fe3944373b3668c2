"""The static KV cache decodes exactly what a full recomputation would; sampling follows the reference."""

from __future__ import annotations

import torch

from agent_tts.engine.sampling import SamplingOptions, apply_repetition_penalty, sample_token
from agent_tts.engine.t2s_decoding import DecodeOptions, generate_semantic_tokens
from agent_tts.models.checkpoints import load_gpt
from agent_tts.models.synthetic import TINY_GPT_MODEL, write_gpt_checkpoint
from agent_tts.models.t2s import Text2SemanticModel


def _tiny_gpt(tmp_path) -> Text2SemanticModel:
    model = load_gpt(write_gpt_checkpoint(tmp_path / "tiny.ckpt", TINY_GPT_MODEL, seed=1))
    # Larger weights than the writer's so logits vary enough to make decoding non-trivial.
    generator = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1:
                param.normal_(0, 0.3, generator=generator)
    return model


def _full_recompute_logits(model: Text2SemanticModel, phones, bert, tokens: torch.Tensor) -> torch.Tensor:
    """Next-token logits after ``tokens`` by rerunning the whole sequence in a fresh cache."""
    return model.prefill(phones, bert, tokens, model.new_cache(phones.shape[1] + tokens.shape[1]))


def _inputs(model: Text2SemanticModel, n_phones: int = 12, n_prompt: int = 9):
    g = torch.Generator().manual_seed(7)
    phones = torch.randint(0, model.config.phoneme_vocab_size, (1, n_phones), generator=g)
    bert = torch.randn(1, 1024, n_phones, generator=g)
    prompt = torch.randint(0, 1024, (1, n_prompt), generator=g)
    return phones, bert, prompt


@torch.inference_mode()
def test_cached_steps_match_full_recomputation(tmp_path) -> None:
    model = _tiny_gpt(tmp_path)
    phones, bert, prompt = _inputs(model)
    cache = model.new_cache(64)
    logits = model.prefill(phones, bert, prompt, cache)
    tokens = prompt
    for _ in range(8):
        expected = _full_recompute_logits(model, phones, bert, tokens)
        relative_error = (logits - expected).abs().max() / expected.abs().max()
        assert relative_error < 1e-5
        next_token = logits.argmax(-1, keepdim=True)
        tokens = torch.cat([tokens, next_token], dim=1)
        logits = model.step(next_token, tokens.shape[1] - 1, cache)
    assert cache.length == phones.shape[1] + tokens.shape[1]
    assert cache.k.shape[3] == 64  # preallocated, never grown


def test_same_seed_same_tokens_and_different_seed_differs(tmp_path) -> None:
    model = _tiny_gpt(tmp_path)
    phones, bert, prompt = _inputs(model)
    options = DecodeOptions(sampling=SamplingOptions(top_k=50, temperature=1.5), max_tokens=40, suppress_eos=True)

    def run(seed: int) -> list[int]:
        generator = torch.Generator().manual_seed(seed)
        return list(generate_semantic_tokens(model, phones, bert, prompt, options, generator=generator))

    first, again, other = run(1), run(1), run(2)
    assert len(first) == 40
    assert first == again
    assert first != other


def test_eos_is_masked_for_min_tokens_then_stops(tmp_path) -> None:
    model = _tiny_gpt(tmp_path)
    with torch.no_grad():
        # Feature 0 of the last layer's output is ~100 after its final norm, and only EOS reads it,
        # so EOS wins every step where it is allowed.
        model.h.layers[-1].norm2.bias[0] = 100.0
        model.ar_predict_layer.weight[model.config.eos] = 0
        model.ar_predict_layer.weight[model.config.eos, 0] = 100.0
    phones, bert, prompt = _inputs(model)
    tokens = list(generate_semantic_tokens(model, phones, bert, prompt,
                                           DecodeOptions(sampling=SamplingOptions(top_k=1), min_tokens=11)))
    assert len(tokens) == 11
    tokens = list(generate_semantic_tokens(model, phones, bert, prompt,
                                           DecodeOptions(sampling=SamplingOptions(top_k=1), min_tokens=11,
                                                         max_tokens=30, suppress_eos=True)))
    assert len(tokens) == 30 and model.config.eos not in tokens


def test_stop_callback_ends_generation_before_the_next_step(tmp_path) -> None:
    model = _tiny_gpt(tmp_path)
    phones, bert, prompt = _inputs(model)
    produced: list[int] = []
    options = DecodeOptions(max_tokens=100, suppress_eos=True)
    for token in generate_semantic_tokens(model, phones, bert, prompt, options,
                                          should_stop=lambda: len(produced) >= 5):
        produced.append(token)
    assert len(produced) == 5


def test_repetition_penalty_counts_each_previous_token_once() -> None:
    logits = torch.tensor([[2.0, -2.0, 1.0, 0.5]])
    apply_repetition_penalty(logits, torch.tensor([[0, 1, 0, 0]]), 2.0)
    assert logits.tolist() == [[1.0, -4.0, 1.0, 0.5]]


def test_top_k_one_is_greedy_on_penalised_logits() -> None:
    logits = torch.tensor([[3.0, 2.9, 0.0]])
    token, best = sample_token(logits, torch.tensor([[0]]), SamplingOptions(top_k=1, repetition_penalty=1.35))
    assert token.item() == 1 and best.item() == 1

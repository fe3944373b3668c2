"""The static-shape AR step (what a CUDA graph replays) against the model's own step, on the fixture GPT."""

from __future__ import annotations

import pytest
import torch

from agent_tts.engine.sampling import SamplingOptions
from agent_tts.engine.static_step import CudaGraphStep, GraphedSteps, StaticShapeStep
from agent_tts.engine.t2s_decoding import DecodeOptions, generate_semantic_tokens
from agent_tts.errors import AgentTTSError
from agent_tts.models.checkpoints import load_gpt
from agent_tts.voice import Voice
from engine_support import write_fixture_voice


@pytest.fixture(scope="module")
def gpt(gsv_v2_fixture):
    return load_gpt(gsv_v2_fixture / "models" / "s1.ckpt").eval()


def _inputs(gpt, phones: int, prompt: int, seed: int, device: str = "cpu"):
    generator = torch.Generator().manual_seed(seed)
    phone_ids = torch.randint(0, gpt.config.phoneme_vocab_size, (1, phones), generator=generator)
    bert = torch.randn(1, gpt.config.bert_dim, phones, generator=generator)
    codes = torch.randint(0, gpt.config.vocab_size - 1, (1, prompt), generator=generator)
    dtype = gpt.compute_dtype
    return phone_ids.to(device), bert.to(device, dtype), codes.to(device)


@torch.inference_mode()
def test_static_step_gives_the_models_logits_and_cache(gpt):
    phone_ids, bert, prompt = _inputs(gpt, 30, 40, seed=0)
    eager, static_cache = gpt.new_cache(200), gpt.new_cache(200)
    gpt.prefill(phone_ids, bert, prompt, eager)
    gpt.prefill(phone_ids, bert, prompt, static_cache)
    step = StaticShapeStep(gpt, static_cache)
    for index in range(30):
        token = torch.tensor([[(7 * index) % 1024]])
        expected = gpt.step(token, 40 + index, eager)
        got = step(token, 40 + index)
        torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-4)
    assert static_cache.length == eager.length == 100
    torch.testing.assert_close(static_cache.k[:, :, :, :100], eager.k[:, :, :, :100])
    assert not static_cache.k[:, :, :, 100:].any()  # nothing written past the filled positions


@torch.inference_mode()
def test_units_of_any_length_decode_alike_through_a_reused_static_step(gpt):
    """A stream keeps one runner across units; a shorter unit after a longer one must not see stale positions."""
    options = DecodeOptions(SamplingOptions(top_k=15), max_tokens=40, min_tokens=11)
    runner = StaticShapeStep(gpt, gpt.new_cache(400))
    for phones, prompt, seed in ((40, 60, 1), (12, 60, 2), (25, 60, 3)):
        phone_ids, bert, codes = _inputs(gpt, phones, prompt, seed)
        eager = list(generate_semantic_tokens(gpt, phone_ids, bert, codes, options,
                                              generator=torch.Generator().manual_seed(seed)))
        static = list(generate_semantic_tokens(gpt, phone_ids, bert, codes, options, step_runner=runner,
                                               generator=torch.Generator().manual_seed(seed)))
        assert static == eager and len(eager) > 11


def test_a_runner_whose_cache_is_too_small_is_refused(gpt):
    phone_ids, bert, codes = _inputs(gpt, 30, 40, seed=0)
    runner = StaticShapeStep(gpt, gpt.new_cache(80))
    with pytest.raises(ValueError, match="holds 80 positions; this unit needs 110"):
        list(generate_semantic_tokens(gpt, phone_ids, bert, codes, DecodeOptions(max_tokens=40), step_runner=runner))


def test_cuda_graphs_and_fp16_need_a_cuda_device(gpt, gsv_v2_fixture, tmp_path):
    with pytest.raises(ValueError, match="CUDA device"):
        CudaGraphStep(gpt, gpt.new_cache(100))
    with pytest.raises(AgentTTSError, match="fp16' is for CUDA"):
        Voice.load(write_fixture_voice(gsv_v2_fixture, tmp_path), precision="fp16")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@torch.inference_mode()
def test_cuda_graph_replays_the_eager_step(gsv_v2_fixture, dtype):
    gpt = load_gpt(gsv_v2_fixture / "models" / "s1.ckpt", dtype=dtype).to("cuda").eval()
    options = DecodeOptions(SamplingOptions(top_k=1), max_tokens=60, min_tokens=11)
    steps = GraphedSteps(gpt)
    for phones, seed in ((40, 1), (12, 2)):
        phone_ids, bert, codes = _inputs(gpt, phones, 60, seed, device="cuda")
        eager = list(generate_semantic_tokens(gpt, phone_ids, bert, codes, options))
        runner = steps.for_positions(phones + 60 + 60)
        graphed = list(generate_semantic_tokens(gpt, phone_ids, bert, codes, options, step_runner=runner))
        assert runner.graph is not None and graphed == eager
    assert steps.step is runner  # one capture served both units

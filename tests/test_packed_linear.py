"""Linears packed for oneDNN compute what `nn.Linear` computes, and the packed GPT still matches upstream."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from agent_tts.errors import OptionError
from agent_tts.models.checkpoints import load_gpt
from agent_tts.models.packed_linear import (PACKED_LINEARS_ENV, PackedLinear, pack_gpt_if_faster, pack_linears,
                                            packing_is_faster, probe_weights)
from agent_tts.parity import Fixture, FixtureModels, run_parity


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
@pytest.mark.parametrize("shape", [(1, 64), (8, 64), (2, 40, 64)])
@pytest.mark.parametrize("bias", [True, False])
def test_a_packed_linear_computes_what_the_linear_does(dtype, tolerance, shape, bias):
    torch.manual_seed(0)
    linear = nn.Linear(64, 48, bias=bias).to(dtype)
    x = torch.randn(*shape, dtype=dtype)
    with torch.inference_mode():
        expected, packed = linear(x), PackedLinear.from_linear(linear)(x)
    assert packed.shape == expected.shape and packed.dtype == dtype
    assert (packed.float() - expected.float()).abs().max() <= tolerance * expected.float().abs().max()


def _logits(gpt, phone_ids, bert, prompt, steps: int) -> torch.Tensor:
    """The prefill's logits and those of `steps` greedy steps after it, [steps + 1, V]."""
    cache = gpt.new_cache(256)
    length = phone_ids.shape[1] + prompt.shape[1]
    out = [gpt.prefill(phone_ids, bert, prompt, cache.row_view(0, length))]
    for step in range(steps):
        token = out[-1].argmax(-1, keepdim=True)
        position = torch.tensor([prompt.shape[1] + step])
        out.append(gpt.step(token, position, torch.tensor([length + step]), cache.row_view(0, length + step + 1)))
    return torch.cat(out)


def test_packing_the_fixture_gpt_replaces_every_linear_and_keeps_its_logits(gsv_v2_fixture: Path):
    plain = load_gpt(gsv_v2_fixture / "models" / "s1.ckpt").eval()
    packed = pack_linears(load_gpt(gsv_v2_fixture / "models" / "s1.ckpt").eval())
    assert not [name for name, module in packed.named_modules() if type(module) is nn.Linear]
    assert isinstance(packed.h.layers[0].self_attn.in_proj, PackedLinear)
    torch.manual_seed(0)
    phone_ids = torch.randint(0, 300, (1, 20))
    bert = torch.randn(1, plain.config.bert_dim, 20)
    prompt = torch.randint(0, plain.config.vocab_size - 1, (1, 12))
    with torch.inference_mode():
        expected, got = _logits(plain, phone_ids, bert, prompt, 8), _logits(packed, phone_ids, bert, prompt, 8)
    assert (got - expected).abs().max() <= 1e-5 * expected.abs().max()
    assert torch.equal(got.argmax(-1), expected.argmax(-1))


def test_the_setting_forces_packing_on_or_off_and_refuses_anything_else(gsv_v2_fixture: Path, monkeypatch):
    def load():
        return load_gpt(gsv_v2_fixture / "models" / "s1.ckpt").eval()

    monkeypatch.setenv(PACKED_LINEARS_ENV, "off")
    gpt = load()
    assert not pack_gpt_if_faster(gpt) and type(gpt.h.layers[0].linear1) is nn.Linear
    monkeypatch.setenv(PACKED_LINEARS_ENV, "on")
    gpt = load()
    assert pack_gpt_if_faster(gpt) and isinstance(gpt.h.layers[0].linear1, PackedLinear)
    monkeypatch.setenv(PACKED_LINEARS_ENV, "sometimes")
    with pytest.raises(OptionError, match=PACKED_LINEARS_ENV):
        pack_gpt_if_faster(load())


def test_an_int8_gpt_packs_the_float_weights_of_its_prefill_and_keeps_int8_for_its_steps(gsv_v2_fixture: Path,
                                                                                         monkeypatch):
    from agent_tts.models.packed_linear import PREFILL_PROBE_ROWS, linear_layout
    from agent_tts.models.quantization import INT8_KERNEL_MAX_ROWS, Int8WeightLinear, quantize_linear_weights

    plain = load_gpt(gsv_v2_fixture / "models" / "s1.ckpt").eval()
    monkeypatch.setenv(PACKED_LINEARS_ENV, "on")
    gpt = quantize_linear_weights(load_gpt(gsv_v2_fixture / "models" / "s1.ckpt").eval())
    assert pack_gpt_if_faster(gpt, PREFILL_PROBE_ROWS) and linear_layout(gpt) == "int8 + oneDNN-packed"
    linear = gpt.h.layers[0].linear1
    assert isinstance(linear, Int8WeightLinear) and isinstance(linear.dense, PackedLinear)
    x = torch.randn(2, INT8_KERNEL_MAX_ROWS, plain.config.embedding_dim)
    with torch.inference_mode():
        expected = plain.h.layers[0].linear1(x)
        assert (linear(x) - expected).abs().max() <= 1e-5 * expected.abs().max()  # a prefill: the float weights
        one_row = linear(x[:1, :1])
    assert not torch.equal(one_row, expected[:1, :1])  # a step: the int8 weights


def test_the_measurement_times_both_ways_on_the_models_own_weights(gsv_v2_fixture: Path):
    gpt = load_gpt(gsv_v2_fixture / "models" / "s1.ckpt").eval()
    probe = probe_weights(gpt.h.layers[0], 4)
    assert [weight.shape[0] for weight, _ in probe] == [3 * gpt.config.embedding_dim, gpt.config.embedding_dim,
                                                         gpt.h.layers[0].linear1.out_features,
                                                         gpt.config.embedding_dim]
    faster, plain_s, packed_s = packing_is_faster(probe, (1, 8))
    assert plain_s > 0 and packed_s > 0 and faster == (packed_s < plain_s)


def test_the_packed_models_pass_parity_against_upstream(gsv_v2_fixture: Path, monkeypatch):
    monkeypatch.setenv(PACKED_LINEARS_ENV, "on")
    models = FixtureModels.load(Fixture(gsv_v2_fixture))
    assert isinstance(models.gpt.h.layers[0].self_attn.in_proj, PackedLinear)
    assert isinstance(models.bert.model.encoder.layer[0].attention.self.query, PackedLinear)
    results = list(run_parity(gsv_v2_fixture))
    failed = [result.line() for result in results if not result.passed]
    assert len(results) > 20 and not failed, failed

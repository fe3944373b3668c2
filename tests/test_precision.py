"""Precision: the plan `auto` picks per CPU, the int8 linear, and bf16/int8 against fp32 on the gsv-v2 fixture."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from agent_tts.cpu_features import CPUFeatures, parse_cpuinfo
from agent_tts.errors import OptionError
from agent_tts.models.precision import resolve_precision
from agent_tts.models.quantization import INT8_KERNEL_MAX_ROWS, Int8WeightLinear, quantize_linear_weights
from agent_tts.precision_check import check_precision

CPU = torch.device("cpu")
AMX = CPUFeatures("Intel Xeon (AMX)", frozenset({"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}))
AVX2 = CPUFeatures("AMD EPYC (AVX2)", frozenset({"avx2", "fma"}))


def test_cpuinfo_gives_the_model_and_the_isa_features():
    features = parse_cpuinfo("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\n"
                             "flags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n\n"
                             "processor\t: 1\nmodel name\t: other\nflags\t\t: fpu\n")
    assert features.model == "Intel(R) Xeon(R) Processor"
    assert features.avx2 and features.avx512 and features.avx512_bf16 and features.amx and features.native_bf16
    assert features.summary() == "Intel(R) Xeon(R) Processor: AVX2 yes, AVX-512 yes, AVX512-BF16 yes, AMX yes"
    assert not parse_cpuinfo("model name : old\nflags : sse2 avx2\n").native_bf16


def test_auto_is_int8_where_the_cpu_multiplies_bf16_natively_else_fp32():
    auto = resolve_precision("auto", CPU, AMX)
    assert auto.name == "int8" and auto.int8_weights and auto.gpt_dtype == auto.sovits_dtype == torch.bfloat16
    assert resolve_precision("auto", CPU, AVX2).name == "fp32"
    assert resolve_precision("auto", torch.device("cuda"), AMX).name == "fp32"
    bf16 = resolve_precision("bf16", CPU, AVX2)  # runs everywhere, emulated without native bf16
    assert bf16.gpt_dtype == bf16.sovits_dtype == bf16.bert_dtype == torch.bfloat16
    int8 = resolve_precision("int8", CPU, AMX)
    assert int8.int8_weights and int8.gpt_dtype == torch.bfloat16
    assert resolve_precision("int8", CPU, AVX2).gpt_dtype == torch.float32
    assert "HuBERT fp32" in int8.describe() and "GPT int8 weights + bf16" in int8.describe()


@pytest.mark.parametrize("precision, device", [("fp8", "cpu"), ("fp16", "cpu"), ("bf16", "cuda"), ("int8", "cuda")])
def test_a_precision_the_device_cannot_run_is_one_clear_error(precision, device):
    with pytest.raises(OptionError, match="precision"):
        resolve_precision(precision, torch.device(device), AMX)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("rows", [1, 3, 16])
def test_an_int8_linear_is_close_to_the_float_one_for_few_rows_and_keeps_their_dtype(dtype, rows):
    torch.manual_seed(0)
    linear = nn.Linear(64, 48).to(dtype)
    x = torch.randn(2, rows // 2 or 1, 64, dtype=dtype)
    quantized = Int8WeightLinear.from_linear(linear)
    assert quantized.weight.dtype == torch.int8 and quantized.weight.shape == (48, 64)
    assert quantized.int8_bytes == 48 * 64 + 48 * 2  # what an AR step reads: a byte a weight, a bf16 scale a row
    out = quantized(x)
    expected = linear(x)
    assert out.dtype == dtype and out.shape == expected.shape
    assert not torch.equal(out, expected)  # the int8 kernel, not the float layer
    assert (out - expected).abs().max() <= 0.02 * expected.abs().max()


def test_an_int8_linear_multiplies_many_rows_by_the_float_weights_it_was_made_from():
    torch.manual_seed(0)
    linear = nn.Linear(64, 48)
    x = torch.randn(3, INT8_KERNEL_MAX_ROWS, 64)
    assert torch.equal(Int8WeightLinear.from_linear(linear)(x), linear(x))


def test_quantizing_a_gpt_replaces_every_linear_and_the_packed_in_projection(gsv_v2_fixture):
    from agent_tts.models.checkpoints import load_gpt

    gpt = quantize_linear_weights(load_gpt(gsv_v2_fixture / "models" / "s1.ckpt"), torch.bfloat16)
    linears = [name for name, module in gpt.named_modules() if isinstance(module, nn.Linear)]
    assert linears and all(name.endswith(".dense") for name in linears)  # only the float copies the prefill uses
    assert isinstance(gpt.h.layers[0].self_attn.in_proj, Int8WeightLinear)
    assert gpt.compute_dtype == torch.bfloat16


@pytest.mark.parametrize("precision", ["bf16", "int8", "int8 without native bf16"])
def test_bf16_and_int8_meet_the_accuracy_bars_against_fp32_on_the_fixture(gsv_v2_fixture, precision):
    if precision == "int8 without native bf16":  # fp32 activations, bf16 only into the int8 kernel
        precision = resolve_precision("int8", CPU, AVX2)
    results = list(check_precision(gsv_v2_fixture, precision))
    assert len(results) == 6  # logits, tokens and waveform for each of the two sentences
    failed = [result.line() for result in results if not result.passed]
    assert not failed, failed


def test_a_bf16_gpt_attends_in_fp32_when_told_to_and_stays_within_the_bars(gsv_v2_fixture, monkeypatch):
    from agent_tts.engine.t2s_decoding import DecodeOptions, generate_semantic_tokens
    from agent_tts.models.attention_dtype import FP32_ATTENTION_ENV, choose_attention_dtype
    from agent_tts.models.checkpoints import load_gpt
    from agent_tts.parity import REFERENCE_SAMPLING

    path = gsv_v2_fixture / "models" / "s1.ckpt"
    exact = load_gpt(path).eval()
    monkeypatch.setenv(FP32_ATTENTION_ENV, "off")
    bf16 = load_gpt(path).eval().to(torch.bfloat16)
    assert choose_attention_dtype(bf16) == torch.bfloat16 and bf16.new_cache(8).k.dtype == torch.bfloat16
    monkeypatch.setenv(FP32_ATTENTION_ENV, "on")
    assert choose_attention_dtype(exact) == torch.float32 and exact.attention_dtype is None  # fp32: nothing to do
    mixed = load_gpt(path).eval().to(torch.bfloat16)
    assert choose_attention_dtype(mixed) == torch.float32 and mixed.new_cache(8).k.dtype == torch.float32

    torch.manual_seed(0)
    config = exact.config
    phones = torch.randint(0, config.phoneme_vocab_size, (1, 24))
    bert = torch.randn(1, config.bert_dim, 24)
    prompt = torch.randint(0, config.vocab_size - 1, (1, 30))
    options = DecodeOptions(sampling=REFERENCE_SAMPLING, max_tokens=12, suppress_eos=True)
    logits = {}
    for name, gpt in (("fp32", exact), ("bf16", bf16), ("mixed", mixed)):
        seen: list[torch.Tensor] = []
        list(generate_semantic_tokens(gpt, phones, bert.to(gpt.compute_dtype), prompt, options,
                                      on_logits=lambda step, row: seen.append(row.float())))
        logits[name] = torch.cat(seen)
    scale = logits["fp32"][0].abs().max()
    # the first step's logits share their inputs (later steps follow each model's own tokens)
    assert (logits["mixed"][0] - logits["fp32"][0]).abs().max() <= 0.02 * scale
    assert not torch.equal(logits["mixed"][0], logits["bf16"][0])  # the attention did run in another dtype

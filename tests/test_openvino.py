"""The OpenVINO backend on the gsv-v2 fixture: the export's decoder and BERT on OpenVINO against torch fp32."""

from __future__ import annotations

import asyncio
import shutil
import threading

import numpy as np
import pytest
import torch

pytest.importorskip("openvino")

from agent_tts.cpu_features import cpu_features  # noqa: E402
from agent_tts.engine.chunked_decoder import ChunkPlan, window_lengths  # noqa: E402
from agent_tts.engine.synthesizer import Synthesizer  # noqa: E402
from agent_tts.models.quantization import Int8WeightLinear  # noqa: E402
from agent_tts.models.t2s import Text2SemanticModel  # noqa: E402
from agent_tts.errors import AgentTTSError  # noqa: E402
from agent_tts.onnx.export import export_voice  # noqa: E402
from agent_tts.onnx.manifest import SOURCES_KEY, StaleExportError  # noqa: E402
from agent_tts.openvino.length_warmup import compile_short_lengths_in_background  # noqa: E402
from agent_tts.parity import snr_db  # noqa: E402
from agent_tts.text.bert_features import phone_level_bert  # noqa: E402
from agent_tts.voice import Voice, VoiceSpec  # noqa: E402
from engine_support import write_fixture_voice  # noqa: E402

TEXT = "今天天气很好，我们一起去公园散步。"


@pytest.fixture(scope="module")
def spec(gsv_v2_fixture, tmp_path_factory) -> VoiceSpec:
    return VoiceSpec.from_toml(write_fixture_voice(gsv_v2_fixture, tmp_path_factory.mktemp("voice")))


@pytest.fixture(scope="module")
def export_dir(spec, tmp_path_factory):
    return export_voice(spec, tmp_path_factory.mktemp("onnx") / "fixture")


@pytest.fixture(scope="module")
def torch_voice(spec) -> Voice:
    return Voice.load(spec, "cpu")


@pytest.fixture(scope="module")
def openvino_voice(spec, export_dir):
    """The fixture voice on OpenVINO at a precision, loaded once per module (a load compiles for about 20 s)."""
    loaded: dict[str, Voice] = {}

    def load(precision: str) -> Voice:
        if precision not in loaded:
            loaded[precision] = Voice.load(spec, "cpu", backend="openvino", onnx_dir=export_dir, precision=precision)
        return loaded[precision]

    return load


@pytest.mark.parametrize("precision, snr_bar", [("fp32", 60.0), ("bf16", 25.0)])
def test_decoder_and_bert_on_openvino_match_torch_fp32(openvino_voice, torch_voice, gsv_v2_fixture, precision,
                                                      snr_bar):
    voice = openvino_voice(precision)
    assert voice.backend == "openvino" and voice.precision.name == precision
    assert voice.precision.gpt_dtype == torch.float32  # the GPT stays on ONNX Runtime in fp32
    codes = torch.from_numpy(np.load(gsv_v2_fixture / "golden" / "ar0_greedy_noeos_tokens.npy"))[None, None]
    phones = voice.frontend("今天天气很好。", "zh")
    text_ids = torch.tensor([phones.phone_ids])
    with torch.inference_mode():
        expected = torch_voice.sovits.decode(codes, text_ids, torch_voice.ge, noise_scale=0.0)[0, 0].numpy()
        expected_bert = phone_level_bert(torch_voice.bert, phones)
    wav = voice.sovits.decode(codes, text_ids, voice.ge, noise_scale=0.0)[0, 0].numpy()
    assert wav.shape == expected.shape and snr_db(wav, expected) >= snr_bar
    bert = phone_level_bert(voice.bert, phones)
    assert (bert - expected_bert).abs().max() <= 0.02 * expected_bert.abs().max()


def test_an_openvino_voice_speaks(openvino_voice):
    voice = openvino_voice("auto")

    async def speak() -> np.ndarray:
        chunks = [chunk.pcm async for chunk in Synthesizer(voice).stream(TEXT, seed=3, fixed_tokens=40)]
        return np.concatenate(chunks)

    pcm = asyncio.run(speak())
    assert pcm.dtype == np.float32 and len(pcm) > voice.sample_rate and np.abs(pcm).max() > 0


def test_openvino_refuses_fp16_and_a_graph_from_another_export(spec, export_dir, tmp_path):
    import onnx

    with pytest.raises(AgentTTSError, match="fp32, bf16 or int8"):
        Voice.load(spec, "cpu", backend="openvino", onnx_dir=export_dir, precision="fp16")
    copy = tmp_path / "copy"
    shutil.copytree(export_dir, copy)
    decoder = onnx.load(str(copy / "sovits_decoder.onnx"))
    for entry in decoder.metadata_props:
        if entry.key == SOURCES_KEY:
            entry.value = "0" * len(entry.value)
    onnx.save(decoder, str(copy / "sovits_decoder.onnx"))
    with pytest.raises(StaleExportError, match="sovits_decoder.onnx"):
        Voice.load(spec, "cpu", backend="openvino", onnx_dir=copy, precision="fp32")


def test_the_int8_plan_runs_the_gpt_on_torch_with_int8_weights_beside_openvino(spec, openvino_voice):
    voice = openvino_voice("int8")
    assert isinstance(voice.gpt, Text2SemanticModel)
    assert any(isinstance(module, Int8WeightLinear) for module in voice.gpt.modules())
    bf16 = torch.bfloat16 if cpu_features().native_bf16 else torch.float32
    assert voice.precision.gpt_dtype == voice.precision.sovits_dtype == voice.precision.bert_dtype == bf16
    assert "BERT " + ("bf16" if bf16 == torch.bfloat16 else "fp32") in voice.precision.describe()
    auto = openvino_voice("auto")
    assert auto.precision.name == ("int8" if cpu_features().native_bf16 else "fp32")

    # The GPT is the torch backend's int8 model, loaded once for both: the same seed and options give the same
    # tokens. The text is English, which has no BERT features: Chinese text's come from each voice's own BERT
    # (OpenVINO bf16 here, torch int8 there), and a near-tie in the GPT can follow their difference.
    torch_int8 = Voice.load(spec, "cpu", precision="int8")
    assert voice.gpt is torch_int8.gpt

    async def tokens(engine_voice: Voice) -> list[int]:
        chunks = [chunk async for chunk in Synthesizer(engine_voice).stream(
            "The weather is nice today.", language="en", seed=5, top_k=1, fixed_tokens=30)]
        return [token for chunk in chunks for token in chunk.semantic_tokens]

    ours = asyncio.run(tokens(voice))
    assert len(ours) == 30 and ours == asyncio.run(tokens(torch_int8))


def test_the_openvino_decoder_sees_only_window_lengths_in_its_granule(openvino_voice, monkeypatch):
    voice = openvino_voice("bf16")
    assert voice.sovits.window_granule == 16
    seen: list[int] = []
    decode = voice.sovits.decode

    def recording_decode(codes, *args, **kwargs):
        seen.append(codes.shape[-1])
        return decode(codes, *args, **kwargs)

    monkeypatch.setattr(voice.sovits, "decode", recording_decode)
    units = {}

    async def speak() -> None:
        async for chunk in Synthesizer(voice).stream(TEXT, seed=1, fixed_tokens=150):
            units[chunk.unit_index] = units.get(chunk.unit_index, 0) + len(chunk.semantic_tokens)

    asyncio.run(speak())
    prepared = set(window_lengths(ChunkPlan(), 16))
    assert len(seen) > 6 and max(seen) > 64
    assert set(seen) <= prepared | set(units.values())  # a unit shorter than a window decodes at its own length
    assert any(length % 16 == 0 and length not in (13, 33) for length in seen)


def test_concurrent_decodes_of_one_openvino_graph_all_succeed(openvino_voice):
    # One infer request per calling thread: with a single request, concurrent streams failed with
    # "Infer Request is busy".
    voice = openvino_voice("bf16")
    errors: list[str] = []

    def decode_many() -> None:
        try:
            for index in range(30):
                voice.sovits.decode(torch.randint(0, 500, (1, 1, 32 + 16 * (index % 3))),
                                    torch.ones(1, 10, dtype=torch.long), voice.ge, noise_scale=0.0)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(repr(exc))

    threads = [threading.Thread(target=decode_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_short_unit_lengths_compile_in_the_background_when_asked(openvino_voice, monkeypatch):
    voice = openvino_voice("bf16")
    assert set(window_lengths(ChunkPlan(), 16)) <= voice.sovits.lengths_run  # compiled at load
    fresh = [length for length in range(1, 48) if length not in voice.sovits.lengths_run][:3]
    monkeypatch.delenv("AGENT_TTS_OPENVINO_BACKGROUND_COMPILE", raising=False)
    assert compile_short_lengths_in_background(voice.sovits, voice.ge, fresh) is None  # off by default
    monkeypatch.setenv("AGENT_TTS_OPENVINO_BACKGROUND_COMPILE", "1")
    thread = compile_short_lengths_in_background(voice.sovits, voice.ge, fresh)
    thread.join(120)
    assert len(fresh) == 3 and not thread.is_alive() and set(fresh) <= voice.sovits.lengths_run

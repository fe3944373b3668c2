"""The ONNX Runtime backend on the gsv-v2 fixture: export, parity with torch and the golden arrays, the KV cache,
stale exports, the engine and the CLI (export-onnx, say --backend onnx, doctor)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from agent_tts.cli.main import main
from agent_tts.engine.ar_batch import ARRequest, BatchDecoder, DecodeOptions
from agent_tts.engine.sampling import SamplingOptions
from agent_tts.engine.synthesizer import Synthesizer
from agent_tts.onnx.export import export_voice, voice_sources
from agent_tts.onnx.graphs import stretch_linear
from agent_tts.onnx.manifest import GRAPH_FILES, MANIFEST, SOURCES_KEY, VERSION_KEY, StaleExportError, sha256_of
from agent_tts.onnx.parity import run_onnx_parity
from agent_tts.parity import snr_db
from agent_tts.voice import Voice, VoiceSpec
from engine_support import WORD_TEXT, check_word_times, write_fixture_voice


@pytest.fixture(scope="module")
def spec(gsv_v2_fixture, tmp_path_factory) -> VoiceSpec:
    return VoiceSpec.from_toml(write_fixture_voice(gsv_v2_fixture, tmp_path_factory.mktemp("voice")))


@pytest.fixture(scope="module")
def export_dir(spec, tmp_path_factory) -> Path:
    return export_voice(spec, tmp_path_factory.mktemp("onnx") / "fixture")


@pytest.fixture(scope="module")
def torch_voice(spec) -> Voice:
    return Voice.load(spec)


@pytest.fixture(scope="module")
def onnx_voice(spec, export_dir) -> Voice:
    return Voice.load(spec, backend="onnx", onnx_dir=export_dir)


def test_export_writes_every_graph_and_a_manifest_of_its_sources(spec, export_dir):
    for name in GRAPH_FILES:
        assert (export_dir / name).stat().st_size > 0
    assert not export_dir.with_name(export_dir.name + ".partial").exists()
    manifest = json.loads((export_dir / MANIFEST).read_text())
    assert manifest["voice_version"] == "v2"
    assert manifest["sources"]["gpt"]["files"][0]["sha256"] == sha256_of(spec.gpt)
    assert manifest["sources"]["sovits"]["files"][0]["sha256"] == sha256_of(spec.sovits)
    bert_files = {record["name"] for record in manifest["sources"]["bert"]["files"]}
    assert "config.json" in bert_files and len(bert_files) >= 3
    import onnx

    stamp = {entry.key: entry.value for entry in onnx.load(str(export_dir / "gpt_step.onnx")).metadata_props}
    assert stamp[VERSION_KEY] == "v2" and stamp[SOURCES_KEY] == manifest["sources_sha256"]


def test_onnx_parity_on_the_fixture_passes_every_item(gsv_v2_fixture, tmp_path):
    results = list(run_onnx_parity(gsv_v2_fixture, tmp_path / "export"))
    failed = [result.line() for result in results if not result.passed]
    assert not failed, "\n".join(failed)
    names = {result.name for result in results}
    for case in ("0", "1"):
        for mode in ("greedy", "greedy_noeos"):
            assert {f"onnx_ar{case}_{mode}_logits_vs_torch", f"onnx_ar{case}_{mode}_tokens_vs_torch",
                    f"onnx_ar{case}_{mode}_tokens_vs_golden"} <= names
        assert {f"onnx_decode{case}_speed1p0_vs_torch", f"onnx_decode{case}_speed1p25_vs_golden"} <= names
    greedy = next(result for result in results if result.name == "onnx_ar0_greedy_tokens_vs_torch")
    assert greedy.error.startswith("first 100/")


def test_kv_cache_is_preallocated_and_written_in_place(torch_voice, onnx_voice, gsv_v2_fixture):
    phone_ids = torch.from_numpy(np.load(gsv_v2_fixture / "golden" / "ar0_all_phone_ids.npy").astype(np.int64))
    bert = torch.from_numpy(np.load(gsv_v2_fixture / "golden" / "ar0_all_bert.npy"))
    options = DecodeOptions(SamplingOptions(top_k=1), max_tokens=4, suppress_eos=True)
    decoders = {}
    for name, voice in (("onnx", onnx_voice), ("torch", torch_voice)):
        decoder = decoders[name] = BatchDecoder(voice.gpt)
        row = decoder.add(ARRequest(phone_ids, bert, torch_voice.prompt_codes[0], options))
        if name == "onnx":
            buffers = decoder.cache.row_caches[0]
            pointers = (buffers.keys.pointer, buffers.values.pointer)
        while not row.finished:
            decoder.step([row])
        assert len(row.tokens) == 4
    length = phone_ids.shape[0] + torch_voice.prompt_codes.shape[1] + 3
    onnx_cache, torch_cache = decoders["onnx"].cache, decoders["torch"].cache
    assert onnx_cache.lengths[0] == torch_cache.lengths[0] == length
    buffers = onnx_cache.row_caches[0]
    assert (buffers.keys.pointer, buffers.values.pointer) == pointers
    # Our layout is [layer, 1, position, dim]; torch's is [layer, row, head, position, head_dim].
    layers, _, heads, _, head_dim = torch_cache.k.shape
    expected = torch_cache.k[:, :1, :, :length].permute(0, 1, 3, 2, 4).reshape(layers, 1, length, heads * head_dim)
    ours = buffers.keys.numpy()
    assert np.abs(ours[:, :, :length] - expected.numpy()).max() < 1e-3 * np.abs(expected.numpy()).max()
    assert not ours[:, :, length:].any()


@pytest.mark.parametrize("length, frames", [(2, 3), (24, 24), (24, 31), (50, 41), (7, 20)])
def test_stretch_linear_is_torch_linear_interpolation(length, frames):
    hidden = torch.randn(1, 4, length)
    expected = F.interpolate(hidden, size=frames, mode="linear")
    assert torch.allclose(stretch_linear(hidden, torch.tensor([frames])), expected, atol=1e-6)


async def test_the_engine_streams_the_same_audio_on_both_backends(torch_voice, onnx_voice):
    text = "Hello there, this is the streaming engine on two backends."
    audio = {}
    for name, voice in (("torch", torch_voice), ("onnx", onnx_voice)):
        synthesizer = Synthesizer(voice)
        chunks = [chunk async for chunk in synthesizer.stream(text, seed=3, top_k=1, fixed_tokens_per_phone=2.0)]
        synthesizer.close()
        assert len(chunks) > 2
        audio[name] = np.concatenate([chunk.pcm for chunk in chunks])
    assert audio["onnx"].shape == audio["torch"].shape
    assert snr_db(audio["onnx"], audio["torch"]) >= 40


async def test_two_streams_at_once_on_one_onnx_voice_match_one_after_the_other(onnx_voice):
    """Each stream owns its KV cache and logits buffer: concurrent decoding on one voice changes nothing."""
    texts = ("The first speaker talks about the weather today.", "A second stream reads another sentence aloud.")
    options = dict(seed=2, fixed_tokens_per_phone=2.0)

    async def speak(text: str) -> np.ndarray:
        synthesizer = Synthesizer(onnx_voice)
        return np.concatenate([chunk.pcm async for chunk in synthesizer.stream(text, **options)])

    alone = [await speak(text) for text in texts]
    together = await asyncio.gather(*(speak(text) for text in texts))
    for single, concurrent in zip(alone, together):
        assert np.array_equal(single, concurrent)


async def test_closing_an_onnx_stream_stops_it_and_the_next_request_runs(onnx_voice):
    synthesizer = Synthesizer(onnx_voice)
    stream = synthesizer.stream("The first request is long enough to be cut short, clause after clause.",
                                fixed_tokens=300, seed=1)
    first = await stream.__anext__()
    assert first.pcm.size
    await stream.aclose()
    assert synthesizer.steps_after_cancel == 0 and synthesizer.decodes_after_cancel == 0
    chunks = [chunk async for chunk in synthesizer.stream("And the next one runs.", seed=1)]
    synthesizer.close()
    assert chunks and chunks[-1].last


def test_a_changed_source_file_makes_the_export_stale(spec, export_dir, tmp_path):
    copy = tmp_path / "s1.ckpt"
    shutil.copyfile(spec.gpt, copy)
    moved = VoiceSpec(spec.name, copy, spec.sovits, spec.ref_audio, spec.ref_text, spec.ref_language,
                      spec.hubert, spec.bert)
    assert Voice.load(moved, backend="onnx", onnx_dir=export_dir).backend == "onnx"  # same bytes, new mtime
    data = bytearray(copy.read_bytes())
    data[-100] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(StaleExportError, match=r"stale \(gpt changed.*agent-tts export-onnx fixture"):
        Voice.load(moved, backend="onnx", onnx_dir=export_dir)
    with pytest.raises(StaleExportError, match="no ONNX export here.*agent-tts export-onnx"):
        Voice.load(spec, backend="onnx", onnx_dir=tmp_path / "nothing")
    assert set(voice_sources(spec, "v2")) == {"gpt", "sovits", "hubert", "bert"}


def test_a_graph_from_another_export_is_refused(spec, export_dir, tmp_path):
    import onnx

    mixed = tmp_path / "mixed"
    shutil.copytree(export_dir, mixed)
    model = onnx.load(str(mixed / "sovits_decoder.onnx"))
    for entry in model.metadata_props:
        if entry.key == SOURCES_KEY:
            entry.value = "0" * 64
    onnx.save(model, str(mixed / "sovits_decoder.onnx"))
    with pytest.raises(StaleExportError, match="sovits_decoder.onnx: this graph was not exported with the rest"):
        Voice.load(spec, backend="onnx", onnx_dir=mixed)


def test_cli_exports_then_speaks_on_the_onnx_backend_and_doctor_reports_it(spec, torch_voice, tmp_path, monkeypatch,
                                                                          capsys):
    monkeypatch.setenv("AGENT_TTS_HOME", str(tmp_path / "home"))
    voices = tmp_path / "home" / "voices"
    voices.mkdir(parents=True)
    (voices / "fixture.toml").write_text(spec.to_toml(), encoding="utf-8")

    assert main(["doctor"]) == 0
    report = capsys.readouterr().out
    assert "CPUExecutionProvider" in report and "torch" in report
    assert "AVX2 " in report and "--precision auto on the CPU: " in report
    assert "fixture: " in report and "no ONNX export (make one with: agent-tts export-onnx fixture)" in report

    assert main(["export-onnx", "fixture"]) == 0
    err = capsys.readouterr().err
    assert "9/9 done" in err and str(tmp_path / "home" / "onnx" / "fixture") in err

    out = tmp_path / "said.wav"
    assert main(["say", "--voice", "fixture", "--backend", "onnx", "--out", str(out), "Hello from the export."]) == 0
    assert "(onnx backend, cpu, fp32)" in capsys.readouterr().err
    import soundfile

    pcm, rate = soundfile.read(out)
    assert rate == torch_voice.sample_rate and len(pcm) > rate * 0.3 and np.abs(pcm).max() > 0

    assert main(["doctor"]) == 0
    assert "ONNX export up to date" in capsys.readouterr().out

    from agent_tts.pipecat.tts_service import GPTSoVITSTTSService

    service = GPTSoVITSTTSService(voice="fixture", backend="onnx", warm_up=False)
    assert service.engine.voice.backend == "onnx"


def test_the_onnx_backend_refuses_int8_and_unknown_backends(spec, export_dir):
    from agent_tts.errors import AgentTTSError

    with pytest.raises(AgentTTSError, match="int8"):
        Voice.load(spec, backend="onnx", onnx_dir=export_dir, precision="int8")
    with pytest.raises(AgentTTSError, match="backend must be one of"):
        Voice.load(spec, backend="tensorrt")


async def test_the_onnx_backend_times_every_word_without_the_probe(onnx_voice):
    """The exported step graph has no attention probe: words are placed at an average rate, still all of them."""
    chunks = [chunk async for chunk in Synthesizer(onnx_voice).stream(WORD_TEXT, seed=1, fixed_tokens_per_phone=2.5)]
    assert len(check_word_times(chunks, WORD_TEXT)) == 10 + 13

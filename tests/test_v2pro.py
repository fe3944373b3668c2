"""v2Pro and v2ProPlus voices: detection, strict loading, the speaker-verification model, the voice with auxiliary
references, the streaming engine, parity on the gsv-v2pro-tiny fixture, and our own tiny v2ProPlus files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from agent_tts.engine.synthesizer import SynthesisOptions, Synthesizer, whole_utterance
from agent_tts.errors import CheckpointError, UnsupportedVersionError
from agent_tts.models.checkpoints import (load_sovits, load_speaker_verification, read_sovits_checkpoint,
                                          read_header_version)
from agent_tts.models.sovits import SoVITSModel
from agent_tts.models.synthetic import (TINY_SOVITS_MODEL, TINY_V2PRO_SOVITS_MODEL, TINY_V2PROPLUS_SOVITS_MODEL,
                                        write_sovits_checkpoint)
from agent_tts.models.synthetic_voice import write_synthetic_voice
from agent_tts.parity import relative_max_error, run_parity, snr_db
from agent_tts.voice import Voice, VoiceSpec

SV_FILE = Path("pretrained") / "sv" / "pretrained_eres2netv2w24s4ep4.ckpt"


def _golden(fixture: Path, name: str) -> np.ndarray:
    return np.load(fixture / "golden" / f"{name}.npy")


def _fixture_spec(fixture: Path, aux: tuple[Path, ...] = ()) -> VoiceSpec:
    text = json.loads((fixture / "ref" / "ref.txt").read_text(encoding="utf-8"))["text"]
    return VoiceSpec.with_pretrained("v2pro", fixture / "models" / "s1.ckpt", fixture / "models" / "s2.pth",
                                     fixture / "ref" / "ref.wav", text, "zh", fixture / "pretrained", aux)


@pytest.fixture(scope="module")
def two_reference_voice(gsv_v2pro_fixture) -> Voice:
    return Voice.load(_fixture_spec(gsv_v2pro_fixture, (gsv_v2pro_fixture / "ref" / "ref_48k.wav",)))


def test_official_v2pro_files_are_detected_by_header_and_load_strictly(gsv_v2pro_fixture):
    path = gsv_v2pro_fixture / "models" / "s2.pth"
    assert read_header_version(path) == "v2Pro"
    raw = read_sovits_checkpoint(path)
    sovits = load_sovits(raw)
    assert sovits.config.version == "v2Pro" and sovits.config.gin_channels == 128  # from the file's config
    with torch.device("meta"):
        fresh = SoVITSModel(sovits.config)
    assert set(fresh.state_dict()) == set(raw.weights)
    assert {"sv_emb.weight", "ge_to512.weight", "prelu.weight"} <= set(raw.weights)

    sv_path = gsv_v2pro_fixture / SV_FILE
    sv = load_speaker_verification(sv_path)
    stored = torch.load(sv_path, map_location="cpu", weights_only=True)
    assert set(sv.state_dict()) == set(stored) and len(stored) == 1001
    assert 53.5e6 < sum(p.numel() for p in sv.parameters()) < 53.6e6


def test_untagged_files_are_detected_by_their_config_then_their_weights(tmp_path):
    pro = write_sovits_checkpoint(tmp_path / "pro.pth", TINY_V2PRO_SOVITS_MODEL)
    assert read_header_version(pro) is None and read_sovits_checkpoint(pro).version == "v2Pro"
    plus = write_sovits_checkpoint(tmp_path / "plus.pth", TINY_V2PROPLUS_SOVITS_MODEL)
    stored = torch.load(plus, weights_only=True)
    stored["config"]["model"].pop("version")
    torch.save(stored, plus)
    assert read_sovits_checkpoint(plus).version == "v2ProPlus"  # sv_emb weights, ProPlus's first kernel of 20
    assert read_sovits_checkpoint(write_sovits_checkpoint(tmp_path / "v2.pth", TINY_SOVITS_MODEL)).version == "v2"


def test_our_tiny_v2proplus_voice_loads_and_its_wider_generator_runs(tmp_path):
    toml = write_synthetic_voice(tmp_path / "plus", real_size=False, version="v2ProPlus")
    spec = VoiceSpec.from_toml(toml)
    assert spec.sovits.read_bytes()[:2] == b"06" and spec.sv.is_file()
    voice = Voice.load(spec)
    assert voice.version == "v2ProPlus"
    generator = voice.sovits.dec
    assert generator.conv_pre.out_channels == TINY_V2PROPLUS_SOVITS_MODEL["upsample_initial_channel"]
    assert generator.ups[0].kernel_size == (20,)
    assert voice.ge.shape == (1, TINY_V2PROPLUS_SOVITS_MODEL["gin_channels"], 1)
    assert len(voice.reference.clips) == 1 and voice.reference.clips[0].sv_embedding.shape == (1, 20480)
    with torch.inference_mode():
        wav = voice.sovits.decode(torch.randint(0, 1024, (1, 1, 15)), torch.randint(1, 300, (1, 9)), voice.ge,
                                  noise_scale=0.0)
    assert wav.shape == (1, 1, 15 * 2 * 640) and torch.isfinite(wav).all()


def test_untagged_v3_v4_files_are_refused_naming_the_version(tmp_path):
    path = write_sovits_checkpoint(tmp_path / "v3.pth", TINY_SOVITS_MODEL)
    stored = torch.load(path, weights_only=True)
    stored["weight"]["cfm.estimator.proj.weight"] = torch.zeros(2, 2, dtype=torch.float16)
    torch.save(stored, path)
    with pytest.raises(UnsupportedVersionError, match="GPT-SoVITS v3/v4 SoVITS file detected") as exc:
        load_sovits(path)
    assert "\n" not in str(exc.value)


def test_a_v2pro_voice_without_the_sv_model_says_which_file_and_where_upstream_keeps_it(gsv_v2pro_fixture,
                                                                                        tmp_path):
    pretrained = tmp_path / "pretrained"
    pretrained.mkdir()
    for folder in ("chinese-hubert-base", "chinese-roberta-wwm-ext-large"):
        (pretrained / folder).symlink_to(gsv_v2pro_fixture / "pretrained" / folder)
    spec = _fixture_spec(gsv_v2pro_fixture)
    spec = VoiceSpec.with_pretrained(spec.name, spec.gpt, spec.sovits, spec.ref_audio, spec.ref_text, "zh", pretrained)
    with pytest.raises(CheckpointError) as exc:
        Voice.load(spec)
    message = str(exc.value)
    assert "\n" not in message and str(pretrained / "sv" / "pretrained_eres2netv2w24s4ep4.ckpt") in message
    assert "v2Pro voices need" in message and "GPT_SoVITS/pretrained_models/sv/" in message
    assert "agent-tts download" in message


def test_the_voice_caches_each_clips_sv_embedding_and_averages_the_speaker_vectors(gsv_v2pro_fixture,
                                                                                   two_reference_voice):
    voice, fixture = two_reference_voice, gsv_v2pro_fixture
    main, aux = voice.reference.clips
    assert relative_max_error(main.sv_embedding[0].numpy(), _golden(fixture, "sv_embedding")) <= 1e-4
    assert relative_max_error(aux.sv_embedding[0].numpy(), _golden(fixture, "aux48k_sv_embedding")) <= 1e-4
    assert relative_max_error(main.ge[0].numpy(), _golden(fixture, "ge")) <= 1e-4
    expected = (_golden(fixture, "ge") + _golden(fixture, "aux48k_ge")) / 2
    assert relative_max_error(voice.ge[0].numpy(), expected) <= 1e-4
    assert voice.prompt_codes[0].tolist() == _golden(fixture, "prompt_semantic").tolist()  # the main clip's
    with torch.inference_mode():
        wav = voice.sovits.decode(torch.from_numpy(_golden(fixture, "ar0_greedy_tokens"))[None, None],
                                  torch.from_numpy(_golden(fixture, "ar0_target_phone_ids"))[None], voice.ge,
                                  noise_scale=0.0)
    assert snr_db(wav[0, 0].numpy(), _golden(fixture, "decode0_tworefs_speed1p0")) >= 60


def test_auxiliary_references_and_the_sv_path_round_trip_through_the_voice_file(gsv_v2pro_fixture, tmp_path):
    spec = _fixture_spec(gsv_v2pro_fixture, (gsv_v2pro_fixture / "ref" / "ref_48k.wav",))
    path = tmp_path / "v.toml"
    path.write_text(spec.to_toml(), encoding="utf-8")
    again = VoiceSpec.from_toml(path)
    assert again.aux_ref_audio == tuple(p.resolve() for p in spec.aux_ref_audio)
    assert again.sv == (gsv_v2pro_fixture / SV_FILE).resolve()
    path.write_text('gpt = "a"\nsovits = "b"\nref_audio = "c"\nref_text = "hi"\npretrained = "p"\n'
                    'aux_ref_audio = ["d.wav"]\n', encoding="utf-8")
    relative = VoiceSpec.from_toml(path)
    assert relative.aux_ref_audio == (tmp_path / "d.wav",) and relative.sv == tmp_path / "p" / "sv" / SV_FILE.name


async def test_the_streaming_engine_speaks_a_v2pro_voice_like_the_whole_utterance(two_reference_voice):
    text = "欢迎使用语音合成服务，请问有什么可以帮您？"
    options = dict(seed=3, fixed_tokens=80)
    synthesizer = Synthesizer(two_reference_voice)
    chunks = [chunk async for chunk in synthesizer.stream(text, **options)]
    synthesizer.close()
    streamed = np.concatenate([chunk.pcm for chunk in chunks])
    whole = whole_utterance(two_reference_voice, text, SynthesisOptions(**options))
    assert len(chunks) > 2 and len(streamed) == len(whole) and len(whole) % (80 * 2 * 640) == 0
    # 30 dB on the gsv-v2 fixture; this fixture's generator (gains x3, near full scale) gives 28 dB, and upstream's
    # own fixed-chunk streaming 19 dB against its whole decode (parity's stream0_engine_vs_upstream_streaming).
    assert snr_db(streamed, whole) >= 25.0


def test_parity_on_the_v2pro_fixture_passes_every_item(gsv_v2pro_fixture):
    results = list(run_parity(gsv_v2pro_fixture))
    failed = [result.line() for result in results if not result.passed]
    assert not failed, "\n".join(failed)
    names = {result.name for result in results}
    golden = {path.stem for path in (gsv_v2pro_fixture / "golden").glob("*.npy")}
    assert golden <= names  # every golden array is checked
    assert "stream0_engine_vs_upstream_streaming" in names


def test_parity_reports_a_perturbed_sv_embedding_and_a_wrong_stream_as_failed(gsv_v2pro_fixture, tmp_path):
    fixture = tmp_path / "fixture"
    fixture.mkdir()
    for name in ("models", "pretrained", "ref"):
        (fixture / name).symlink_to(gsv_v2pro_fixture / name)
    shutil.copytree(gsv_v2pro_fixture / "golden", fixture / "golden")
    np.save(fixture / "golden" / "sv_embedding.npy", _golden(gsv_v2pro_fixture, "sv_embedding") * 1.001)
    stream = _golden(gsv_v2pro_fixture, "streamfixed0_run_int16").copy()
    stream[5000] += 3
    np.save(fixture / "golden" / "streamfixed0_run_int16.npy", stream)
    results = {}
    for result in run_parity(fixture):  # case 0's items are enough
        results[result.name] = result
        if result.name == "streamfixed0_run_int16":
            break
    assert not results["sv_embedding"].passed and results["sv_fbank"].passed and results["ge"].passed
    assert not results["streamfixed0_run_int16"].passed and results["streamfixed0_call1_audio"].passed


def test_onnx_export_of_a_v2pro_voice_records_its_version_and_passes_parity(gsv_v2pro_fixture, tmp_path):
    from agent_tts.onnx.parity import run_onnx_parity

    results = list(run_onnx_parity(gsv_v2pro_fixture, tmp_path / "export"))
    failed = [result.line() for result in results if not result.passed]
    assert not failed, "\n".join(failed)
    manifest = json.loads((tmp_path / "export" / "manifest.json").read_text())
    assert manifest["voice_version"] == "v2Pro" and manifest["sovits_config"]["sv_dim"] == 20480
    assert "sv" in manifest["sources"] and (tmp_path / "export" / "speaker_verification.onnx").is_file()
    names = {result.name for result in results}
    assert {"onnx_sv_embedding_vs_golden", "onnx_aux48k_ge_vs_golden", "onnx_decode0_tworefs_speed1p0_vs_golden",
            "onnx_ar0_teacher_forced_logits_vs_golden", "onnx_decode1_speed1p25_vs_torch"} <= names


def test_doctor_names_the_version_and_a_missing_sv_model(gsv_v2pro_fixture, tmp_path, monkeypatch, capsys):
    from agent_tts.cli.main import main

    monkeypatch.setenv("AGENT_TTS_HOME", str(tmp_path / "home"))
    voices = tmp_path / "home" / "voices"
    voices.mkdir(parents=True)
    spec = _fixture_spec(gsv_v2pro_fixture)
    (voices / "pro.toml").write_text(spec.to_toml(), encoding="utf-8")
    assert main(["doctor"]) == 0
    assert "pro: v2Pro, zh" in capsys.readouterr().out
    missing = tmp_path / "nowhere" / "sv.ckpt"
    (voices / "pro.toml").write_text(spec.to_toml().replace(str(spec.sv.resolve()), str(missing)), encoding="utf-8")
    assert main(["doctor"]) == 1
    report = capsys.readouterr().out
    assert f"problem: pro: {missing}: no such file; v2Pro voices need the speaker-verification model" in report


def test_sinc_resampling_keeps_a_tone_and_upstreams_length():
    from agent_tts.audio.sinc_resample import sinc_resample

    t = np.arange(48001) / 48000
    tone = torch.from_numpy(np.sin(2 * np.pi * 440 * t).astype(np.float32))
    out = sinc_resample(tone[None], 48000, 32000)[0].numpy()
    assert len(out) == int(np.ceil(48001 * 32000 / 48000))
    expected = np.sin(2 * np.pi * 440 * np.arange(len(out)) / 32000)
    assert np.abs(out - expected)[200:-200].max() < 2e-3  # away from the zero-padded edges


def test_the_fbank_puts_a_tone_in_its_mel_band():
    from agent_tts.models.fbank import kaldi_fbank

    samples = 16000
    wav = torch.from_numpy((0.5 * np.sin(2 * np.pi * 1000 * np.arange(samples) / 16000)).astype(np.float32))
    fbank = kaldi_fbank(wav)
    assert fbank.shape == (1 + (samples - 400) // 160, 80)
    mel = lambda hz: 1127 * np.log(1 + hz / 700)  # noqa: E731 - Kaldi's mel scale
    centers = mel(20) + (np.arange(80) + 1) * (mel(8000) - mel(20)) / 81
    loudest = int(fbank.mean(dim=0).argmax())
    assert abs(centers[loudest] - mel(1000)) <= (mel(8000) - mel(20)) / 81


async def test_the_pipecat_service_speaks_a_v2pro_voice_file(gsv_v2pro_fixture, tmp_path):
    from pipecat.frames.frames import TTSAudioRawFrame, TTSSpeakFrame
    from pipecat.tests.utils import SleepFrame, run_test

    from agent_tts.pipecat.tts_service import GPTSoVITSTTSService

    toml = tmp_path / "pro.toml"
    toml.write_text(_fixture_spec(gsv_v2pro_fixture).to_toml(), encoding="utf-8")
    tts = GPTSoVITSTTSService(voice=str(toml), engine_options={"fixed_tokens_per_phone": 2.0, "seed": 3},
                              warm_up=False)
    assert isinstance(tts.engine, Synthesizer) and tts.engine.voice.version == "v2Pro"
    down, _ = await run_test(tts, frames_to_send=[TTSSpeakFrame("我们明天早上八点见面。"), SleepFrame(sleep=3.0)],
                             start_timeout=30)
    pcm = np.frombuffer(b"".join(f.audio for f in down if isinstance(f, TTSAudioRawFrame)), np.int16)
    assert len(pcm) > 0.5 * 24000 and np.abs(pcm).max() > 0


def test_voices_add_registers_a_v2pro_voice_with_an_auxiliary_clip(gsv_v2pro_fixture, tmp_path, monkeypatch, capsys):
    from agent_tts.cli.main import main

    monkeypatch.setenv("AGENT_TTS_HOME", str(tmp_path / "home"))
    spec = _fixture_spec(gsv_v2pro_fixture)
    assert main(["voices", "add", "pro", "--gpt", str(spec.gpt), "--sovits", str(spec.sovits), "--ref",
                 str(spec.ref_audio), "--aux-ref", str(gsv_v2pro_fixture / "ref" / "ref_48k.wav"), "--ref-text",
                 spec.ref_text, "--ref-language", "zh", "--pretrained", str(gsv_v2pro_fixture / "pretrained")]) == 0
    assert "added voice 'pro'" in capsys.readouterr().out
    registered = VoiceSpec.by_name("pro")
    assert registered.aux_ref_audio == ((gsv_v2pro_fixture / "ref" / "ref_48k.wav").resolve(),)
    assert registered.sv == (gsv_v2pro_fixture / SV_FILE).resolve()

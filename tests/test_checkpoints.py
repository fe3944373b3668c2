"""The loader reads the official files as they are and fails with one clear line otherwise."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from agent_tts.errors import CheckpointError, UnsupportedVersionError
from agent_tts.models.checkpoints import (
    load_gpt, load_sovits, read_gpt_checkpoint, read_sovits_checkpoint,
)
from agent_tts.models.sovits import SoVITSModel
from agent_tts.models.synthetic import (
    TINY_GPT_MODEL, TINY_SOVITS_MODEL, write_gpt_checkpoint, write_sovits_checkpoint,
)
from agent_tts.models.t2s import Text2SemanticModel
from child_process import run_child


def _one_line(exc: pytest.ExceptionInfo, path: Path) -> str:
    message = str(exc.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def test_official_fixture_files_load_strictly(gsv_v2_fixture: Path) -> None:
    gpt = load_gpt(gsv_v2_fixture / "models" / "s1.ckpt")
    sovits = load_sovits(gsv_v2_fixture / "models" / "s2.pth")
    assert isinstance(gpt, Text2SemanticModel) and isinstance(sovits, SoVITSModel)
    stored = torch.load(gsv_v2_fixture / "models" / "s2.pth", map_location="cpu", weights_only=True)["weight"]
    with torch.device("meta"):
        fresh = SoVITSModel(sovits.config)
    assert set(fresh.state_dict()) == set(stored)
    assert not any(key.startswith("enc_q.") for key in fresh.state_dict())
    assert gpt.config.num_layers == 2 and gpt.config.feedforward_dim == 256  # read from the file
    assert all(p.dtype == torch.float32 for p in gpt.parameters())


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.ckpt"
    with pytest.raises(CheckpointError) as exc:
        load_gpt(path)
    assert "no such file" in _one_line(exc, path)


def test_truncated_file(gsv_v2_fixture: Path, tmp_path: Path) -> None:
    data = (gsv_v2_fixture / "models" / "s2.pth").read_bytes()
    path = tmp_path / "s2_truncated.pth"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as exc:
        load_sovits(path)
    assert "truncated or corrupt" in _one_line(exc, path)


@pytest.mark.parametrize("content", [b"RIFF\x24\x00\x00\x00WAVEfmt ", b"hello, not a model\n", b""])
def test_non_checkpoint_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as exc:
        load_sovits(path)
    message = _one_line(exc, path)
    assert "not a torch checkpoint (expected a GPT-SoVITS SoVITS (.pth) file)" in message


def test_foreign_torch_file(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    with pytest.raises(CheckpointError) as exc:
        load_gpt(path)
    assert "not a GPT-SoVITS GPT (.ckpt) file" in _one_line(exc, path)


def test_gpt_and_sovits_files_swapped(gsv_v2_fixture: Path) -> None:
    gpt_path = gsv_v2_fixture / "models" / "s1.ckpt"
    sovits_path = gsv_v2_fixture / "models" / "s2.pth"
    with pytest.raises(CheckpointError) as exc:
        load_sovits(gpt_path)
    assert "is this a GPT .ckpt?" in _one_line(exc, gpt_path)
    with pytest.raises(CheckpointError) as exc:
        load_gpt(sovits_path)
    assert "is this a SoVITS .pth file?" in _one_line(exc, sovits_path)


def test_v1_sovits_detected_by_symbol_count(tmp_path: Path) -> None:
    path = write_sovits_checkpoint(tmp_path / "v1.pth", TINY_SOVITS_MODEL, n_symbols=322)
    assert read_sovits_checkpoint(path).version == "v1"
    with pytest.raises(UnsupportedVersionError) as exc:
        load_sovits(path)
    assert "v1 SoVITS file detected" in _one_line(exc, path)


def test_v1_gpt_detected_by_phoneme_vocabulary(tmp_path: Path) -> None:
    path = write_gpt_checkpoint(tmp_path / "v1.ckpt", dict(TINY_GPT_MODEL, phoneme_vocab_size=512))
    assert read_gpt_checkpoint(path).version == "v1"
    with pytest.raises(UnsupportedVersionError) as exc:
        load_gpt(path)
    assert "v1 GPT file detected" in _one_line(exc, path)


@pytest.mark.parametrize("header, version", [(b"00", "v1"), (b"02", "v3"), (b"03", "v3"), (b"04", "v4")])
def test_tagged_versions_are_reported(tmp_path: Path, header: bytes, version: str) -> None:
    path = write_sovits_checkpoint(tmp_path / f"{version}.pth", TINY_SOVITS_MODEL, header=header)
    with pytest.raises(UnsupportedVersionError) as exc:
        load_sovits(path)
    message = _one_line(exc, path)
    assert f"GPT-SoVITS {version} SoVITS file detected" in message
    assert "implements v2, v2Pro and v2ProPlus" in message


def test_v2_file_with_version_tag_loads(tmp_path: Path) -> None:
    plain = write_sovits_checkpoint(tmp_path / "plain.pth", TINY_SOVITS_MODEL, seed=3)
    tagged = write_sovits_checkpoint(tmp_path / "tagged.pth", TINY_SOVITS_MODEL, seed=3, header=b"01")
    assert tagged.read_bytes()[:2] == b"01"
    a, b = load_sovits(plain), load_sovits(tagged)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


def test_cli_reports_a_bad_file_in_one_line(tmp_path: Path) -> None:
    fixture = tmp_path / "fixture"
    (fixture / "golden").mkdir(parents=True)
    (fixture / "models").mkdir()
    (fixture / "manifest.json").write_text("{}")
    (fixture / "models" / "s1.ckpt").write_bytes(b"garbage")
    completed = run_child([sys.executable, "-m", "agent_tts.cli.main", "parity", str(fixture)], timeout=120)
    assert completed.returncode == 2
    errors = [line for line in completed.stderr.splitlines() if line.startswith("agent-tts: error:")]
    assert len(errors) == 1 and "s1.ckpt" in errors[0] and "Traceback" not in completed.stderr


def test_legacy_non_zip_torch_file_loads(tmp_path: Path) -> None:
    zipped = write_gpt_checkpoint(tmp_path / "zip.ckpt", TINY_GPT_MODEL, seed=5)
    legacy = tmp_path / "legacy.ckpt"
    torch.save(torch.load(zipped, weights_only=True), legacy, _use_new_zipfile_serialization=False)
    assert legacy.read_bytes()[:2] == b"\x80\x02"
    a, b = load_gpt(zipped), load_gpt(legacy)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_config_pickled_as_a_training_code_object_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Upstream pickles its utils.HParams as the config; that class is not importable here."""
    module_dir = tmp_path / "training_code"
    module_dir.mkdir()
    (module_dir / "gsv_utils.py").write_text(
        "class HParams:\n"
        "    def __init__(self, **kwargs):\n"
        "        for k, v in kwargs.items():\n"
        "            setattr(self, k, HParams(**v) if isinstance(v, dict) else v)\n"
    )
    monkeypatch.syspath_prepend(str(module_dir))
    import gsv_utils

    plain = write_sovits_checkpoint(tmp_path / "plain.pth", TINY_SOVITS_MODEL, seed=4)
    stored = torch.load(plain, weights_only=True)
    stored["config"] = gsv_utils.HParams(**stored["config"])
    official = tmp_path / "official.pth"
    torch.save(stored, official)
    monkeypatch.delitem(sys.modules, "gsv_utils")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(module_dir)])

    model = load_sovits(official)
    assert model.config.filter_channels == TINY_SOVITS_MODEL["filter_channels"]
    assert model.config.sampling_rate == 32000


def test_a_file_that_would_run_code_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pth"
    torch.save({"weight": {"a": torch.zeros(1)}, "config": Payload()}, path)
    with pytest.raises(CheckpointError) as exc:
        load_sovits(path)
    _one_line(exc, path)
    assert not marker.exists()

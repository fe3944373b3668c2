"""The voice registry and `agent-tts voices`: add (validated by loading), list, default, remove; engine choice."""

from __future__ import annotations

import pytest

from agent_tts.cli.main import main
from agent_tts.default_voice.engine import DefaultVoiceSynthesizer
from agent_tts.engine.synthesizer import Synthesizer
from agent_tts.engines import open_engine
from agent_tts.errors import AgentTTSError, CheckpointError
from agent_tts.voice import VoiceSpec
from agent_tts.voices import VoiceRegistry
from engine_support import REFERENCE_TEXT


def fixture_voice(root, name="alice", **changes) -> VoiceSpec:
    fields = dict(name=name, gpt=root / "models" / "s1.ckpt", sovits=root / "models" / "s2.pth",
                  ref_audio=root / "ref" / "ref.wav", ref_text=REFERENCE_TEXT, ref_language="en",
                  pretrained=root / "pretrained")
    fields.update(changes)
    return VoiceSpec.with_pretrained(**fields)


def test_add_list_default_remove(gsv_v2_fixture, tmp_path):
    registry = VoiceRegistry(tmp_path)
    assert registry.names() == [] and registry.default_name() is None
    registry.add(fixture_voice(gsv_v2_fixture, "alice"))
    assert registry.default_name() == "alice"          # the first voice becomes the default
    registry.add(fixture_voice(gsv_v2_fixture, "bob"), validate=False)
    assert registry.names() == ["alice", "bob"] and registry.default_name() == "alice"
    spec = registry.spec("bob")
    assert spec.ref_text == REFERENCE_TEXT and spec.gpt.is_absolute() and spec.gpt.is_file()
    registry.set_default("bob")
    assert registry.default_name() == "bob"
    registry.remove("bob")
    assert registry.names() == ["alice"] and registry.default_name() == "alice"


@pytest.mark.parametrize("changes, message", [
    ({"name": "no spaces"}, "voice name"),
    ({"gpt": "missing.ckpt"}, "--gpt"),
    ({"ref_audio": "missing.wav"}, "--ref"),
    ({"pretrained": "nowhere"}, "agent-tts download"),
])
def test_add_refuses_bad_input_with_a_clear_message(gsv_v2_fixture, tmp_path, changes, message):
    changes = {key: (tmp_path / value if key != "name" else value) for key, value in changes.items()}
    with pytest.raises(AgentTTSError, match=message):
        VoiceRegistry(tmp_path / "voices").add(fixture_voice(gsv_v2_fixture, **changes))
    assert VoiceRegistry(tmp_path / "voices").names() == []


def test_add_loads_the_voice_and_keeps_nothing_when_it_fails(gsv_v2_fixture, tmp_path):
    registry = VoiceRegistry(tmp_path)
    swapped = fixture_voice(gsv_v2_fixture, gpt=gsv_v2_fixture / "models" / "s2.pth")  # SoVITS file as the GPT
    with pytest.raises(CheckpointError):
        registry.add(swapped)
    assert registry.names() == [] and not list(tmp_path.iterdir())
    registry.add(fixture_voice(gsv_v2_fixture))
    with pytest.raises(AgentTTSError, match="exists"):
        registry.add(fixture_voice(gsv_v2_fixture))


def test_engine_choice_default_voice_then_registered_voice(gsv_v2_fixture, tmp_path):
    registry = VoiceRegistry(tmp_path)
    choice = open_engine(registry=registry)
    assert isinstance(choice.engine, DefaultVoiceSynthesizer) and choice.is_default_voice
    assert "agent-tts voices add" in choice.description
    choice.engine.close()
    registry.add(fixture_voice(gsv_v2_fixture, "alice"), validate=False)
    choice = open_engine(registry=registry)
    assert isinstance(choice.engine, Synthesizer) and choice.engine.voice.name == "alice"
    registry.add(fixture_voice(gsv_v2_fixture, "bob"), validate=False)
    (tmp_path / "default").unlink()
    with pytest.raises(AgentTTSError, match="several voices"):
        open_engine(registry=registry)
    with pytest.raises(AgentTTSError, match="no voice named 'carol'"):
        open_engine("carol", registry=registry)


def test_voices_command(gsv_v2_fixture, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AGENT_TTS_HOME", str(tmp_path))
    assert main(["voices", "list"]) == 0
    assert "bundled default voice" in capsys.readouterr().out
    root = gsv_v2_fixture
    assert main(["voices", "add", "alice", "--gpt", str(root / "models" / "s1.ckpt"),
                 "--sovits", str(root / "models" / "s2.pth"), "--ref", str(root / "ref" / "ref.wav"),
                 "--ref-text", REFERENCE_TEXT, "--ref-language", "en", "--pretrained", str(root / "pretrained")]) == 0
    assert "added voice 'alice'" in capsys.readouterr().out
    assert main(["voices", "list"]) == 0
    assert capsys.readouterr().out.startswith("* alice  (en; s1.ckpt, s2.pth)")
    assert main(["voices", "remove", "bob"]) == 2
    assert "no voice named 'bob'" in capsys.readouterr().err
    assert main(["voices", "remove", "alice"]) == 0
    assert VoiceRegistry(tmp_path / "voices").names() == []

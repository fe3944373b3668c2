"""Voices: TOML descriptions, lookup by name, and what is derived from the reference clip once."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from agent_tts.errors import AgentTTSError, ReferenceAudioError
from agent_tts.parity import relative_max_error
from agent_tts.voice import Voice, VoiceSpec
from engine_support import REFERENCE_TEXT, write_fixture_voice


def test_fixture_voice_derives_the_reference_data(gsv_v2_fixture, tmp_path):
    voice = Voice.load(write_fixture_voice(gsv_v2_fixture, tmp_path))
    golden = gsv_v2_fixture / "golden"
    assert voice.prompt_codes[0].tolist() == np.load(golden / "prompt_semantic.npy").tolist()
    assert relative_max_error(voice.ge[0].numpy(), np.load(golden / "ge.npy")) <= 1e-4
    assert voice.ref_phonemes.phone_ids == np.load(golden / "ref_phone_ids.npy").tolist()
    assert voice.ref_bert.shape == (1024, len(voice.ref_phonemes.phones)) and not voice.ref_bert.any()
    assert voice.sample_rate == 32000 and voice.name == "fixture"


def test_voice_by_name_from_the_voices_folder(gsv_v2_fixture, tmp_path, monkeypatch):
    voices = tmp_path / "voices"
    voices.mkdir()
    write_fixture_voice(gsv_v2_fixture, voices, name="alice")
    monkeypatch.setenv("AGENT_TTS_HOME", str(tmp_path))
    assert VoiceSpec.by_name("alice").ref_text == REFERENCE_TEXT
    with pytest.raises(AgentTTSError, match=r"no voice named 'bob' .*known: alice"):
        VoiceSpec.by_name("bob")


@pytest.mark.parametrize("body, message", [
    ('gpt = "a"\nsovits = "b"\nref_audio = "c"\n', "missing ref_text"),
    ('gpt = "a"\nsovits = "b"\nref_audio = "c"\nref_text = "hi"\n', "set 'pretrained'"),
    ('gpt = "a"\nsovits = "b"\nref_audio = "c"\nref_text = "hi"\npretrained = "p"\nref_language = "fr"\n',
     "ref_language 'fr'"),
    ("gpt = \n", "not valid TOML"),
])
def test_bad_voice_files_get_one_line_errors(tmp_path, body, message):
    path = tmp_path / "v.toml"
    path.write_text(body)
    with pytest.raises(AgentTTSError, match=message):
        VoiceSpec.from_toml(path)


def test_relative_paths_are_relative_to_the_toml(tmp_path):
    path = tmp_path / "v.toml"
    path.write_text('gpt = "m/s1.ckpt"\nsovits = "m/s2.pth"\nref_audio = "r.wav"\nref_text = "hi"\npretrained = "p"\n')
    spec = VoiceSpec.from_toml(path)
    assert spec.gpt == tmp_path / "m" / "s1.ckpt" and spec.hubert == tmp_path / "p" / "chinese-hubert-base"
    assert spec.name == "v" and spec.ref_language == "auto"


def test_reference_clip_outside_3_to_10_seconds_is_refused(gsv_v2_fixture, tmp_path):
    short = tmp_path / "short.wav"
    soundfile.write(short, np.zeros(32000, np.float32), 32000)
    toml = write_fixture_voice(gsv_v2_fixture, tmp_path)
    toml.write_text(toml.read_text().replace(str(gsv_v2_fixture / "ref" / "ref.wav"), str(short)))
    with pytest.raises(ReferenceAudioError, match="1.0 s; use one of 3-10 s"):
        Voice.load(toml)

"""The sound-device player on a real ALSA device (a WAV file): resampling, barge-in stop, no device."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import soundfile

from pulse_support import pulse_null_sinks
from system_support import alsa_wav_device
from child_process import run_child

HERE = Path(__file__).resolve().parent


def run_scenario(name: str, env: dict) -> dict:
    completed = run_child([sys.executable, str(HERE / "player_scenarios.py"), name], env=env, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_audio_at_another_rate_is_resampled_to_the_device_rate(tmp_path):
    played_path = tmp_path / "played.wav"
    result = run_scenario("resample", alsa_wav_device(tmp_path, played_path))
    played, rate = soundfile.read(played_path)
    assert rate == 22050 and abs(result["played_seconds"] - 1.0) < 0.01
    audible = played[np.abs(played) > 0.01]
    crossings = np.count_nonzero(np.diff(np.signbit(audible)))
    assert abs(crossings / 2 - 440) < 5  # still a 440 Hz tone: right rate, nothing lost


def test_stop_drops_the_rest_of_the_turn_and_the_next_turn_plays(tmp_path):
    played_path = tmp_path / "played.wav"
    result = run_scenario("stop_then_next_turn", alsa_wav_device(tmp_path, played_path))
    assert result["first"]["stopped"] and not result["second"]["stopped"]
    assert result["first"]["played_seconds"] <= 0.5 + 1e-6
    assert abs(result["second"]["played_seconds"] - 0.5) < 1e-3
    played, _ = soundfile.read(played_path)
    assert np.abs(played).max() < 0.55  # the 0.9 chunks sent after the stop were never played


def test_no_sound_device_is_one_clear_error(tmp_path):
    (tmp_path / "alsa").mkdir()
    (tmp_path / "alsa" / "asoundrc").write_text("pcm.!default { type hw; card 97 }\n")
    result = run_scenario("no_device", {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)})
    assert result["error"] and "python -m sounddevice" in result["error"] and "\n" not in result["error"]


def test_stop_silences_a_real_time_device_within_one_block_and_the_next_turn_starts_at_once(tmp_path):
    played_path = tmp_path / "played.wav"
    with pulse_null_sinks(tmp_path, played_path) as env:
        result = run_scenario("stop_in_real_time", env)
    # Audio handed to the device after stop(): at most the block being filled at that moment.
    after_stop = result["played_seconds"] - result["handed_before_stop"]
    print(f"audio after stop(): {1000 * after_stop:.1f} ms (block {1000 * result['block_seconds']:.0f} ms)")
    assert after_stop <= result["block_seconds"] + 1e-9
    played, rate = soundfile.read(played_path)
    audible = np.flatnonzero(np.abs(played) > 0.01)
    first_turn = audible[:np.argmax(np.diff(audible) > 0.2 * rate) + 1]
    assert abs((first_turn[-1] - first_turn[0] + 1) / rate - result["played_seconds"]) < 0.01
    assert 0.9 < result["played_seconds"] < 1.2
    # The device kept running: the next turn is heard at once, whole.
    assert result["second_turn_sound_after_s"] < 0.2 and abs(result["second_turn_played_seconds"] - 0.5) < 1e-3

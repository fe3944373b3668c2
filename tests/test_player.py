"""The sound-device player on a real ALSA device (a WAV file): resampling, barge-in stop, no device."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import soundfile

from agent_tts.audio.player import MAX_PREBUFFER_SECONDS, MIN_PREBUFFER_SECONDS
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


# A running device plays a new turn from its next block (plus the audio it holds); a restarted stream stalls
# PulseAudio's ALSA plugin for up to 2 s. The bar between the two leaves a busy machine's late callbacks room.
NEXT_TURN_SOUND_WITHIN_S = 1.0


def test_stop_silences_a_real_time_device_at_once_and_the_next_turn_starts_at_once(tmp_path):
    played_path = tmp_path / "played.wav"
    with pulse_null_sinks(tmp_path, played_path) as env:
        result = run_scenario("stop_in_real_time", env)
    print(f"stopped after {result['played_seconds']:.2f} s of a 5 s turn; the next turn sounded "
          f"{1000 * result['second_turn_sound_after_s']:.0f} ms after play(); underruns {result['underruns']}, "
          f"device underflows {result['device_underflows']}")
    # Nothing is handed to the device after stop(), however busy the machine: the buffer is emptied under the
    # callback's lock.
    assert result["played_at_stop"] == result["played_seconds"]
    assert 0 < result["played_seconds"] < 5.0
    # What the device was handed is what it played, both turns, up to the stop (counted in samples: a device that
    # stalls on a busy machine leaves gaps, which move sound in time but add or remove none).
    played, rate = soundfile.read(played_path, dtype="int16")
    handed = result["played_seconds"] + result["second_turn_played_seconds"]
    assert abs(np.count_nonzero(played) / rate - handed) < 0.005
    # The device kept running: the next turn is heard at once (unless the device itself ran dry, too late called
    # back on a very busy machine: PulseAudio's plugin then reconnects, and that stall is printed), and whole.
    if result["device_underflows"] == 0:
        assert result["second_turn_sound_after_s"] < NEXT_TURN_SOUND_WITHIN_S
    assert abs(result["second_turn_played_seconds"] - 0.5) < 1e-3


def test_a_turn_that_ran_dry_makes_the_next_one_prebuffer_the_silence_it_caused(tmp_path):
    with pulse_null_sinks(tmp_path, tmp_path / "played.wav") as env:
        result = run_scenario("prebuffer_grows_after_underrun", env)
    first, second = result["first"], result["second"]
    print(f"first turn: {first['underruns']} underrun blocks, {1000 * first['underrun_seconds']:.0f} ms of silence; "
          f"second turn prebuffered {1000 * second['prebuffer_seconds']:.0f} ms")
    # The engine stalled for 3 s after 0.3 s of audio: the device ran dry, whatever the machine's speed ...
    assert first["underruns"] > 0 and first["underrun_seconds"] > 0
    # ... and the next turn holds at least that much more before it starts than the least prebuffer.
    expected = min(MAX_PREBUFFER_SECONDS, MIN_PREBUFFER_SECONDS + first["underrun_seconds"])
    assert expected - 1e-6 <= second["prebuffer_seconds"] <= MAX_PREBUFFER_SECONDS
    assert abs(second["played_seconds"] - 0.5) < 1e-3 and second["underruns"] == 0

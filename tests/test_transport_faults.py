"""Sound-device faults: one clear log line each, the pipeline keeps running and ends normally."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import soundfile

from pulse_support import pulse_null_sinks
from child_process import run_child

HERE = Path(__file__).resolve().parent


def run_case(tmp_path: Path, *case: str) -> tuple[dict, list[str]]:
    with pulse_null_sinks(tmp_path, tmp_path / "played.wav") as env:
        completed = run_child([sys.executable, str(HERE / "transport_faults_scenario.py"), *case], env=env, timeout=300)
    assert completed.returncode == 0, completed.stderr[-4000:]
    ours = [line for line in completed.stderr.splitlines()
            if "SoundDeviceOutputTransport" in line and ("ERROR" in line or "WARNING" in line)]
    return json.loads(completed.stdout.strip().splitlines()[-1]), ours


def test_a_missing_output_device_is_one_error_line_and_the_pipeline_finishes(tmp_path):
    result, lines = run_case(tmp_path, "missing")
    assert result["finished"] and result["played_frames"] == 0
    assert len(lines) == 1 and "python -m sounddevice" in lines[0] and "'no-such-device'" in lines[0]


def test_a_rate_the_device_refuses_is_resampled_with_one_warning(tmp_path):
    # The test device takes 1 kHz to 384 kHz; a pipeline at 400 kHz is what a fixed-rate card does to 24 kHz.
    result, lines = run_case(tmp_path, "rate", "400000")
    assert len(lines) == 1 and "refuses 400000 Hz" in lines[0]
    played, rate = soundfile.read(tmp_path / "played.wav")
    assert rate == result["device_rate"] == 44100 and result["played_frames"] > 5 * rate
    assert len(played) >= result["played_frames"]


def test_a_device_that_disappears_is_one_error_line_and_the_pipeline_finishes(tmp_path):
    result, lines = run_case(tmp_path, "vanish")
    assert result["finished"] and result["seconds"] < 60
    assert len(lines) == 1 and "audio will be dropped" in lines[0]

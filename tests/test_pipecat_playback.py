"""The pipecat path on a real-time sound device: LLM -> clause-first TTS -> SoundDeviceTransport -> PulseAudio."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import soundfile

from agent_tts.pipecat.responders import FAQResponder
from asr_oracle import align, transcribe, words
from pulse_support import pulse_null_sinks
from child_process import run_child

HERE = Path(__file__).resolve().parent
PIPELINES = HERE.parent / "pipelines"
PROMPTS = ["Hello there!", "Where is my order?", "How do I return something?"]


def run_prompts(folder: Path, rate: int) -> dict:
    with pulse_null_sinks(folder, folder / "played.wav") as env:
        completed = run_child([sys.executable, str(HERE / "pipecat_playback_scenario.py"), str(PIPELINES),
                               str(folder), str(rate), *PROMPTS], env=env, timeout=300)
    assert completed.returncode == 0, completed.stderr[-4000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_the_speaker_plays_exactly_what_the_tts_pushed_in_real_time(tmp_path):
    result = run_prompts(tmp_path, 22050)
    played, rate = soundfile.read(tmp_path / "played.wav", dtype="int16")
    synthesized = np.load(tmp_path / "synthesized.npy")
    assert rate == result["device_rate"] == 22050
    # Every sample the TTS pushed, in order, once (silence between and around the turns aside) ...
    assert np.array_equal(played[played != 0], synthesized[synthesized != 0])
    # ... played in real time: the device took as long as the audio lasts, with no underrun.
    assert result["underruns"] == 0
    assert len(played) >= len(synthesized)
    assert len(result["first_audio_ms"]) == 3
    print(result["turns"])


def test_audio_is_resampled_to_the_pipeline_rate_and_still_understood(tmp_path):
    result = run_prompts(tmp_path, 16000)
    played, rate = soundfile.read(tmp_path / "played.wav", dtype="float32")
    synthesized = np.load(tmp_path / "synthesized.npy")
    assert rate == 16000 and np.array_equal((played * 32768).round().astype(np.int16)[np.abs(played) > 0],
                                            synthesized[synthesized != 0])
    answers = " ".join(FAQResponder()(prompt) for prompt in PROMPTS)
    alignment = align(words(answers), words(transcribe(played, rate)))
    print(f"WER {alignment.wer:.3f}")
    assert alignment.wer <= 0.10
    assert result["underruns"] == 0

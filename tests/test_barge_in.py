"""Barge-in through the real voice-agent pipeline on a real-time (PulseAudio null sink) sound path."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pulse_support import pulse_null_sinks
from child_process import run_child

HERE = Path(__file__).resolve().parent
PIPELINES = HERE.parent / "pipelines"


def test_speaking_over_the_agent_stops_it_within_100_ms_and_the_next_turn_is_answered(tmp_path):
    with pulse_null_sinks(tmp_path, tmp_path / "played.wav") as env:
        completed = run_child([sys.executable, str(HERE / "barge_in_scenario.py"), str(PIPELINES)], env=env, timeout=300)
    assert completed.returncode == 0, completed.stderr[-4000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    (tmp_path / "result.json").write_text(json.dumps(result))
    onset = next(t for t in result["vad_onsets"] if t > result["user_speech_started"])
    interrupted = next(t for t in result["interruptions"] if t >= onset)
    answer_started = next(t for t in result["bot_started"] if t > onset)  # the next turn works
    rate = result["sample_rate"]
    # The played-audio timeline: when each device block reaches the output, and how much of it was speech.
    audible_ends = [dac + audio / rate for dac, _, audio, _ in result["timeline"] if audio and dac < answer_started]
    stopped = max(end for end in audible_ends if end >= onset - 0.5)
    flushed = next(t for t in result["flushed_at"] if t >= onset)
    latency = [dac - filled for dac, _, _, filled in result["timeline"]]
    print(f"interruption {1000 * (interrupted - onset):.1f} ms after VAD onset, speaker buffer flushed at "
          f"{1000 * (flushed - onset):.1f} ms, device latency {1000 * min(latency):.0f}-{1000 * max(latency):.0f} ms; "
          f"last sound of the interrupted turn {1000 * (stopped - onset):.1f} ms after it")
    assert stopped - onset <= 0.100
    # Nothing of the interrupted turn is played, or even produced, afterwards.
    before = {context for at, context in result["tts_audio"] if at < interrupted}
    after = [(at, context) for at, context in result["tts_audio"] if at > interrupted]
    assert before and not [item for item in after if item[1] in before]
    assert not [end for end in audible_ends if stopped < end < answer_started]
    assert [item for item in after if item[0] >= answer_started - 1.0]  # the new turn's audio

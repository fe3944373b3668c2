"""Barge-in through the real voice-agent pipeline on a real-time (PulseAudio null sink) sound path.

What must hold on any machine, however busy: the speaker is silent within
100 ms of the instant the transport's VAD hears the user start speaking (the
transport holds the output right there, on the audio thread, so this does not
depend on the event loop), nothing of the interrupted turn is played
afterwards, or produced once the TTS has handled the interruption, and the
next turn is answered. How long the interruption
takes to cross the pipeline, and how late the event loop ran, are printed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from child_process import run_child
from pulse_support import pulse_null_sinks

HERE = Path(__file__).resolve().parent
PIPELINES = HERE.parent / "pipelines"
STOP_WITHIN_S = 0.100


def barge_in_figures(result: dict) -> dict:
    """The instants the test judges by, from the scenario's JSON (seconds, perf_counter)."""
    heard = next(t for t in result["speech_onsets"] if t > result["user_speech_started"])
    onset = next(t for t in result["vad_onsets"] if t > result["user_speech_started"])
    interrupted = next(t for t in result["interruptions"] if t >= onset)
    answer_started = next(t for t in result["bot_started"] if t > onset)  # the next turn works
    rate = result["sample_rate"]
    # The played-audio timeline: when each device block reaches the output, and how much of it was speech; audio
    # the device still held when its buffer was dropped (the stream aborted) is heard only up to that instant.
    audible_ends = []
    for dac, _, audio, filled in result["timeline"]:
        dropped = next((t for t in result["dropped_at"] if t > filled), float("inf"))
        if audio and dac < min(answer_started, dropped):
            audible_ends.append(min(dac + audio / rate, dropped))
    # The end of the sound playing when the transport heard speech start (that instant itself if none was:
    # a stalled device has nothing to stop).
    stopped = max((end for end in audible_ends if end >= heard), default=heard)
    return {"heard": heard, "onset": onset, "interrupted": interrupted, "answer_started": answer_started,
            "audible_ends": audible_ends, "stopped": stopped,
            "held": next((t for t in result["held_at"] if t >= heard), None),
            "flushed": next(t for t in result["flushed_at"] if t >= heard)}


def describe(result: dict, figures: dict) -> str:
    heard = figures["heard"]
    latency = [dac - filled for dac, _, _, filled in result["timeline"]]
    ms = {name: 1000 * (figures[name] - heard) for name in ("onset", "interrupted", "flushed", "stopped")}
    return (f"the transport's VAD heard speech start; the pipeline's VAD {ms['onset']:.1f} ms later, its "
            f"interruption was pushed at {ms['interrupted']:.1f} ms and reached the speaker at {ms['flushed']:.1f} ms; "
            f"device latency "
            f"{1000 * min(latency):.0f}-{1000 * max(latency):.0f} ms; last sound of the interrupted turn "
            f"{ms['stopped']:.1f} ms after the transport heard speech ({ms['stopped'] - ms['onset']:.1f} ms after "
            f"the pipeline's VAD onset); event loop late by up to {result['loop_lag']['max_ms']:.0f} ms; "
            f"{result['underruns']} underrun(s); the interruption crossed " + ", ".join(
                f"{name} at {1000 * (at - heard):.0f} ms" for at, name in result["interruption_path"]
                if figures["interrupted"] <= at <= figures["flushed"] + 0.05))


def test_speaking_over_the_agent_stops_it_within_100_ms_and_the_next_turn_is_answered(tmp_path):
    with pulse_null_sinks(tmp_path, tmp_path / "played.wav") as env:
        completed = run_child([sys.executable, str(HERE / "barge_in_scenario.py"), str(PIPELINES)], env=env, timeout=300)
    assert completed.returncode == 0, completed.stderr[-4000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    (tmp_path / "result.json").write_text(json.dumps(result))
    figures = barge_in_figures(result)
    print(describe(result, figures))
    # The transport silenced the speaker itself, at the onset, and the pipeline's interruption followed it.
    assert figures["held"] is not None and figures["held"] - figures["heard"] < 0.001
    assert result["false_alarms"] == 0
    assert figures["stopped"] - figures["heard"] <= STOP_WITHIN_S
    # Nothing of the interrupted turn is produced once the TTS has handled the interruption (before that, on a
    # busy machine, it may still push what it had, which never reaches the speaker) or played afterwards.
    handled = next(t for t in result["tts_interrupted"] if t >= figures["interrupted"])
    before = {context for at, context in result["tts_audio"] if at < handled}
    after = [(at, context) for at, context in result["tts_audio"] if at > handled]
    assert before and not [item for item in after if item[1] in before]
    assert not [end for end in figures["audible_ends"] if figures["stopped"] < end < figures["answer_started"]]
    assert [item for item in after if item[0] >= figures["answer_started"] - 1.0]  # the new turn's audio

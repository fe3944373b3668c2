"""The pipecat path on a real-time sound device: LLM -> clause-first TTS -> SoundDeviceTransport -> PulseAudio.

Exactness (every sample the TTS pushed is played, once, in order) and what
Whisper hears hold on any machine (but for what the sound server drops when
the device's callback comes too late, reported by PortAudio: see
`check_exactness`). Underruns depend on the machine: the
speaker runs dry when the TTS is slower than real time (on a busy CPU) or
when the audio it already pushed reaches the device too late. The second kind
is the transport's to prevent, and it guarantees it where neither the event
loop nor the device's callback was late by more than the output buffer holds
(the loop's lateness plus the longest wait between callbacks, plus a 40 ms
margin, under the buffer's size): there it is asserted, for audio the TTS
pushed at least that lateness and margin before the device ran dry; on a
busier run the figures are printed.
"""

from __future__ import annotations

import bisect
import json
import os
import sys
from pathlib import Path

import numpy as np
import soundfile

from agent_tts.pipecat.responders import FAQResponder
from asr_oracle import align, transcribe, words
from child_process import run_child
from pulse_support import pulse_null_sinks

HERE = Path(__file__).resolve().parent
PIPELINES = HERE.parent / "pipelines"
PROMPTS = ["Hello there!", "Where is my order?", "How do I return something?"]
# Lateness, below the output buffer's size, that still cannot starve the device: one 40 ms pipecat chunk.
LATENESS_MARGIN_MS = 40
# Busier than this (1-minute load average over the cores, this test's own pipeline included), the scenario's
# threads wait for a core longer than the event loop's probe and the device callbacks show: late deliveries are
# printed, not asserted (seen at load 6 on 2 cores: 18 ms loop lateness, 100 ms callback gaps, one late block).
QUIET_LOAD_PER_CORE = 1.5


def run_prompts(folder: Path, rate: int) -> dict:
    with pulse_null_sinks(folder, folder / "played.wav") as env:
        completed = run_child([sys.executable, str(HERE / "pipecat_playback_scenario.py"), str(PIPELINES),
                               str(folder), str(rate), *PROMPTS], env=env, timeout=300)
    assert completed.returncode == 0, completed.stderr[-4000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def late_deliveries(result: dict, delivery_s: float = 0.0) -> list[tuple[float, int]]:
    """Underruns where the TTS had already pushed the audio the device ran out of, at least `delivery_s` before
    the device ran dry: it reached the device late. (pipecat holds back up to one 40 ms chunk until more audio
    comes: that much pushed is not yet deliverable. Audio pushed less than `delivery_s` before cannot have
    reached the device yet through a late event loop and the wait for the next callback.)"""
    times = [at for at, _ in result["pushed"]]
    held_back = result["device_rate"] * 40 // 1000
    late = []
    for starved_at, played in result["underrun_log"]:
        pushed = bisect.bisect_right(times, starved_at - delivery_s)
        if pushed and result["pushed"][pushed - 1][1] > played + held_back:
            late.append((starved_at, played))
    return late


def deleted_runs(played: np.ndarray, pushed: np.ndarray, longest: int) -> list[int] | None:
    """The lengths of the runs deleted from `pushed` to give `played` (nothing repeated, reordered or changed),
    each at most `longest` samples; None if `played` is not such a copy."""
    runs, i, j = [], 0, 0
    while i < len(played):
        n = min(len(played) - i, len(pushed) - j)
        different = np.flatnonzero(played[i:i + n] != pushed[j:j + n])
        if not len(different):
            i, j = i + n, j + n
            if i < len(played):
                return None  # more played than pushed
            break
        i, j = i + different[0], j + different[0]
        probe = played[i:i + 64]
        window = pushed[j:j + longest + len(probe)]
        if len(window) < len(probe):
            return None
        found = np.flatnonzero((np.lib.stride_tricks.sliding_window_view(window, len(probe)) == probe).all(axis=1))
        if not len(found):
            return None
        runs.append(int(found[0]))
        j += int(found[0])
    if len(pushed) - j > longest:
        return None
    if len(pushed) > j:
        runs.append(int(len(pushed) - j))
    return runs


def check_exactness(played: np.ndarray, pushed: np.ndarray, result: dict) -> None:
    """Every sample the TTS pushed is played, once, in order (silence aside). Where PortAudio reports the device
    ran dry (its callback came too late, on a very busy machine), the stream is recovered and what ALSA had been
    handed but not played is dropped: then only such losses are allowed, at most one per underflow and each
    under half a second."""
    played, pushed = played[played != 0], pushed[pushed != 0]
    if result["device_underflows"] == 0:
        assert np.array_equal(played, pushed)
        return
    runs = deleted_runs(played, pushed, longest=result["device_rate"] // 2)
    print(f"device underflows {result['device_underflows']}: lost runs of {runs} samples")
    assert runs is not None and len(runs) <= result["device_underflows"]


def check_underruns(result: dict) -> None:
    loop_ms, callback_ms = result["loop_lag"]["max_ms"], result["max_callback_gap_ms"]
    # Counting audio pushed a moment before the device ran dry as late failed a quiet run (2026-12-01: the TTS
    # was slower than real time, and its next chunk came just as the device ran out).
    late = late_deliveries(result, (loop_ms + callback_ms + LATENESS_MARGIN_MS) / 1000)
    load = os.getloadavg()[0]
    print(f"underruns: {result['underruns']} ({len(late)} of audio already pushed), device underflows "
          f"{result['device_underflows']}; event loop late by up to {loop_ms:.0f} ms, device callback gaps up to "
          f"{callback_ms:.0f} ms; output buffer {result['first_buffer_ms']} -> {result['buffer_ms']} ms; "
          f"load average {load:.1f} on {os.cpu_count()} cores")
    quiet = load <= QUIET_LOAD_PER_CORE * (os.cpu_count() or 1)
    if quiet and loop_ms + callback_ms + LATENESS_MARGIN_MS < result["first_buffer_ms"]:
        assert not late, "audio the TTS had pushed reached the device late, on a run the buffer should carry"


def test_the_speaker_plays_exactly_what_the_tts_pushed_in_real_time(tmp_path):
    result = run_prompts(tmp_path, 22050)
    played, rate = soundfile.read(tmp_path / "played.wav", dtype="int16")
    synthesized = np.load(tmp_path / "synthesized.npy")
    assert rate == result["device_rate"] == 22050
    # Every sample the TTS pushed, in order, once (silence between and around the turns aside) ...
    check_exactness(played, synthesized, result)
    # ... played in real time: the device took at least as long as the audio lasts.
    assert len(played) >= len(synthesized)
    assert len(result["first_audio_ms"]) == 3
    print(result["turns"])
    check_underruns(result)


def test_audio_is_resampled_to_the_pipeline_rate_and_still_understood(tmp_path):
    result = run_prompts(tmp_path, 16000)
    played, rate = soundfile.read(tmp_path / "played.wav", dtype="float32")
    synthesized = np.load(tmp_path / "synthesized.npy")
    assert rate == 16000
    check_exactness((played * 32768).round().astype(np.int16), synthesized, result)
    answers = " ".join(FAQResponder()(prompt) for prompt in PROMPTS)
    alignment = align(words(answers), words(transcribe(played, rate)))
    print(f"WER {alignment.wer:.3f}")
    assert alignment.wer <= 0.10
    check_underruns(result)

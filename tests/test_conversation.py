"""The main job end to end: the scripted conversation through the default voice to a real (ALSA file) device,
heard back by an ASR model; and the README's first command with no network and no sound device."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from agent_tts.conversation.scripted_llm import DEFAULT_SCRIPT, ScriptedLLM, llm_tokens
from asr_oracle import align, transcribe, words
from system_support import alsa_wav_device, without_network
from child_process import run_child

HERE = Path(__file__).resolve().parent


def test_llm_tokens_reassemble_the_text_in_small_pieces():
    text = "Hi there, it costs $1,250.50 at 7:30, e.g. tomorrow's delivery."
    tokens = llm_tokens(text)
    assert "".join(tokens) == text
    assert max(len(token) for token in tokens) <= 7 and len(tokens) > len(text.split())


async def test_scripted_llm_streams_at_its_pace():
    llm = ScriptedLLM(first_token_s=0.05, tokens_per_second=100)
    started = time.perf_counter()
    arrivals = []
    async for _ in llm.stream("one two three four five six seven eight nine ten"):
        arrivals.append(time.perf_counter() - started)
    assert arrivals[0] >= 0.05
    assert arrivals[-1] >= 0.05 + (len(arrivals) - 1) / 100 * 0.9


def test_alignment_counts_deletions_insertions_and_substitutions():
    alignment = align(words("The cat sat on the mat."), words("the cat sat, sat on the"))
    assert alignment.errors == 2 and alignment.deleted() == {5}
    assert alignment.inserted_next_to(2) == ["sat"] and alignment.inserted_next_to(0) == []


@pytest.fixture(scope="module")
def played_conversation(tmp_path_factory) -> tuple[Path, dict]:
    """The default script played through the real sound path into an ALSA WAV file."""
    folder = tmp_path_factory.mktemp("roundtrip")
    played = folder / "played.wav"
    env = alsa_wav_device(folder / "config", played)
    completed = run_child([sys.executable, str(HERE / "playback_roundtrip.py"), str(folder)], env=env, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return folder, json.loads((folder / "report.json").read_text())


def _offset_of(expected: np.ndarray, played: np.ndarray, max_shift: int, window: int = 4000) -> int:
    """Where `expected` starts in `played` (at most `max_shift` in): the best match of its first audible part."""
    onset = int(np.argmax(np.abs(expected) > 0.01))
    probe = expected[onset:onset + window]
    region = played[onset:onset + max_shift + len(probe)]
    shifts = np.lib.stride_tricks.sliding_window_view(region, len(probe))
    return int(np.argmin(np.abs(shifts - probe).sum(axis=1)))


def test_the_device_played_exactly_what_was_synthesized(played_conversation):
    folder, report = played_conversation
    info = soundfile.info(folder / "played.wav")
    rate = report["turns"][0]["sample_rate"]
    assert info.samplerate == rate == 22050
    played = soundfile.read(folder / "played.wav", dtype="float32")[0]
    synthesized = np.load(folder / "synthesized.npy")
    lsb = 1 / 32768
    cursor, taken = 0, 0
    for turn in report["turns"]:
        assert turn["underruns"] == 0
        expected = synthesized[taken:taken + round(turn["speech_seconds"] * rate)]
        taken += len(expected)
        start = cursor + _offset_of(expected, played[cursor:], max_shift=int(0.2 * rate))
        assert np.abs(played[cursor:start]).max(initial=0) <= 2 * lsb, "sound before the turn"
        assert start - cursor <= 0.1 * rate, "more than 100 ms of silence before the turn"
        # Sample for sample (16-bit rounding aside): nothing dropped, repeated or inserted, at the right rate.
        np.testing.assert_allclose(played[start:start + len(expected)], expected, atol=2 * lsb)
        cursor = start + len(expected)
    assert taken == len(synthesized)
    assert np.abs(played[cursor:]).max(initial=0) <= 2 * lsb and len(played) - cursor <= 0.1 * rate
    kinds = [segment["kind"] for segment in report["timeline"]]
    assert "underrun" not in kinds and kinds.count("audio") == len(DEFAULT_SCRIPT)


def test_what_was_played_is_heard_as_the_script(played_conversation):
    folder, report = played_conversation
    played, rate = soundfile.read(folder / "played.wav", dtype="float32")
    reference = [word for turn in report["turns"] for word in words(turn["agent"])]
    heard = words(transcribe(played, rate))
    alignment = align(reference, heard)
    print(f"WER {alignment.wer:.3f} ({alignment.errors} errors / {len(reference)} words)\nheard: {' '.join(heard)}")
    assert alignment.wer <= 0.10
    # Unit boundaries: the words on either side of each join are heard, and none is heard twice.
    position = 0
    for turn in report["turns"]:
        unit_words = [words(unit) for unit in turn["units"]]
        assert sum(unit_words, []) == words(turn["agent"])
        for unit in unit_words[:-1]:
            position += len(unit)
            last, first = position - 1, position
            assert last not in alignment.deleted() and first not in alignment.deleted(), (reference[last:first + 1])
            around = alignment.inserted_next_to(last) + alignment.inserted_next_to(first)
            assert not set(around) & {reference[last], reference[first]}, reference[last:first + 1]
        position += len(unit_words[-1])


def test_the_readme_first_command_speaks_offline_into_a_wav_without_a_sound_device(tmp_path):
    env = {"AGENT_TTS_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    command = without_network([sys.executable, "-m", "agent_tts.cli.main", "converse", "--tokens-per-second", "400"])
    completed = run_child(command, cwd=tmp_path, env=env, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "bundled default voice" in completed.stderr and "agent-tts voices add" in completed.stderr
    assert "writing the audio to" in completed.stderr
    assert completed.stdout.count("first audio") == len(DEFAULT_SCRIPT) + 1
    audio, rate = soundfile.read(tmp_path / "conversation.wav")
    assert rate == 22050 and len(audio) / rate > 10


def test_say_streams_arguments_and_stdin_into_a_wav(tmp_path):
    env = {"AGENT_TTS_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    command = [sys.executable, "-m", "agent_tts.cli.main", "say", "--out"]
    completed = run_child([*command, "args.wav", "Good morning, everyone. The meeting starts at ten."],
                          cwd=tmp_path, env=env, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert "first audio after" in completed.stderr
    completed = run_child([*command, "stdin.wav", "-"], input="Thanks for waiting.\nYour table is ready.\n",
                          cwd=tmp_path, env=env, timeout=120)
    assert completed.returncode == 0, completed.stderr
    for name, text in (("args.wav", "good morning everyone the meeting starts at ten"),
                       ("stdin.wav", "thanks for waiting your table is ready")):
        audio, rate = soundfile.read(tmp_path / name, dtype="float32")
        assert align(text.split(), words(transcribe(audio, rate))).wer <= 0.2


def test_bad_options_and_unspeakable_text_are_one_line_errors_with_exit_status_2(tmp_path):
    env = {"AGENT_TTS_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    say = [sys.executable, "-m", "agent_tts.cli.main", "say", "--out", "out.wav"]
    for arguments, message in (
            (["--speed", "10", "hello"], "agent-tts: error: speed must be between 0.25 and 4, got 10"),
            (["你好，欢迎光临。"], "agent-tts: error: nothing to say: the bundled default voice speaks English only "
                             "and skipped '你好', '欢迎光临'; to speak other languages, add a GPT-SoVITS voice"),
            (["--device", "tpu", "hello"], "agent-tts: error: device must be auto, cpu, cuda or cuda:N, got 'tpu'"),
            *([(["--device", "cuda", "hello"], "agent-tts: error: device 'cuda': torch sees no CUDA device")]
              if not torch.cuda.is_available() else [])):
        completed = run_child([*say, *arguments], cwd=tmp_path, env=env, timeout=120)
        assert completed.returncode == 2, completed.stderr
        errors = [line for line in completed.stderr.splitlines() if line.startswith("agent-tts: error:")]
        assert len(errors) == 1 and errors[0].startswith(message), completed.stderr
        assert "Traceback" not in completed.stderr
        assert not (tmp_path / "out.wav").exists()

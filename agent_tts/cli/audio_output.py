"""Where spoken audio goes for the CLI commands: the sound device, or a WAV file when asked or when there is none."""

from __future__ import annotations

import sys
from pathlib import Path

from agent_tts.audio.devices import device_choice
from agent_tts.audio.player import AudioDeviceError, Player
from agent_tts.audio.wav_sink import WavSink


def open_output(sample_rate: int, out: str | None, device: str | None, fallback: str):
    """A `Player` on `device` (name or index), or a `WavSink` on `out`; with no usable device, `fallback`."""
    if out:
        return WavSink(out, sample_rate)
    player = Player(sample_rate, device=device_choice(device))
    try:
        player.open()
        return player
    except AudioDeviceError as exc:
        print(f"agent-tts: no sound device ({exc}); writing the audio to {Path(fallback).resolve()} instead",
              file=sys.stderr, flush=True)
        return WavSink(fallback, sample_rate)

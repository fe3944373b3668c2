"""A private PulseAudio server with null sinks, for tests where real-time pacing matters.

`agent_speaker` is what the agent plays into: the ALSA device
`agent_tts_capture` writes everything it plays to a WAV file and hands it to
that sink, which consumes it in real time. `agent_mic` is what the test
"says" into (ALSA `agent_mic_out`, or `say_into_the_microphone`); the
agent's microphone (ALSA `agent_mic_in`) is its monitor. The server is
started and stopped by the test; the environment it yields reaches it (run
the audio code in a child process with it).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile


def require_pulseaudio() -> None:
    if shutil.which("pulseaudio") is None or shutil.which("pactl") is None:
        message = "PulseAudio is not installed (scripts/setup.sh installs it as root: pulseaudio pulseaudio-utils " \
                  "libasound2-plugins)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def pulse_null_sinks(folder: Path, played_wav: Path, mic_rate: int = 16000) -> Iterator[dict[str, str]]:
    require_pulseaudio()
    runtime, home, config = folder / "run", folder / "home", folder / "config"
    for path in (runtime, home, config / "alsa"):
        path.mkdir(parents=True, exist_ok=True)
    runtime.chmod(0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "HOME": str(home), "XDG_CONFIG_HOME": str(config),
           "PULSE_RUNTIME_PATH": str(runtime / "pulse")}
    (config / "alsa" / "asoundrc").write_text(f"""
pcm.agent_speaker_sink {{ type pulse; device "agent_speaker" }}
pcm.agent_tts_capture {{
    type plug
    slave {{ pcm "agent_tts_capture_file"; format S16_LE }}
}}
pcm.agent_tts_capture_file {{
    type file
    slave.pcm "agent_speaker_sink"
    file "{played_wav}"
    format "wav"
}}
pcm.agent_mic_in {{ type pulse; device "agent_mic.monitor" }}
pcm.agent_mic_out {{ type pulse; device "agent_mic" }}
""", encoding="utf-8")
    command = ["pulseaudio", "--daemonize=yes", "-n", "--exit-idle-time=-1", "--disallow-exit",
               "--use-pid-file=yes", f"--log-target=file:{folder / 'pulse.log'}",
               "--load=module-native-protocol-unix",
               "--load=module-null-sink sink_name=agent_speaker rate=48000 channels=1",
               f"--load=module-null-sink sink_name=agent_mic rate={mic_rate} channels=1"]
    subprocess.run(command, env=env, check=True, timeout=30)
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"PulseAudio did not start; see {folder / 'pulse.log'}")
            time.sleep(0.1)
        yield env
    finally:
        subprocess.run(["pulseaudio", "--kill"], env=env, capture_output=True, timeout=30)


async def say_into_the_microphone(pcm: np.ndarray, rate: int) -> None:
    """Play speech into the agent's microphone in real time, from another process: `paplay` keeps its buffer in
    the sound server, so a busy machine delays the speech as a whole but never cuts a gap into it (which would
    split one user turn in two)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "speech.wav"
        soundfile.write(path, pcm, rate, subtype="PCM_16")
        player = await asyncio.create_subprocess_exec("paplay", "--device=agent_mic", str(path))
        if await player.wait() != 0:
            raise RuntimeError(f"paplay failed with status {player.returncode}")

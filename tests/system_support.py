"""Helpers for tests that use the machine: a network namespace with no network, an ALSA device that is a WAV file."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def can_unshare_network() -> bool:
    return shutil.which("unshare") is not None and \
        subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0


def without_network(command: list[str]) -> list[str]:
    """`command` in a network namespace with no interfaces at all, where the machine allows it."""
    return ["unshare", "-rn", *command] if can_unshare_network() else command


def alsa_wav_device(config_home: Path, wav_path: Path) -> dict[str, str]:
    """An environment whose default ALSA output writes 16-bit PCM to `wav_path` (at the rate it is opened with).

    alsa-lib reads `$XDG_CONFIG_HOME/alsa/asoundrc`; the variable must be set
    before PortAudio initialises, so run the playing code in a child process.
    """
    (config_home / "alsa").mkdir(parents=True, exist_ok=True)
    (config_home / "alsa" / "asoundrc").write_text(f"""
pcm.!default {{
    type plug
    slave {{
        pcm "agent_tts_capture"
        format S16_LE
    }}
}}
pcm.agent_tts_capture {{
    type file
    slave.pcm "agent_tts_discard"
    file "{wav_path}"
    format "wav"
}}
pcm.agent_tts_discard {{
    type null
}}
""", encoding="utf-8")
    return {**os.environ, "XDG_CONFIG_HOME": str(config_home)}

"""The user's voice registry: one TOML file per GPT-SoVITS voice in the config folder, plus which one is the default.

    ~/.config/agent-tts/voices/alice.toml     (or $AGENT_TTS_HOME/voices/)
    ~/.config/agent-tts/voices/default        the default voice's name

`add` validates a voice by loading it (the loader's errors name the bad file)
before it is registered. With no voice registered, agent-tts speaks with the
bundled default voice.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from agent_tts.errors import AgentTTSError
from agent_tts.voice import Voice, VoiceSpec, default_voices_dir

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEFAULT_FILE = "default"


def default_pretrained_dir() -> Path:
    """Where `agent-tts download` puts the pretrained folders and where `voices add` looks for them."""
    home = os.environ.get("AGENT_TTS_HOME")
    if home:
        return Path(home) / "pretrained_models"
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "agent-tts" / "pretrained_models"


class VoiceRegistry:
    """Adds, lists and removes the user's GPT-SoVITS voices, and keeps track of the default one."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_voices_dir()

    def names(self) -> list[str]:
        return sorted(path.stem for path in self.folder.glob("*.toml")) if self.folder.is_dir() else []

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.toml"

    def spec(self, name: str) -> VoiceSpec:
        return VoiceSpec.by_name(name, self.folder)

    def default_name(self) -> str | None:
        """The marked default if it still exists, else the only voice, else None."""
        marker = self.folder / DEFAULT_FILE
        if marker.is_file():
            name = marker.read_text(encoding="utf-8").strip()
            if name in self.names():
                return name
        names = self.names()
        return names[0] if len(names) == 1 else None

    def set_default(self, name: str) -> None:
        if name not in self.names():
            raise AgentTTSError(f"no voice named {name!r} (known: {', '.join(self.names()) or 'none'})")
        (self.folder / DEFAULT_FILE).write_text(name + "\n", encoding="utf-8")

    def add(self, voice: VoiceSpec, make_default: bool = False, replace: bool = False, validate: bool = True) -> Path:
        """Register a voice after loading it once; the first voice added becomes the default."""
        if not NAME_PATTERN.match(voice.name):
            raise AgentTTSError(f"voice name {voice.name!r}: use letters, digits, '_', '-' or '.' (at most 64)")
        target = self.path(voice.name)
        if target.exists() and not replace:
            raise AgentTTSError(f"a voice named {voice.name!r} exists; remove it first or pass --replace")
        for label, path in (("--gpt", voice.gpt), ("--sovits", voice.sovits), ("--ref", voice.ref_audio),
                            *(("--aux-ref", path) for path in voice.aux_ref_audio)):
            if not path.is_file():
                raise AgentTTSError(f"{label} {path}: file not found")
        for folder in (voice.hubert, voice.bert):
            if not folder.is_dir():
                raise AgentTTSError(f"{folder.parent} has no {folder.name}/: pass --pretrained DIR, "
                                    "or fetch the official folders with: agent-tts download")
        self.folder.mkdir(parents=True, exist_ok=True)
        had_voices = bool(self.names())
        with tempfile.NamedTemporaryFile("w", suffix=".toml", dir=self.folder, delete=False,
                                         encoding="utf-8") as handle:
            handle.write(voice.to_toml())
            staged = Path(handle.name)
        try:
            if validate:
                Voice.load(VoiceSpec.from_toml(staged), "cpu")  # a check that the files load and fit
            staged.replace(target)
        finally:
            staged.unlink(missing_ok=True)
        if make_default or not had_voices:
            self.set_default(voice.name)
        return target

    def remove(self, name: str) -> None:
        target = self.path(name)
        if not target.is_file():
            raise AgentTTSError(f"no voice named {name!r} (known: {', '.join(self.names()) or 'none'})")
        was_default = self.default_name() == name
        target.unlink()
        if was_default:
            (self.folder / DEFAULT_FILE).unlink(missing_ok=True)

"""A voice TOML over a parity fixture folder (models/, pretrained/, ref/ref.wav and ref/ref.txt)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from agent_tts.errors import AgentTTSError
from agent_tts.voice import VoiceSpec


def fixture_voice_toml(fixture: Path, folder: Path | None = None) -> Path:
    """Write `fixture.toml` naming the fixture's files (in `folder`, by default a new temporary folder)."""
    try:
        reference = json.loads((fixture / "ref" / "ref.txt").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AgentTTSError(f"{fixture}: not a parity fixture folder (ref/ref.txt: {exc})") from None
    spec = VoiceSpec.with_pretrained("fixture", fixture / "models" / "s1.ckpt", fixture / "models" / "s2.pth",
                                     fixture / "ref" / "ref.wav", reference["text"],
                                     reference.get("language", "auto"), fixture / "pretrained")
    folder = folder or Path(tempfile.mkdtemp(prefix="agent-tts-fixture-"))
    path = folder / "fixture.toml"
    path.write_text(spec.to_toml(), encoding="utf-8")
    return path

"""What the operator decides about a server: who may call it, which files clients may name, and the limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from agent_tts.voice import default_voices_dir

MAX_INPUT_CHARS = 4096  # OpenAI's limit on `input`; also the limit on an api_v2 text and a WebSocket utterance


@dataclass(frozen=True)
class ServerSettings:
    """The app's settings (the network side, host and port, is the runner's)."""

    allowed_dirs: tuple[Path, ...] = field(default_factory=lambda: (default_voices_dir(),))
    """Directories whose files clients may name (api_v2's `ref_audio_path` and weight paths)."""
    api_key: str | None = None
    """When set, every route but `/`, the page's files and `/health` needs `Authorization: Bearer KEY`."""
    max_input_chars: int = MAX_INPUT_CHARS
    """The longest text one request (or one WebSocket utterance) may carry."""
    max_contexts_per_socket: int = 16
    """Contexts one WebSocket connection may have speaking or open at once."""

"""Which files clients may make the server read: only those inside the directories the operator allows.

api_v2 clients name files (`ref_audio_path`, `/set_gpt_weights`, ...). Upstream
reads whatever path it is given; here a path is resolved (relative to the
server's working directory, symbolic links followed) and must lie inside one
of the allowed directories (`--allow-dir`, default: the voices directory).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from agent_tts.errors import ForbiddenPathError, RequestError


class AllowedDirectories:
    """The directories whose files clients may name; `check` gives the resolved path or raises."""

    def __init__(self, directories: Iterable[str | Path]) -> None:
        self.directories = tuple(Path(directory).expanduser().resolve() for directory in directories)

    def check(self, path: str | Path, parameter: str) -> Path:
        """The resolved `path` if it is inside an allowed directory and is a file; `parameter` names it in errors."""
        resolved = Path(path).expanduser().resolve()
        if not any(resolved.is_relative_to(directory) for directory in self.directories):
            allowed = ", ".join(map(str, self.directories)) or "none"
            raise ForbiddenPathError(f"{parameter} {path}: outside the directories this server reads from "
                                     f"({allowed}); its operator can allow more with --allow-dir DIR")
        if not resolved.is_file():
            raise RequestError(f"{parameter} {path}: file not found")
        return resolved

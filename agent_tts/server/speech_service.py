"""What the server's protocol adapters need from the engines: one small interface, so the engines can live elsewhere.

The adapters (OpenAI speech, upstream api_v2, the WebSocket) only turn
requests into `SpeechService.stream(...)` calls and audio chunks into bytes.
`LocalSpeechService` (local_service.py) runs the engines in this process; a
Ray Serve deployment can implement the same methods over deployment handles.
Everything that crosses this interface is plain data (names, paths, dicts,
`AudioChunk`s), so it can cross a process boundary.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from agent_tts.engine.unit_stream import AudioChunk


@dataclass(frozen=True)
class ReferenceVoice:
    """A GPT-SoVITS voice described per request: weights and a reference clip with its text and language.

    api_v2 clients speak through these (`ref_audio_path` with `prompt_text`, after `/set_*_weights`). The paths
    have been checked against the allowed directories before one is made.
    """

    gpt: Path
    sovits: Path
    ref_audio: Path
    ref_text: str
    ref_language: str


@dataclass(frozen=True)
class VoiceInfo:
    """A voice the server offers: its id (what requests name), a display name, and its files if it has them."""

    id: str
    name: str
    engine: str                          # "gpt-sovits" or "bundled"
    reference: ReferenceVoice | None = None


# A registered voice's id, a voice described by its files, or None for the server's default voice.
VoiceSelection = str | ReferenceVoice | None


@dataclass(frozen=True)
class StreamCounts:
    """How busy the engines are: streams speaking, streams waiting for a seat, and work begun after a cancel
    (prefills, AR steps and SoVITS windows; the engines keep it at 0)."""

    active: int
    waiting: int
    work_after_cancel: int


class SpeechService(Protocol):
    """The engines behind the server."""

    async def start(self) -> None:
        """Load the default voice and warm it up; the server reports ready after this."""

    async def close(self) -> None:
        """Stop every stream and release the engines."""

    async def voices(self) -> list[VoiceInfo]:
        """The voices requests may name, the default voice first."""

    async def default_voice(self) -> VoiceInfo:
        """The voice a request without one speaks with."""

    def stream(self, voice: VoiceSelection, text: str | AsyncIterable[str],
               options: Mapping[str, Any]) -> AsyncIterator[AudioChunk]:
        """Audio chunks for `text` (or text deltas) in `voice`; `options` are `SynthesisOptions` fields by name.

        Raises `VoiceNotFoundError`, `OptionError`, `EngineBusyError` or another `AgentTTSError` from the first
        iteration; closing the iterator cancels the synthesis within one AR step.
        """

    def counts(self) -> StreamCounts:
        """The engines' current load, for /metrics."""

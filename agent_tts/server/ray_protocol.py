"""What crosses a Ray Serve deployment handle between the server's ingress and its speech replicas.

A speech request is a streaming call `speak(text, options)` routed with a
multiplexed model id that names the voice (`voice_key`): "" for the
replicas' default voice, a registered voice's name, or a `ReferenceVoice`'s
files and text as `reference:` + JSON (voice names cannot hold a colon).
Ray Serve's router prefers a replica that has that voice loaded. The
replica's generator yields one `ServedBy` first, before anything can fail, so
the ingress knows which replica serves the request before its answer starts
(the `x-agent-tts-replica` header), then `AudioChunk`s. Every item is plain
data (dataclasses, numpy arrays), pickled by Ray.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from agent_tts.errors import RequestError
from agent_tts.server.speech_service import ReferenceVoice, StreamCounts, VoiceSelection

REFERENCE_PREFIX = "reference:"
DEFAULT_VOICE_KEY = ""


@dataclass(frozen=True)
class ServedBy:
    """The first item of every speech stream: the replica that took it, and that replica's load when it did."""

    replica: str
    counts: StreamCounts


@dataclass(frozen=True)
class ReplicaReport:
    """One replica's account, for operators and tests: its id, the voices it holds, its load, and how its
    streams ended (a stream the caller abandoned counts as cancelled, with the audio it had made by then)."""

    replica: str
    default_voice: str
    voices_loaded: tuple[str, ...]          # multiplexed voice keys, least recently used first
    counts: StreamCounts
    completed: int
    cancelled: int
    failed: int
    cancelled_audio_seconds: float          # audio the cancelled streams had produced when they stopped


def voice_key(voice: VoiceSelection, default_id: str | None = None) -> str:
    """The multiplexed model id for `voice`; the default voice (None or `default_id`) is "" (every replica has it)."""
    if voice is None or voice == default_id:
        return DEFAULT_VOICE_KEY
    if isinstance(voice, ReferenceVoice):
        fields = [str(voice.gpt), str(voice.sovits), str(voice.ref_audio), voice.ref_text, voice.ref_language]
        return REFERENCE_PREFIX + json.dumps(fields, ensure_ascii=False)
    return voice


def voice_from_key(key: str) -> VoiceSelection:
    """The voice a multiplexed model id names (the inverse of `voice_key`)."""
    if not key:
        return None
    if not key.startswith(REFERENCE_PREFIX):
        return key
    try:
        gpt, sovits, ref_audio, ref_text, ref_language = json.loads(key[len(REFERENCE_PREFIX):])
    except (ValueError, TypeError):
        raise RequestError(f"not a reference voice key: {key[:80]!r}") from None
    return ReferenceVoice(Path(gpt), Path(sovits), Path(ref_audio), ref_text, ref_language)

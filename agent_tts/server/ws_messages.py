"""The WebSocket's client messages (`/v1/audio/stream`), checked into one small record each.

    {"type": "text",   "context_id": "a", "text": "Hel"}             # a text delta (an LLM token or more)
    {"type": "text",   "context_id": "a", "text": "...", "voice": "alice",
     "options": {"language": "en", "speed": 1.1, "seed": 7},
     "output_format": {"encoding": "pcm_s16le", "sample_rate": 24000}}   # settings: on a context's first message
    {"type": "flush",  "context_id": "a"}                            # no more text for now: speak it all, then done
    {"type": "cancel", "context_id": "a"}                            # barge-in: stop within one AR step

Anything else (not JSON, an unknown type or field, a missing context_id) is
a `RequestError` with a one-line message; the socket stays open.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agent_tts.errors import RequestError

MESSAGE_TYPES = ("text", "flush", "cancel")
FIELDS = {"text": {"type", "context_id", "text", "voice", "options", "output_format"},
          "flush": {"type", "context_id"}, "cancel": {"type", "context_id"}}
ENCODINGS = ("pcm_s16le",)
MAX_CONTEXT_ID_CHARS = 128
MIN_RATE, MAX_RATE = 8000, 48000


@dataclass(frozen=True)
class OutputFormat:
    """How a context's audio is sent: 16-bit little-endian mono PCM, base64 in JSON, at `sample_rate`
    (None: the voice's own rate)."""

    encoding: str = "pcm_s16le"
    sample_rate: int | None = None


@dataclass(frozen=True)
class ClientMessage:
    """One checked client message."""

    type: str
    context_id: str
    text: str = ""
    voice: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    output_format: OutputFormat | None = None

    @property
    def has_settings(self) -> bool:
        return self.voice is not None or bool(self.options) or self.output_format is not None


def _output_format(value: Any) -> OutputFormat:
    if not isinstance(value, dict):
        raise RequestError('output_format must be an object such as {"encoding": "pcm_s16le", "sample_rate": 24000}')
    unknown = set(value) - {"encoding", "sample_rate"}
    if unknown:
        raise RequestError(f"output_format: unknown field {sorted(unknown)[0]!r} (encoding, sample_rate)")
    encoding = value.get("encoding", "pcm_s16le")
    if encoding not in ENCODINGS:
        raise RequestError(f"output_format.encoding {encoding!r} is not one of {', '.join(ENCODINGS)}")
    rate = value.get("sample_rate")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int) or not MIN_RATE <= rate <= MAX_RATE):
        raise RequestError(f"output_format.sample_rate must be an integer from {MIN_RATE} to {MAX_RATE}, got {rate!r}")
    return OutputFormat(encoding, rate)


def parse_client_message(raw: str) -> ClientMessage:
    """A client's text frame as a `ClientMessage`, or `RequestError` saying what is wrong with it."""
    try:
        record = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RequestError(f"a message is not valid JSON ({exc}); send one JSON object per text frame") from None
    if not isinstance(record, dict):
        raise RequestError("a message must be a JSON object with a type and a context_id")
    kind = record.get("type")
    if kind not in MESSAGE_TYPES:
        raise RequestError(f"type must be one of {', '.join(MESSAGE_TYPES)}, got {kind!r}")
    unknown = set(record) - FIELDS[kind]
    if unknown:
        raise RequestError(f"a {kind} message has no field {sorted(unknown)[0]!r} "
                           f"(its fields: {', '.join(sorted(FIELDS[kind]))})")
    context_id = record.get("context_id")
    if not isinstance(context_id, str) or not context_id or len(context_id) > MAX_CONTEXT_ID_CHARS:
        raise RequestError(f"context_id must be a non-empty string of at most {MAX_CONTEXT_ID_CHARS} characters")
    if kind != "text":
        return ClientMessage(kind, context_id)
    text = record.get("text")
    if not isinstance(text, str):
        raise RequestError("a text message needs text, a string")
    voice = record.get("voice")
    if voice is not None and (not isinstance(voice, str) or not voice):
        raise RequestError("voice must be a voice id (GET /v1/audio/voices lists them)")
    options = record.get("options", {})
    if not isinstance(options, dict):
        raise RequestError("options must be an object of synthesis options, such as {\"speed\": 1.2}")
    output = record.get("output_format")
    return ClientMessage(kind, context_id, text, voice, options, None if output is None else _output_format(output))

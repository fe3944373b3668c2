"""OpenAI's speech API: `POST /v1/audio/speech`, `GET /v1/audio/voices`, `GET /v1/models`.

A drop-in for the OpenAI SDKs, Open WebUI and LiveKit's OpenAI plugin. The
audio is sent while it is made (chunked transfer), in every
`response_format` at 24 kHz mono as OpenAI's clients assume; `pcm` is 16-bit
little-endian, a streamed `wav` says 0xFFFFFFFF for its sizes.
`stream_format: "sse"` sends `speech.audio.delta` events with base64 audio,
then one `speech.audio.done` with usage. `model` and `instructions` are
accepted and not used. OpenAI's built-in voice names (alloy, nova, ...)
speak with the server's default voice unless a voice of that name is
registered. Extensions, in the body: `language`, `seed`, `top_k`, `top_p`,
`temperature`, `repetition_penalty`, `noise_scale` (`SynthesisOptions`).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from agent_tts.server.api_errors import bad_request
from agent_tts.server.audio_bodies import encoded_audio
from agent_tts.server.context import ServerContext
from agent_tts.server.disconnects import StreamingSpeechResponse, until_disconnected
from agent_tts.server.encoding import AudioEncoder, encoder_for
from agent_tts.server.speech_service import VoiceSelection
from agent_tts.server.streams import OpenStream

OPENAI_SAMPLE_RATE = 24000
# response_format: (encoder kind, Content-Type)
RESPONSE_FORMATS = {"mp3": ("mp3", "audio/mpeg"), "opus": ("opus", "audio/opus"), "aac": ("aac", "audio/aac"),
                    "flac": ("flac", "audio/flac"), "wav": ("wav", "audio/wav"), "pcm": ("pcm", "audio/pcm")}
STREAM_FORMATS = ("audio", "sse")
BUILT_IN_VOICES = frozenset({"alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer",
                             "verse", "marin", "cedar"})
# Extension fields: SynthesisOptions fields by name, with the JSON types they take.
EXTENSION_OPTIONS: dict[str, tuple[type, ...]] = {"language": (str,), "seed": (int,), "top_k": (int,),
                                                  "top_p": (int, float), "temperature": (int, float),
                                                  "repetition_penalty": (int, float), "noise_scale": (int, float)}
TYPE_WORDS = {(str,): "a string", (int,): "an integer", (int, float): "a number"}
MODEL_IDS = ("agent-tts", "tts-1", "tts-1-hd", "gpt-4o-mini-tts")


@dataclass(frozen=True)
class SpeechRequest:
    """A checked `/v1/audio/speech` body."""

    input: str
    voice: str
    response_format: str = "mp3"
    stream_format: str = "audio"
    options: dict[str, Any] = field(default_factory=dict)


def parse_speech_request(body: bytes, max_input_chars: int) -> SpeechRequest:
    """The request from a JSON body; `ApiError` (400, naming the field) for anything OpenAI would refuse."""
    try:
        record = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad_request(f"the request body is not valid JSON ({exc})", code="invalid_json") from None
    if not isinstance(record, dict):
        raise bad_request("the request body must be a JSON object", code="invalid_json")
    model = record.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("model is required (any name: every model speaks with this server's engine)", "model")
    text = record.get("input")
    if not isinstance(text, str) or not text.strip():
        raise bad_request("input is required and must have text to speak", "input")
    if len(text) > max_input_chars:
        raise bad_request(f"input is {len(text)} characters; the most is {max_input_chars}", "input",
                          "string_above_max_length")
    voice = record.get("voice")
    if isinstance(voice, dict):
        voice = voice.get("id")
    if not isinstance(voice, str) or not voice:
        raise bad_request('voice is required: a voice id, or {"id": ID} (GET /v1/audio/voices lists them)', "voice")
    response_format = record.get("response_format", "mp3")
    if response_format not in RESPONSE_FORMATS:
        raise bad_request(f"response_format {response_format!r} is not one of {', '.join(RESPONSE_FORMATS)}",
                          "response_format")
    stream_format = record.get("stream_format", "audio")
    if stream_format not in STREAM_FORMATS:
        raise bad_request(f"stream_format {stream_format!r} is not one of {', '.join(STREAM_FORMATS)}",
                          "stream_format")
    speed = record.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not 0.25 <= speed <= 4.0:
        raise bad_request(f"speed must be a number from 0.25 to 4, got {speed!r}", "speed")
    instructions = record.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise bad_request("instructions must be a string", "instructions")
    options: dict[str, Any] = {"speed": float(speed)}
    for name, types in EXTENSION_OPTIONS.items():
        if record.get(name) is not None:
            value = record[name]
            if isinstance(value, bool) or not isinstance(value, types):
                raise bad_request(f"{name} must be {TYPE_WORDS[types]}, got {value!r}", name)
            options[name] = value
    return SpeechRequest(text, voice, response_format, stream_format, options)


async def resolve_voice(context: ServerContext, voice: str) -> VoiceSelection:
    """A voice id as the service knows it; OpenAI's built-in names mean the default voice unless registered."""
    ids = {info.id for info in await context.service.voices()}
    if voice in ids:
        return voice
    if voice.lower() in BUILT_IN_VOICES:
        return None
    return voice  # the service refuses it with the list of voices


async def sse_events(stream: OpenStream, encoder: AudioEncoder, input_chars: int,
                     context: ServerContext) -> AsyncIterator[bytes]:
    """`speech.audio.delta` events as audio is made, then `speech.audio.done` (or one `error` event)."""
    def event(record: dict) -> bytes:
        return f"data: {json.dumps(record)}\n\n".encode()

    try:
        async for data in encoded_audio(stream, encoder):
            yield event({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode("ascii")})
    except Exception as exc:  # noqa: BLE001 - the status is sent already: the error goes in the stream
        yield event({"type": "error", **context.answered_error(exc).openai_body()})
        return
    usage = {"input_tokens": input_chars, "output_tokens": stream.semantic_tokens,
             "total_tokens": input_chars + stream.semantic_tokens}
    yield event({"type": "speech.audio.done", "usage": usage})


def openai_routes(context: ServerContext) -> APIRouter:
    router = APIRouter()

    @router.post("/v1/audio/speech")
    async def speech(request: Request):
        started = time.perf_counter()
        parsed = parse_speech_request(await request.body(), context.settings.max_input_chars)
        voice = await resolve_voice(context, parsed.voice)
        stream = await until_disconnected(
            request.receive, context.streams.open("openai", voice, parsed.input, parsed.options, started))
        first = await stream.first_audio()
        kind, content_type = RESPONSE_FORMATS[parsed.response_format]
        encoder = encoder_for(kind, first.sample_rate, OPENAI_SAMPLE_RATE)
        if parsed.stream_format == "sse":
            return StreamingSpeechResponse(sse_events(stream, encoder, len(parsed.input), context),
                                           media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        return StreamingSpeechResponse(encoded_audio(stream, encoder), media_type=content_type)

    @router.get("/v1/audio/voices")
    async def voices():
        return {"voices": [{"id": info.id, "name": info.name} for info in await context.service.voices()]}

    @router.get("/v1/models")
    async def models():
        return JSONResponse({"object": "list", "data": [{"id": model, "object": "model", "created": 0,
                                                         "owned_by": "agent-tts"} for model in MODEL_IDS]})

    return router

"""Upstream GPT-SoVITS `api_v2.py`: `GET`/`POST /tts`, `/set_gpt_weights`, `/set_sovits_weights`,
`/set_refer_audio`, `/control`, for the bots and VTuber front ends written against it.

As upstream, `/set_*` change the weights and reference for every later
request (global), and a request's `ref_audio_path` + `prompt_text` +
`prompt_lang` speak with the current weights and that reference. Also: a
request may name a registered voice (`voice=NAME`) and leave the globals
alone. Where upstream is wrong this is right: errors are 4xx JSON (never 200
with silence), a streamed WAV is readable (0xFFFFFFFF sizes), every
streaming mode streams token by token, and files are read only inside the
allowed directories (403 otherwise).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from agent_tts.server.api_errors import ApiError, bad_request
from agent_tts.server.api_v2_params import TtsParams, language_param, parse_tts_params, text_param
from agent_tts.server.audio_bodies import encoded_audio, whole_audio
from agent_tts.server.context import ServerContext
from agent_tts.server.disconnects import ClientGone, StreamingSpeechResponse, until_disconnected
from agent_tts.server.encoding import encoder_for
from agent_tts.server.path_policy import AllowedDirectories
from agent_tts.server.speech_service import ReferenceVoice, VoiceSelection

# media_type: (encoder kind, output rate: None keeps the voice's)
MEDIA = {"wav": ("wav", None), "raw": ("pcm", None), "ogg": ("opus", 48000), "aac": ("aac", None)}
CONTROL_COMMANDS = ("exit", "restart")
CLIENT_CLOSED_REQUEST = 499


@dataclass
class CurrentReference:
    """upstream's global voice: the weights and reference clip that `/set_*` changed (None: not set)."""

    gpt: Path | None = None
    sovits: Path | None = None
    ref_audio: Path | None = None
    ref_text: str | None = None
    ref_language: str | None = None
    changed: bool = False  # False: still the server's default voice


class ApiV2Voices:
    """Turns a `/tts` request plus the global weights and reference into the voice to speak with."""

    def __init__(self, context: ServerContext) -> None:
        self.context = context
        self.allowed = AllowedDirectories(context.settings.allowed_dirs)
        self.current = CurrentReference()
        self._default: ReferenceVoice | None = None
        self._started = False

    async def _start(self) -> None:
        """The globals begin as the default voice's files, when it is a GPT-SoVITS voice."""
        if not self._started:
            self._started = True
            reference = (await self.context.service.default_voice()).reference
            if reference is not None and not self.current.changed:
                self._default = _resolved(reference)
                self.current = CurrentReference(self._default.gpt, self._default.sovits, self._default.ref_audio,
                                                reference.ref_text, reference.ref_language)

    async def set_weights(self, kind: str, path: str | None) -> None:
        await self._start()
        if path is None:
            raise bad_request(f"{kind} weight path is required", "weights_path")
        checked = self.allowed.check(path, "weights_path")
        await asyncio.to_thread(_check_weights, kind, checked)
        setattr(self.current, kind, checked)
        self.current.changed = True

    async def set_reference(self, path: str | None, text: str | None, language: str | None) -> None:
        await self._start()
        if path is None:
            raise bad_request("refer_audio_path is required", "refer_audio_path")
        self.current.ref_audio = self.allowed.check(path, "refer_audio_path")
        self.current.ref_text, self.current.ref_language = text, language
        self.current.changed = True

    async def selection(self, params: TtsParams) -> VoiceSelection:
        if params.voice is not None:
            return params.voice
        await self._start()
        current = self.current
        if params.ref_audio_path is None and params.prompt_text is None and not current.changed:
            return None  # the server's default voice
        ref_audio = current.ref_audio
        if params.ref_audio_path is not None:
            ref_audio = self.allowed.check(params.ref_audio_path, "ref_audio_path")
        same_clip = ref_audio == current.ref_audio
        ref_text = params.prompt_text or (current.ref_text if same_clip else None)
        ref_language = params.prompt_lang or (current.ref_language if same_clip else None)
        if current.gpt is None or current.sovits is None:
            raise bad_request("no GPT-SoVITS weights to speak with: call /set_gpt_weights and /set_sovits_weights, "
                              "or register a voice (agent-tts voices add) and restart the server", "ref_audio_path")
        if ref_audio is None:
            raise bad_request("ref_audio_path is required (no reference clip is set: pass ref_audio_path or call "
                              "/set_refer_audio)", "ref_audio_path")
        if ref_text is None:
            raise bad_request("prompt_text is required with this reference clip: the words it says (reference-free "
                              "synthesis is not supported)", "prompt_text")
        if ref_language is None:
            raise bad_request("prompt_lang is required with this reference clip", "prompt_lang")
        reference = ReferenceVoice(current.gpt, current.sovits, ref_audio, ref_text, ref_language)
        return None if reference == self._default else reference  # the default voice, loaded already


def _resolved(reference: ReferenceVoice) -> ReferenceVoice:
    return ReferenceVoice(reference.gpt.resolve(), reference.sovits.resolve(), reference.ref_audio.resolve(),
                          reference.ref_text, reference.ref_language)


def _check_weights(kind: str, path: Path) -> None:
    """Read the file's header and config, as upstream loads it at once (a `CheckpointError` names the problem)."""
    from agent_tts.models.checkpoints import gpt_config, read_gpt_checkpoint, read_sovits_checkpoint, sovits_config

    if kind == "gpt":
        gpt_config(read_gpt_checkpoint(path))
    else:
        sovits_config(read_sovits_checkpoint(path))


async def request_params(request: Request) -> dict[str, Any]:
    """GET: the query string (a repeated name gives a list); POST: the JSON object."""
    if request.method == "GET":
        query = request.query_params
        return {name: values[0] if len(values) == 1 else values
                for name, values in ((name, query.getlist(name)) for name in query.keys())}
    try:
        record = json.loads(await request.body() or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad_request(f"the request body is not valid JSON ({exc})", code="invalid_json") from None
    if not isinstance(record, dict):
        raise bad_request("the request body must be a JSON object", code="invalid_json")
    return record


def success() -> JSONResponse:
    return JSONResponse({"message": "success"})


def api_v2_routes(context: ServerContext) -> APIRouter:
    router = APIRouter()
    voices = ApiV2Voices(context)

    @router.api_route("/tts", methods=["GET", "POST"])
    async def tts(request: Request):
        params = parse_tts_params(await request_params(request), context.settings.max_input_chars)
        voice = await voices.selection(params)
        try:
            stream = await until_disconnected(request.receive,
                                              context.streams.open("api_v2", voice, params.text, params.options))
        except ClientGone:
            return Response(status_code=CLIENT_CLOSED_REQUEST)
        first = await stream.first_audio()
        kind, rate = MEDIA[params.media_type]
        media_type = f"audio/{params.media_type}"
        if params.streaming_mode:
            return StreamingSpeechResponse(encoded_audio(stream, encoder_for(kind, first.sample_rate, rate)),
                                           media_type=media_type)
        encoder = encoder_for(kind, first.sample_rate, rate, streamed=False)
        try:
            return Response(await until_disconnected(request.receive, whole_audio(stream, encoder)),
                            media_type=media_type)
        except ClientGone:
            return Response(status_code=CLIENT_CLOSED_REQUEST)

    @router.api_route("/set_gpt_weights", methods=["GET", "POST"])
    async def set_gpt_weights(request: Request):
        await voices.set_weights("gpt", text_param(await request_params(request), "weights_path"))
        return success()

    @router.api_route("/set_sovits_weights", methods=["GET", "POST"])
    async def set_sovits_weights(request: Request):
        await voices.set_weights("sovits", text_param(await request_params(request), "weights_path"))
        return success()

    @router.api_route("/set_refer_audio", methods=["GET", "POST"])
    async def set_refer_audio(request: Request):
        params = await request_params(request)
        await voices.set_reference(text_param(params, "refer_audio_path"), text_param(params, "prompt_text"),
                                   language_param(params, "prompt_lang"))
        return success()

    @router.api_route("/control", methods=["GET", "POST"])
    async def control(request: Request):
        command = text_param(await request_params(request), "command")
        if command is None:
            raise bad_request("command is required", "command")
        if command not in CONTROL_COMMANDS:
            raise bad_request(f"command {command!r} is not one of {', '.join(CONTROL_COMMANDS)}", "command")
        if context.control is None:
            raise ApiError(501, "this server was started without /control (run it with agent-tts serve)",
                           "command", "not_available", kind="bad_request")
        context.control(command)
        return JSONResponse({"message": f"{command}: the server stops after the requests in progress"})

    return router

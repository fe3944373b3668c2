"""`/v1/audio/stream`: a WebSocket for LLM token streams, several conversations (contexts) per connection.

The shape follows Cartesia's and ElevenLabs' multi-context sockets. Every
message names its `context_id` (client messages: ws_messages.py). Text
deltas go into the context's current utterance, which starts speaking as
soon as its first clause is complete; `flush` ends the utterance's text, and
its `done` follows its last audio. Text sent after a flush starts the next
utterance of the context, spoken after the previous one. `cancel` stops the
context at once (within one AR step), drops its unsent audio, and answers
`done` with `"cancelled": true`; nothing of that context's earlier audio
arrives after it.

Server messages, all JSON text frames (audio is base64 16-bit little-endian
mono PCM, so one socket can carry several contexts without a framing layer):

    {"type": "mark",  "context_id", "unit_index", "text", "audio_offset_s"}   # a unit starts at this offset
    {"type": "audio", "context_id", "audio", "sample_rate", "encoding", "unit_index"}
    {"type": "words", "context_id", "unit_index", "words": [{"text", "start_s"}, ...]}  # after the audio they begin in
    {"type": "done",  "context_id", "cancelled", "audio_seconds" (not after a cancel)}
    {"type": "error", "context_id" (or null), "status", "code", "message"}

An error in a context (an unknown voice, a bad option, a busy engine) ends
that context; the socket and its other contexts go on. A context whose
utterances have all finished is forgotten: its id can start afresh, with new
settings.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import deque
from collections.abc import AsyncIterator
from contextlib import aclosing, suppress

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from agent_tts.errors import OptionError, RequestError
from agent_tts.server.context import ServerContext
from agent_tts.server.encoding import encoder_for
from agent_tts.server.streams import OpenStream
from agent_tts.server.ws_messages import ClientMessage, OutputFormat, parse_client_message

OUTBOX_MESSAGES = 256  # messages waiting for the socket; a slow reader holds the engines back through it


class Utterance:
    """One utterance of a context: its text deltas as they come, until its flush."""

    def __init__(self) -> None:
        self.deltas: asyncio.Queue[str | None] = asyncio.Queue()
        self.chars = 0
        self.input_ended = False
        self.cancelled = False

    def add(self, text: str) -> None:
        self.chars += len(text)
        self.deltas.put_nowait(text)

    def end_input(self) -> None:
        if not self.input_ended:
            self.input_ended = True
            self.deltas.put_nowait(None)

    async def texts(self) -> AsyncIterator[str]:
        while (delta := await self.deltas.get()) is not None:
            yield delta


class SpeechContext:
    """A context of one socket: its settings, its utterances in order, and the task speaking them."""

    def __init__(self, session: "SocketSession", context_id: str, voice: str | None, options: dict,
                 output_format: OutputFormat) -> None:
        self.session = session
        self.context_id = context_id
        self.voice = voice
        self.options = options
        self.output_format = output_format
        self.utterances: deque[Utterance] = deque([Utterance()])
        self.stream: OpenStream | None = None
        self.task = asyncio.ensure_future(self._speak_all())

    @property
    def open_utterance(self) -> Utterance:
        """The utterance that takes text now: the last one, or a new one after a flush."""
        if self.utterances[-1].input_ended:
            self.utterances.append(Utterance())
        return self.utterances[-1]

    def add_text(self, text: str) -> None:
        utterance = self.open_utterance
        limit = self.session.context.settings.max_input_chars
        if utterance.chars + len(text) > limit:
            raise RequestError(f"context {self.context_id}: an utterance may have at most {limit} characters; "
                               "flush to start the next one")
        if text:
            utterance.add(text)

    def flush(self) -> None:
        self.utterances[-1].end_input()

    async def cancel(self, disconnected: bool = False) -> None:
        """Stop speaking now; unsent audio is dropped. `disconnected`: the client went away (no `done`)."""
        for utterance in self.utterances:
            utterance.cancelled = True
        if self.stream is not None and not disconnected:
            self.stream.cancelled()
        self.task.cancel()
        with suppress(asyncio.CancelledError):
            await self.task
        if not disconnected:
            self.session.send(None, {"type": "done", "context_id": self.context_id, "cancelled": True})

    async def _speak_all(self) -> None:
        try:
            while self.utterances:
                await self._speak(self.utterances[0])
                self.utterances.popleft()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the error ends this context only; the client is told
            self.session.send_error(self.context_id, exc)
        finally:
            self.session.forget(self)

    async def _speak(self, utterance: Utterance) -> None:
        streams = self.session.context.streams
        # First audio counts from when this utterance's turn to speak came (its first text, or its predecessor's end).
        self.stream = stream = await streams.open("websocket", self.voice, utterance.texts(), self.options)
        encoder = None
        offset = 0.0
        async with aclosing(stream.chunks()) as chunks:
            async for chunk in chunks:
                if encoder is None:
                    rate = self.output_format.sample_rate or chunk.sample_rate
                    encoder = encoder_for("pcm", chunk.sample_rate, rate)
                if chunk.first:
                    await self.session.put(utterance, {"type": "mark", "context_id": self.context_id,
                                                       "unit_index": chunk.unit_index, "text": chunk.unit_text,
                                                       "audio_offset_s": round(offset, 4)})
                offset += chunk.seconds
                await self._send_audio(utterance, encoder.encode(chunk.pcm), rate, chunk.unit_index)
                if chunk.words:  # word times on the utterance's audio, as `audio_offset_s`
                    await self.session.put(utterance, {"type": "words", "context_id": self.context_id,
                                                       "unit_index": chunk.unit_index,
                                                       "words": [{"text": word.text, "start_s": round(word.start_s, 4)}
                                                                 for word in chunk.words]})
        if encoder is not None:
            await self._send_audio(utterance, encoder.finish(), rate, -1)
        self.stream = None
        await self.session.put(utterance, {"type": "done", "context_id": self.context_id, "cancelled": False,
                                           "audio_seconds": round(offset, 4)})

    async def _send_audio(self, utterance: Utterance, data: bytes, rate: int, unit_index: int) -> None:
        if data:
            await self.session.put(utterance, {"type": "audio", "context_id": self.context_id,
                                               "audio": base64.b64encode(data).decode("ascii"), "sample_rate": rate,
                                               "encoding": self.output_format.encoding, "unit_index": unit_index})


class Outbox:
    """The socket's outgoing messages in order; an utterance's messages wait while `limit` of them are unsent
    (a client that reads slowly holds its engines back), control messages never wait."""

    def __init__(self, limit: int) -> None:
        self._queue: asyncio.Queue[tuple[Utterance | None, dict, bool]] = asyncio.Queue()
        self._room = asyncio.Semaphore(limit)

    def put_nowait(self, utterance: Utterance | None, message: dict) -> None:
        self._queue.put_nowait((utterance, message, False))

    async def put(self, utterance: Utterance, message: dict) -> None:
        await self._room.acquire()
        self._queue.put_nowait((utterance, message, True))

    async def get(self) -> tuple[Utterance | None, dict]:
        utterance, message, counted = await self._queue.get()
        if counted:
            self._room.release()
        return utterance, message


class SocketSession:
    """One connection: reads client messages, runs its contexts, and writes every outgoing message in order."""

    def __init__(self, websocket: WebSocket, context: ServerContext) -> None:
        self.websocket = websocket
        self.context = context
        self.contexts: dict[str, SpeechContext] = {}
        self._outbox = Outbox(OUTBOX_MESSAGES)

    def send(self, utterance: Utterance | None, message: dict) -> None:
        """Queue a control message (done, error) without waiting."""
        self._outbox.put_nowait(utterance, message)

    async def put(self, utterance: Utterance, message: dict) -> None:
        """Queue an utterance's message (mark, audio, done), waiting while the outbox is full."""
        await self._outbox.put(utterance, message)

    def send_error(self, context_id: str | None, exc: BaseException) -> None:
        error = self.context.answered_error(exc)
        self.send(None, {"type": "error", "context_id": context_id, "status": error.status, "code": error.code,
                         "message": error.message})

    def forget(self, speech: SpeechContext) -> None:
        if self.contexts.get(speech.context_id) is speech:
            del self.contexts[speech.context_id]

    async def run(self) -> None:
        writer = asyncio.ensure_future(self._write())
        try:
            while True:
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message.get("text") is None:
                    self.send_error(None, RequestError("send JSON text frames; binary frames are not read"))
                    continue
                try:
                    await self._handle(parse_client_message(message["text"]))
                except (RequestError, OptionError) as exc:
                    self.send_error(_context_id_of(message["text"]), exc)
        except WebSocketDisconnect:
            pass
        finally:
            for speech in list(self.contexts.values()):
                await speech.cancel(disconnected=True)
            writer.cancel()
            with suppress(asyncio.CancelledError):
                await writer

    async def _handle(self, message: ClientMessage) -> None:
        speech = self.contexts.get(message.context_id)
        if message.type == "cancel":
            if speech is not None:
                await speech.cancel()
            return
        if message.type == "flush":
            if speech is None:
                self.send(None, {"type": "done", "context_id": message.context_id, "cancelled": False,
                                 "audio_seconds": 0.0})
            else:
                speech.flush()
            return
        if speech is None:
            speech = await self._new_context(message)
        elif message.has_settings:
            raise RequestError(f"context {message.context_id} is speaking: voice, options and output_format are "
                               "set by a context's first message")
        speech.add_text(message.text)

    async def _new_context(self, message: ClientMessage) -> SpeechContext:
        limit = self.context.settings.max_contexts_per_socket
        if len(self.contexts) >= limit:
            raise RequestError(f"this connection has {limit} contexts speaking, the most it may; wait for a done "
                               "or cancel one")
        voices = {info.id for info in await self.context.service.voices()}
        if message.voice is not None and message.voice not in voices:
            raise RequestError(f"no voice named {message.voice!r} (voices: {', '.join(sorted(voices))})")
        _check_options(message.options)
        speech = SpeechContext(self, message.context_id, message.voice, message.options,
                               message.output_format or OutputFormat())
        self.contexts[message.context_id] = speech
        return speech

    async def _write(self) -> None:
        while True:
            utterance, message = await self._outbox.get()
            if utterance is not None and utterance.cancelled:
                continue
            try:
                await self.websocket.send_text(json.dumps(message))
            except (WebSocketDisconnect, RuntimeError, OSError):
                return


def _check_options(options: dict) -> None:
    """Synthesis options are checked when a context starts, not after its first clause."""
    from agent_tts.engine.synthesizer import SynthesisOptions

    try:
        SynthesisOptions(**options)
    except TypeError as exc:
        raise OptionError(f"unknown synthesis option: {exc}") from None


def _context_id_of(raw: str) -> str | None:
    with suppress(ValueError, AttributeError):
        context_id = json.loads(raw).get("context_id")
        return context_id if isinstance(context_id, str) else None
    return None


def websocket_routes(context: ServerContext) -> APIRouter:
    router = APIRouter()

    @router.websocket("/v1/audio/stream")
    async def stream(websocket: WebSocket) -> None:
        await websocket.accept()
        await SocketSession(websocket, context).run()

    return router

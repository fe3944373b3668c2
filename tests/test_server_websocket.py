"""The WebSocket for LLM token streams (`/v1/audio/stream`), through a real client (`websockets`).

Several contexts per connection, text sent as token-sized deltas, flush, cancel (barge-in), marks, done and
errors; on the fixture voices (tiny random-weight models), greedy with a seed so a context speaks the same
alone or beside others.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re

import numpy as np
import pytest
from websockets.asyncio.client import connect

from server_support import GREEDY, fixture_server, pcm16

FIRST = "Your order shipped on Monday, and it should arrive by Thursday."
SECOND = "The refund takes three days. Is there anything else?"
LONG = " ".join(f"Sentence {n} of an answer that the user interrupts." for n in range(1, 13))
RECEIVE_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def server(gsv_v2_fixture, tmp_path_factory):
    with fixture_server(gsv_v2_fixture, tmp_path_factory.mktemp("voices")) as live:
        yield live


def tokens(text: str) -> list[str]:
    """The text cut as an LLM streams it: a word or a piece of one at a time."""
    return re.findall(r"\S{1,4}\s*|\s+", text)


class Socket:
    """A client connection that files the server's messages by context."""

    def __init__(self, websocket) -> None:
        self.websocket = websocket
        self.messages: list[dict] = []

    async def send(self, **message) -> None:
        await self.websocket.send(json.dumps(message))

    async def speak(self, context_id: str, text: str, flush: bool = True, **settings) -> None:
        for index, piece in enumerate(tokens(text)):
            await self.send(type="text", context_id=context_id, text=piece, **(settings if index == 0 else {}))
        if flush:
            await self.send(type="flush", context_id=context_id)

    async def until(self, predicate) -> dict:
        """Receive until a message matches `predicate`; that message."""
        while True:
            message = json.loads(await asyncio.wait_for(self.websocket.recv(), RECEIVE_TIMEOUT_S))
            self.messages.append(message)
            if predicate(message):
                return message

    async def done(self, context_id: str) -> dict:
        return await self.until(lambda m: m["type"] == "done" and m["context_id"] == context_id)

    def of(self, context_id: str, kind: str) -> list[dict]:
        return [m for m in self.messages if m.get("context_id") == context_id and m["type"] == kind]

    def audio(self, context_id: str) -> np.ndarray:
        return pcm16(b"".join(base64.b64decode(m["audio"]) for m in self.of(context_id, "audio")))


def socket_url(server) -> str:
    return server.url.replace("http://", "ws://") + "/v1/audio/stream"


async def alone(server, text: str, **settings) -> np.ndarray:
    async with connect(socket_url(server)) as websocket:
        socket = Socket(websocket)
        await socket.speak("solo", text, **settings)
        await socket.done("solo")
        return socket.audio("solo")


async def test_two_contexts_on_one_socket_each_speak_as_alone_with_marks_and_done(server):
    settings_a = {"voice": "fixture", "options": {**GREEDY, "seed": 4}}
    settings_b = {"voice": "second", "options": {**GREEDY, "seed": 5}}
    solo_a, solo_b = await alone(server, FIRST, **settings_a), await alone(server, SECOND, **settings_b)
    async with connect(socket_url(server)) as websocket:
        socket = Socket(websocket)
        pieces_a, pieces_b = tokens(FIRST), tokens(SECOND)
        for index in range(max(len(pieces_a), len(pieces_b))):  # the two token streams interleaved
            for context_id, pieces, settings in (("a", pieces_a, settings_a), ("b", pieces_b, settings_b)):
                if index < len(pieces):
                    await socket.send(type="text", context_id=context_id, text=pieces[index],
                                      **(settings if index == 0 else {}))
        await socket.send(type="flush", context_id="a")
        await socket.send(type="flush", context_id="b")
        done = {(await socket.until(lambda m: m["type"] == "done"))["context_id"] for _ in range(2)}
        assert done == {"a", "b"}
    for context_id, solo, text in (("a", solo_a, FIRST), ("b", solo_b, SECOND)):
        audio = socket.audio(context_id)
        assert len(audio) == len(solo) > 0 and np.abs(audio - solo).max() < 1e-3
        marks = socket.of(context_id, "mark")
        assert [m["unit_index"] for m in marks] == list(range(len(marks))) and len(marks) >= 2
        assert " ".join(m["text"] for m in marks).split() == text.split()
        assert marks[0]["audio_offset_s"] == 0 and marks[1]["audio_offset_s"] > 0
        (done_message,) = socket.of(context_id, "done")
        assert done_message["cancelled"] is False
        assert done_message["audio_seconds"] == pytest.approx(len(audio) / socket.of(context_id, "audio")[0]
                                                              ["sample_rate"], abs=1e-3)


async def test_cancel_stops_one_context_at_once_and_the_other_goes_on(server):
    before = server.metrics()
    async with connect(socket_url(server)) as websocket:
        socket = Socket(websocket)
        await socket.speak("interrupted", LONG, options=GREEDY)
        await socket.speak("kept", SECOND, options={**GREEDY, "seed": 5}, voice="second")
        await socket.until(lambda m: m["type"] == "audio" and m["context_id"] == "interrupted")
        await socket.send(type="cancel", context_id="interrupted")
        cancelled = await socket.done("interrupted")
        after_cancel = len(socket.messages)
        await socket.done("kept")
    assert cancelled["cancelled"] is True
    assert not [m for m in socket.messages[after_cancel:] if m.get("context_id") == "interrupted"]
    assert len(socket.audio("interrupted")) < 0.5 * len(await alone(server, LONG, options=GREEDY))
    assert len(socket.audio("kept")) == len(await alone(server, SECOND, voice="second",
                                                        options={**GREEDY, "seed": 5}))
    metrics = server.metrics()
    key = 'agent_tts_streams_total{api="websocket",outcome="cancelled"}'
    assert metrics[key] == before.get(key, 0) + 1
    assert metrics["agent_tts_work_after_cancel_total"] == 0


async def test_text_after_a_flush_is_the_next_utterance_and_an_empty_flush_is_done_at_once(server):
    async with connect(socket_url(server)) as websocket:
        socket = Socket(websocket)
        await socket.send(type="flush", context_id="idle")
        empty = await socket.done("idle")
        await socket.speak("c", FIRST, options=GREEDY)
        await socket.speak("c", SECOND)
        first, second = await socket.done("c"), await socket.done("c")
    assert empty["audio_seconds"] == 0 and not socket.of("idle", "audio")
    assert first["audio_seconds"] > 0 and second["audio_seconds"] > 0
    marks = [m["text"] for m in socket.of("c", "mark")]
    assert " ".join(marks).split() == (FIRST + " " + SECOND).split()
    # Word marks: every word of both utterances once, in order, each utterance timed from its own first sample.
    words = [word for message in socket.of("c", "words") for word in message["words"]]
    assert [word["text"] for word in words] == (FIRST + " " + SECOND).split()
    second_start = len(FIRST.split())
    for part in (words[:second_start], words[second_start:]):
        starts = [word["start_s"] for word in part]
        assert starts == sorted(starts) and starts[0] == 0


async def test_the_output_rate_can_be_chosen(server):
    native = await alone(server, FIRST, options={**GREEDY, "seed": 2})
    resampled = await alone(server, FIRST, options={**GREEDY, "seed": 2}, output_format={"sample_rate": 16000})
    assert abs(len(resampled) / 16000 - len(native) / 32000) < 0.01


@pytest.mark.parametrize("frame, words", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"context_id": "x", "text": "hi"}', "type must be one of text, flush, cancel"),
    ('{"type": "shout", "context_id": "x"}', "type must be one of"),
    ('{"type": "text", "text": "hi"}', "context_id must be a non-empty string"),
    ('{"type": "text", "context_id": "", "text": "hi"}', "context_id must be a non-empty string"),
    ('{"type": "text", "context_id": "x", "text": 5}', "needs text, a string"),
    ('{"type": "text", "context_id": "x", "txt": "hi"}', "has no field 'txt'"),
    ('{"type": "flush", "context_id": "x", "text": "hi"}', "a flush message has no field 'text'"),
    ('{"type": "text", "context_id": "x", "text": "hi", "voice": "nobody"}', "no voice named 'nobody'"),
    ('{"type": "text", "context_id": "x", "text": "hi", "options": {"speed": 10}}', "speed must be between"),
    ('{"type": "text", "context_id": "x", "text": "hi", "options": {"loudness": 2}}', "unknown synthesis option"),
    ('{"type": "text", "context_id": "x", "text": "hi", "output_format": {"encoding": "mp3"}}',
     "encoding 'mp3' is not one of pcm_s16le"),
    ('{"type": "text", "context_id": "x", "text": "hi", "output_format": {"sample_rate": 5}}',
     "sample_rate must be an integer from 8000 to 48000"),
    (b"\x00\x01", "send JSON text frames"),
])
async def test_a_malformed_message_gets_an_error_and_the_socket_keeps_serving(server, frame, words):
    async with connect(socket_url(server)) as websocket:
        socket = Socket(websocket)
        await websocket.send(frame)
        error = await socket.until(lambda m: m["type"] == "error")
        assert error["status"] == 400 and words in error["message"]
        await socket.speak("after", "Still here.", options=GREEDY)
        assert (await socket.done("after"))["audio_seconds"] > 0


async def test_settings_on_a_speaking_context_and_too_much_text_are_errors(server):
    async with connect(socket_url(server)) as websocket:
        socket = Socket(websocket)
        await socket.speak("c", "Hello", flush=False)
        await socket.send(type="text", context_id="c", text=" there", voice="second")
        error = await socket.until(lambda m: m["type"] == "error")
        assert "set by a context's first message" in error["message"]
        await socket.send(type="text", context_id="c", text="x" * 5000)
        error = await socket.until(lambda m: m["type"] == "error")
        assert "at most 4096 characters" in error["message"]
        await socket.send(type="flush", context_id="c")
        assert (await socket.done("c"))["audio_seconds"] > 0

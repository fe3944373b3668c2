"""Bad requests get a 4xx JSON error with a clear message, and the server keeps serving; a busy engine is 503
with Retry-After; a failure a retry cannot fix is 5xx with `x-should-retry: false`."""

from __future__ import annotations

import json
import threading

import openai
import pytest

from server_support import LiveServer, fixture_server
from agent_tts.server.app import create_app
from agent_tts.server.local_service import LocalSpeechService
from agent_tts.server.settings import ServerSettings
from agent_tts.voices import VoiceRegistry

GOOD = {"model": "tts-1", "input": "Hello there.", "voice": "fixture", "response_format": "pcm"}


@pytest.fixture(scope="module")
def voices_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("voices")


@pytest.fixture(scope="module")
def server(gsv_v2_fixture, voices_dir):
    with fixture_server(gsv_v2_fixture, voices_dir) as live:
        yield live


def openai_error(server, body: dict | bytes) -> tuple[int, dict, dict]:
    status, answer, headers = server.request("POST", "/v1/audio/speech", body)
    return status, json.loads(answer), headers


@pytest.mark.parametrize("change, param, words", [
    ({"input": ""}, "input", "input is required"),
    ({"input": "  \n\t "}, "input", "input is required"),
    ({"input": "x" * 100_000}, "input", "input is 100000 characters; the most is 4096"),
    ({"voice": "nobody"}, "voice", "no voice named 'nobody' (voices: fixture, fourth, joe, second, third)"),
    ({"voice": None}, "voice", "voice is required"),
    ({"response_format": "mp4"}, "response_format", "response_format 'mp4' is not one of mp3, opus"),
    ({"stream_format": "chunks"}, "stream_format", "stream_format 'chunks' is not one of audio, sse"),
    ({"speed": 10}, "speed", "speed must be a number from 0.25 to 4, got 10"),
    ({"speed": "fast"}, "speed", "speed must be a number"),
    ({"model": None}, "model", "model is required"),
    ({"top_k": "one"}, "top_k", "top_k must be an integer"),
    ({"temperature": -1.0}, None, "temperature"),
])
def test_each_bad_field_is_a_400_naming_it(server, change, param, words):
    status, answer, headers = openai_error(server, {**GOOD, **change})
    assert status == 400 and headers["content-type"] == "application/json"
    error = answer["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert words in error["message"]


@pytest.mark.parametrize("body, words", [(b"{not json", "not valid JSON"), (b"[1, 2]", "must be a JSON object"),
                                         (b"\xff\xfe", "not valid JSON")])
def test_a_body_that_is_not_a_json_object_is_a_400(server, body, words):
    status, answer, _ = openai_error(server, body)
    assert status == 400 and words in answer["error"]["message"]


def test_the_official_client_raises_bad_request_with_the_message(server):
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.BadRequestError, match="speed must be a number from 0.25 to 4"):
        client.audio.speech.create(model="tts-1", voice="fixture", input="Hi there.", speed=10)


def test_unknown_routes_and_methods_are_json_errors_too(server):
    status, body = server.get("/v1/audio/nothing")
    assert status == 404 and json.loads(body)["error"]["code"] == "not_found"
    status, body = server.get("/v1/audio/speech")
    assert status == 405 and "GET /v1/audio/speech" in json.loads(body)["error"]["message"]


def test_a_voice_whose_files_are_broken_is_500_without_retry_and_the_server_keeps_serving(server, voices_dir):
    broken = voices_dir / "broken.toml"
    broken.write_text((voices_dir / "fixture.toml").read_text().replace("s1.ckpt", "missing.ckpt"))
    try:
        status, answer, headers = openai_error(server, {**GOOD, "voice": "broken"})
    finally:
        broken.unlink()
    assert status == 500 and headers["x-should-retry"] == "false"
    assert answer["error"]["type"] == "server_error" and "missing.ckpt" in answer["error"]["message"]
    status, audio, _ = server.request("POST", "/v1/audio/speech", GOOD)
    assert status == 200 and len(audio) > 1000


def test_errors_are_counted_by_kind(server):
    errors = {name: value for name, value in server.metrics().items() if name.startswith("agent_tts_errors_total")}
    assert errors['agent_tts_errors_total{kind="bad_request"}'] >= 10
    assert errors['agent_tts_errors_total{kind="engine"}'] >= 1


def test_beyond_the_stream_limits_a_request_is_503_with_retry_after(tmp_path):
    """The bundled voice with room for one stream and no queue: a second request while one speaks is refused."""
    service = LocalSpeechService(VoiceRegistry(tmp_path / "none"), max_streams=1, max_waiting=0)
    long_text = " ".join(["This long answer keeps the only seat busy for a while."] * 12)
    with LiveServer(create_app(service, ServerSettings(allowed_dirs=(tmp_path,)))) as live:
        first_bytes = threading.Event()
        outcome = {}

        def speak_long() -> None:
            import urllib.request
            request = urllib.request.Request(f"{live.url}/v1/audio/speech", method="POST", data=json.dumps(
                {"model": "tts-1", "input": long_text, "voice": "joe", "response_format": "pcm"}).encode(),
                headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=120) as response:
                response.read(1000)
                first_bytes.set()
                outcome["rest"] = len(response.read())

        speaker = threading.Thread(target=speak_long)
        speaker.start()
        assert first_bytes.wait(120)
        status, answer, headers = live.request("POST", "/v1/audio/speech", {**GOOD, "voice": "joe"})
        speaker.join(120)
        assert status == 503 and headers["retry-after"] == "1" and "x-should-retry" not in headers
        assert answer.startswith(b'{"error"') and b"busy: 1 streams active, 0 waiting" in answer
        assert outcome["rest"] > 0  # the stream that had the seat finished
        assert live.request("POST", "/v1/audio/speech", {**GOOD, "voice": "joe"})[0] == 200

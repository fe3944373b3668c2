"""A client that goes away mid-stream stops its generation: the stream ends as "disconnected" in /metrics long
before its text is spoken, and no engine work begins after its cancel (the engines count it: 0)."""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse

import pytest

from engine_support import REFERENCE_TEXT
from server_support import GREEDY, fixture_server

LONG_TEXT = " ".join(f"Part {n} of an answer that the listener will not wait for." for n in range(1, 9))
DISCONNECTED = 'agent_tts_streams_total{{api="{api}",outcome="disconnected"}}'
AUDIO = 'agent_tts_audio_seconds_total{{api="{api}"}}'


@pytest.fixture(scope="module")
def server(gsv_v2_fixture, tmp_path_factory):
    with fixture_server(gsv_v2_fixture, tmp_path_factory.mktemp("voices")) as live:
        yield live


def wait_for(server, predicate, timeout: float = 120) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        metrics = server.metrics()
        if predicate(metrics):
            return metrics
        time.sleep(0.1)
    raise AssertionError(f"the metrics did not show it within {timeout} s: {server.metrics()}")


def full_audio_seconds(server, api: str, send) -> float:
    """Audio seconds of the whole text, spoken to the end by a client that stays."""
    before = server.metrics().get(AUDIO.format(api=api), 0.0)
    connection = send()
    response = connection.getresponse()
    assert response.status == 200
    response.read()
    connection.close()
    return wait_for(server, lambda m: m.get(AUDIO.format(api=api), 0.0) > before)[AUDIO.format(api=api)] - before


def leave_after_first_bytes(server, api: str, send, streamed: bool) -> tuple[float, dict[str, float]]:
    before = server.metrics()
    connection = send()
    if streamed:
        response = connection.getresponse()
        assert response.status == 200 and response.read1(4096)
    else:
        time.sleep(0.5)  # the whole file is being made; nothing comes before the end
    connection.sock.close()
    connection.close()
    key = DISCONNECTED.format(api=api)
    after = wait_for(server, lambda m: m.get(key, 0.0) > before.get(key, 0.0) and m["agent_tts_streams_active"] == 0)
    return after[AUDIO.format(api=api)] - before.get(AUDIO.format(api=api), 0.0), after


def openai_request(server):
    def send() -> http.client.HTTPConnection:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        connection.request("POST", "/v1/audio/speech", json.dumps(
            {"model": "tts-1", "input": LONG_TEXT, "voice": "fixture", "response_format": "pcm", **GREEDY,
             "seed": 1}), {"Content-Type": "application/json"})
        return connection
    return send


def api_v2_request(server, streaming_mode: int):
    query = urllib.parse.urlencode({"text": LONG_TEXT, "text_lang": "en", "prompt_lang": "en", "top_k": "1",
                                    "prompt_text": REFERENCE_TEXT, "seed": "1", "streaming_mode": str(streaming_mode)})

    def send() -> http.client.HTTPConnection:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        connection.request("GET", f"/tts?{query}")
        return connection
    return send


def test_a_streaming_openai_client_that_leaves_stops_its_generation(server):
    full = full_audio_seconds(server, "openai", openai_request(server))
    sent, metrics = leave_after_first_bytes(server, "openai", openai_request(server), streamed=True)
    print(f"openai: {sent:.1f} s of audio made before the disconnect stopped it, of {full:.1f} s")
    assert sent < 0.6 * full
    assert metrics["agent_tts_work_after_cancel_total"] == 0


@pytest.mark.parametrize("streaming_mode", [0, 3])
def test_an_api_v2_client_that_leaves_stops_its_generation_streamed_or_not(server, streaming_mode):
    full = full_audio_seconds(server, "api_v2", api_v2_request(server, streaming_mode))
    sent, metrics = leave_after_first_bytes(server, "api_v2", api_v2_request(server, streaming_mode),
                                            streamed=streaming_mode > 0)
    print(f"api_v2 streaming_mode={streaming_mode}: {sent:.1f} s of audio made before the disconnect, of {full:.1f} s")
    assert sent < 0.6 * full
    assert metrics["agent_tts_work_after_cancel_total"] == 0

"""`agent-tts serve` as a user runs it: out of the box on the bundled voice, the binding rule, the API key, a
graceful shutdown that lets a stream finish, `/control`; and `agent-tts bench-server` against it."""

from __future__ import annotations

import http.client
import json
import os
import signal
import sys
import threading
import time
import urllib.parse

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from child_process import run_child
from server_support import ServeChild, decode, pcm16

KEY = "test-key-123"
BEARER = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def empty_home(tmp_path) -> dict[str, str]:
    """No voice registered: the bundled default voice speaks."""
    return {"AGENT_TTS_HOME": str(tmp_path / "home")}


def test_any_address_but_loopback_needs_a_key_or_no_auth(empty_home):
    result = run_child([sys.executable, "-m", "agent_tts.cli.main", "serve", "--host", "0.0.0.0"], timeout=120,
                       env={**os.environ, **empty_home})
    assert result.returncode == 2
    assert "--host 0.0.0.0 makes the server reachable from other machines: pass --api-key KEY" in result.stderr


async def test_out_of_the_box_with_a_key_it_serves_the_bundled_voice_and_refuses_strangers(empty_home, tmp_path):
    with ServeChild(["--api-key", KEY], empty_home, tmp_path / "serve.log") as server:
        health = json.loads(server.get("/health")[1])
        assert health == {"status": "ready", "voice": "joe"}
        status, body, headers = server.request("GET", "/v1/audio/voices")
        assert status == 401 and headers["www-authenticate"] == "Bearer"
        assert json.loads(body)["error"]["code"] == "invalid_api_key"
        assert server.request("GET", "/tts?text=hi&text_lang=en")[0] == 401
        status, body = server.get("/")
        assert status == 200 and b"/v1/audio/stream" in server.get("/page/page.js")[1]
        status, body, _ = server.request("GET", "/v1/audio/voices", headers=BEARER)
        assert status == 200 and json.loads(body)["voices"][0]["id"] == "joe"
        status, wav, _ = server.request("GET", "/tts?" + urllib.parse.urlencode(
            {"text": "Hello from the default voice.", "text_lang": "en"}), headers=BEARER)
        assert status == 200 and decode(wav).sample_rate == 22050 and decode(wav).seconds > 0.5
        status, pcm, _ = server.request("POST", "/v1/audio/speech", {"model": "tts-1", "input": "Hello there.",
                                                                       "voice": "alloy", "response_format": "pcm"},
                                        headers=BEARER)
        assert status == 200 and len(pcm16(pcm)) > 24000 // 2
        socket_url = server.url.replace("http://", "ws://") + "/v1/audio/stream"
        with pytest.raises(InvalidStatus):
            async with connect(socket_url):
                pass
        async with connect(f"{socket_url}?api_key={KEY}") as websocket:
            await websocket.send(json.dumps({"type": "flush", "context_id": "c"}))
            assert json.loads(await websocket.recv())["type"] == "done"
    log = server.log()
    assert '"POST /v1/audio/speech" 200' in log and '"GET /v1/audio/voices" 401' in log  # the access log
    assert "Application shutdown complete" in log


def test_sigterm_lets_a_stream_in_progress_finish_then_exits(empty_home, tmp_path):
    server = ServeChild(["--shutdown-deadline", "60"], empty_home, tmp_path / "serve.log")
    with server:
        text = " ".join(["This answer is still being spoken when the server is asked to stop."] * 6)
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        connection.request("POST", "/v1/audio/speech", json.dumps(
            {"model": "tts-1", "input": text, "voice": "joe", "response_format": "wav"}),
            {"Content-Type": "application/json"})
        response = connection.getresponse()
        first = response.read(44)
        stopping = threading.Thread(target=server.stop)
        stopping.start()  # SIGTERM while the answer streams
        rest = response.read()
        stopping.join()
    # uvicorn ends by re-raising the signal it caught, once it has shut down.
    assert server.process.returncode in (0, -signal.SIGTERM)
    log = server.log()
    assert log.index("Shutting down") < log.index("openai stream (joe) completed") < log.index(
        "Application shutdown complete")
    assert decode(first + rest).seconds > 10  # all of it arrived, after the SIGTERM


def test_control_restart_starts_it_again_and_exit_stops_it(empty_home, tmp_path):
    with ServeChild([], empty_home, tmp_path / "serve.log") as server:
        assert server.request("GET", "/control?command=restart")[0] == 200
        deadline = time.monotonic() + 300
        while "restarting" not in server.log() or server.get("/health")[0] != 200:
            assert time.monotonic() < deadline and server.process.poll() is None, server.log()[-4000:]
            time.sleep(0.3)
        assert server.log().count("Uvicorn running on") == 2
        assert server.request("GET", "/control?command=exit")[0] == 200
        assert server.process.wait(60) == 0


def test_bench_server_reports_first_byte_and_throughput(empty_home, tmp_path):
    with ServeChild([], empty_home, tmp_path / "serve.log") as server:
        report = tmp_path / "bench.json"
        result = run_child([sys.executable, "-m", "agent_tts.cli.main", "bench-server", "--url", server.url,
                            "--clients", "2", "--requests", "1", "--text", "A short answer.", "--json",
                            str(report)], timeout=300)
    assert result.returncode == 0, result.stderr
    assert "first byte p50" in result.stdout and "0 errors" in result.stdout
    figures = json.loads(report.read_text())["figures"]
    assert figures["requests"] == 2 and figures["errors"] == 0 and figures["audio_seconds"] > 0

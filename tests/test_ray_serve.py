"""`agent-tts serve --ray` on a real single-node Ray instance: Ray Serve's HTTP proxy, two speech replicas, the
official `openai` client, multiplexed voices, a disconnect, a full queue, and a replica killed mid-stream.

One Ray instance (about 10 s to start and 1.3 GB before any model) serves every test of the module. The
replicas reserve a quarter of a CPU each (Ray reserves one per replica by default, and this machine has two);
they speak the gsv-v2 fixture voices (tiny random-weight models, four reference clips). The replica killed
mid-stream is the last test, since it changes the replicas. At the end Serve and Ray are shut down and the
module checks that no Ray process outlives them.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import re
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import openai
import pytest

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'agent-tts[ray]')")
from ray import serve  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from agent_tts.server.ray_app import APP_NAME, RayServeArgs, build_app  # noqa: E402
from agent_tts.server.ray_protocol import ReplicaReport  # noqa: E402
from agent_tts.server.replica_header import REPLICA_HEADER  # noqa: E402
from server_support import GREEDY, ServerClient, decode, pcm16, write_fixture_voices  # noqa: E402

TEXT = "Your order shipped on Monday. It should arrive by Thursday."
LONG_TEXT = " ".join(f"Part {n} of an answer that the listener will not wait for." for n in range(1, 13))
SAME = {**GREEDY, "seed": 3}
MAX_STREAMS = 2        # per replica
MAX_QUEUED = 2         # requests waiting for a replica, beyond them 429
READY_TIMEOUT_S = 300
REPLICA_DEPLOYMENT = "SpeechReplica"


def descendants(pid: int) -> set[int]:
    """Every living process below `pid` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


@dataclass
class RayServer(ServerClient):
    """The application behind Ray Serve's HTTP proxy on 127.0.0.1:`port`, and a handle to its speech replicas."""

    port: int
    replicas: object = None

    def __post_init__(self) -> None:
        super().__init__(self.port)

    def report(self, replica: str, until=lambda report: True, timeout: float = 60) -> ReplicaReport:
        """`replica`'s report once `until` holds for it (a handle call reaches either replica; ask until it is
        that one)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            report = self.replicas.report.remote().result()
            if report.replica == replica and until(report):
                return report
            time.sleep(0.05)
        raise AssertionError(f"no report from replica {replica} that satisfies the test in {timeout} s")

    def replica_ids(self) -> set[str]:
        prefix = f"SERVE_REPLICA::{APP_NAME}#{REPLICA_DEPLOYMENT}#"
        return {actor["name"][len(prefix):] for actor in ray.util.list_named_actors(all_namespaces=True)
                if actor["name"].startswith(prefix)}

    def running_replicas(self) -> int:
        states = serve.status().applications[APP_NAME].deployments[REPLICA_DEPLOYMENT].replica_states
        return states.get("RUNNING", 0)


@pytest.fixture(scope="module")
def ray_server(gsv_v2_fixture, tmp_path_factory):
    folder = tmp_path_factory.mktemp("voices")
    write_fixture_voices(gsv_v2_fixture, folder)
    before = descendants(os.getpid())
    with pytest.MonkeyPatch.context() as environment:
        # Ray's memory monitor kills workers when the machine's memory is 95% used, by anyone: not on a shared runner.
        environment.setenv("RAY_memory_monitor_refresh_ms", "0")
        ray.init(num_cpus=2, _temp_dir=str(tmp_path_factory.mktemp("ray")), include_dashboard=False,
                 log_to_driver=False, logging_level="WARNING")
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        args = RayServeArgs(voices_dir=str(folder), replicas=2, num_cpus=0.25, ingress_num_cpus=0.25,
                            max_streams=MAX_STREAMS, max_queued_requests=MAX_QUEUED, busy_status=429,
                            voices_per_replica=1, precision="fp32")  # fp32, as the plain server's tests
        serve.run(build_app(args), name=APP_NAME, route_prefix="/")
        server = RayServer(port, serve.get_deployment_handle(REPLICA_DEPLOYMENT, app_name=APP_NAME))
        deadline = time.monotonic() + READY_TIMEOUT_S
        while server.get("/health")[0] != 200:
            assert time.monotonic() < deadline, f"/health did not say ready: {server.get('/health')}"
            time.sleep(0.2)
        yield server
    finally:
        ray_processes = descendants(os.getpid()) - before
        serve.shutdown()
        ray.shutdown()
        deadline = time.monotonic() + 30
        while (left := ray_processes & descendants(os.getpid())) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not left, f"Ray processes left behind: {sorted(left)}"


@pytest.fixture(scope="module")
def client(ray_server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{ray_server.url}/v1", api_key="unused", max_retries=0)


def speak(client: openai.OpenAI, text: str = TEXT, voice: str = "fixture", **extra) -> tuple[bytes, str, int]:
    """The streamed PCM, the replica that spoke it, and how many pieces it arrived in."""
    with client.audio.speech.with_streaming_response.create(model="tts-1", voice=voice, input=text,
                                                           response_format="pcm", extra_body=extra) as response:
        pieces = list(response.iter_bytes())
        return b"".join(pieces), response.headers[REPLICA_HEADER], len(pieces)


def test_the_openai_client_streams_through_the_proxy_and_requests_spread_over_both_replicas(ray_server, client):
    results = []
    for _ in range(5):  # pairs of concurrent requests: the router gives the second to the idler replica
        pair = [None, None]

        def one(index: int) -> None:
            pair[index] = speak(client, **SAME)
        threads = [threading.Thread(target=one, args=(index,)) for index in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        results += pair
        if len({replica for _, replica, _ in results}) == 2:
            break
    replicas = {replica for _, replica, _ in results}
    print(f"replicas seen: {sorted(replicas)} over {len(results)} requests")
    assert replicas == ray_server.replica_ids()
    audio = {pcm for pcm, _, _ in results}
    assert len(audio) == 1  # greedy with a seed: both replicas speak it alike
    assert len(pcm16(results[0][0])) / 24000 > 1.0 and all(pieces > 1 for _, _, pieces in results)


def test_a_second_voice_is_loaded_on_demand_by_multiplexing_and_the_lru_keeps_one_per_replica(ray_server, client):
    default, _, _ = speak(client, **SAME)
    second, replica, _ = speak(client, voice="second", **SAME)
    assert second != default
    assert "second" in ray_server.report(replica).voices_loaded
    again, replica_again, _ = speak(client, voice="second", **SAME)
    assert again == second
    for voice in ("third", "fourth"):  # more voices than the two replicas keep: the least recently used go
        assert len(speak(client, voice=voice, **SAME)[0]) > 0
    for name in ray_server.replica_ids():
        report = ray_server.report(name)
        assert len(report.voices_loaded) <= 1, report
        assert report.counts.work_after_cancel == 0 and report.failed == 0, report
    print(f"second voice on replica {replica}, asked again: {replica_again}")


def test_errors_keep_their_answers_across_the_handle(ray_server, client):
    with pytest.raises(openai.BadRequestError, match="no voice named 'nobody'"):
        speak(client, voice="nobody")
    with pytest.raises(openai.BadRequestError, match="noise_scale cannot be negative") as refused:
        speak(client, noise_scale=-1.0)  # checked by the engine, in a replica
    assert refused.value.response.headers[REPLICA_HEADER] in ray_server.replica_ids()
    status, wav, headers = ray_server.request("GET", "/tts?" + urllib.parse.urlencode(
        {"text": TEXT, "text_lang": "en", "voice": "fixture", "top_k": "1", "seed": "3"}))
    assert status == 200 and headers["content-type"] == "audio/wav" and headers[REPLICA_HEADER]
    assert decode(wav).seconds > 1.0


def test_a_disconnect_cancels_generation_on_the_replica(ray_server):
    body = json.dumps({"model": "tts-1", "input": LONG_TEXT, "voice": "fixture", "response_format": "pcm", **SAME})
    connection = http.client.HTTPConnection("127.0.0.1", ray_server.port, timeout=120)
    connection.request("POST", "/v1/audio/speech", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 200
    replica = response.getheader(REPLICA_HEADER)
    assert response.read1(4096)
    connection.sock.close()
    connection.close()
    report = ray_server.report(replica, lambda r: r.cancelled >= 1 and r.counts.active == 0)
    sent = report.cancelled_audio_seconds
    full_audio_s = len(pcm16(ray_server.request("POST", "/v1/audio/speech", json.loads(body))[1])) / 24000
    print(f"{sent:.1f} s of audio made before the disconnect stopped it, of {full_audio_s:.1f} s")
    assert sent < 0.6 * full_audio_s
    assert report.counts.work_after_cancel == 0


async def test_llm_deltas_over_the_websocket_are_spoken_unit_by_unit(ray_server):
    text = "Thanks for calling, let me check. Your order shipped on Monday. It arrives by Thursday."
    messages = []
    async with connect(ray_server.url.replace("http://", "ws://") + "/v1/audio/stream") as websocket:
        for index, piece in enumerate(re.findall(r"\S{1,4}\s*|\s+", text)):
            await websocket.send(json.dumps({"type": "text", "context_id": "a", "text": piece,
                                             **({"options": GREEDY} if index == 0 else {})}))
        await websocket.send(json.dumps({"type": "flush", "context_id": "a"}))
        while not messages or messages[-1]["type"] not in ("done", "error"):
            messages.append(json.loads(await asyncio.wait_for(websocket.recv(), 120)))
    assert messages[-1]["type"] == "done" and not messages[-1]["cancelled"], messages[-1]
    marks = [m for m in messages if m["type"] == "mark"]
    assert [m["unit_index"] for m in marks] == list(range(len(marks))) and len(marks) >= 3
    assert " ".join(m["text"] for m in marks).split() == text.split()
    audio = [m for m in messages if m["type"] == "audio"]
    samples = sum(len(base64.b64decode(m["audio"])) // 2 for m in audio)
    assert messages[-1]["audio_seconds"] > 1.0
    assert abs(samples / audio[0]["sample_rate"] - messages[-1]["audio_seconds"]) < 0.05
    # Word times: every word once, on the utterance's audio although each unit was a request of its own.
    words = [word for m in messages if m["type"] == "words" for word in m["words"]]
    assert [word["text"] for word in words] == text.split()
    starts = [word["start_s"] for word in words]
    assert starts == sorted(starts) and starts[0] == 0 and starts[-1] < messages[-1]["audio_seconds"]
    bounds = [mark["audio_offset_s"] for mark in marks] + [messages[-1]["audio_seconds"]]
    for m in messages:
        if m["type"] == "words":  # a unit's words begin within its audio
            low, high = bounds[m["unit_index"]], bounds[m["unit_index"] + 1]
            assert all(low - 0.01 <= w["start_s"] < high for w in m["words"]), (m, low, high)


def test_a_full_queue_answers_429_with_retry_after(ray_server, client):
    """Ten requests at once for two replicas that take two streams each, with two more waiting: some are refused at
    once, with the busy answer; a client that leaves frees its seat, and the next request is served."""
    answers: list[tuple[int, dict[str, str], bytes]] = []
    lock = threading.Lock()
    body = json.dumps({"model": "tts-1", "input": LONG_TEXT, "voice": "fixture", "response_format": "pcm"})
    start = threading.Barrier(10)

    def one() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", ray_server.port, timeout=120)
        start.wait()
        connection.request("POST", "/v1/audio/speech", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        answer = response.read() if response.status != 200 else response.read1(4096)
        connection.close()  # a 200's client leaves after its first audio
        with lock:
            answers.append((response.status, {k.lower(): v for k, v in response.getheaders()}, answer))

    threads = [threading.Thread(target=one) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(status for status, _, _ in answers)
    print(f"statuses: {statuses}")
    assert set(statuses) == {200, 429}
    for status, headers, answer in answers:
        if status == 429:
            assert headers["retry-after"] == "1" and json.loads(answer)["error"]["code"] == "server_busy", answer
    assert len(speak(client, **SAME)[0]) > 0


def test_a_replica_killed_mid_stream_fails_that_stream_cleanly_and_comes_back(ray_server, client):
    ids_before = ray_server.replica_ids()
    with client.audio.speech.with_streaming_response.create(model="tts-1", voice="fixture", input=LONG_TEXT,
                                                           response_format="pcm") as response:
        victim = response.headers[REPLICA_HEADER]
        pieces = response.iter_bytes()
        assert next(pieces)
        ray.kill(ray.get_actor(f"SERVE_REPLICA::{APP_NAME}#{REPLICA_DEPLOYMENT}#{victim}", namespace="serve"),
                 no_restart=True)
        killed = time.monotonic()
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError, openai.APIError)) as failure:
            for _ in pieces:
                pass
    print(f"the client of the killed replica: {failure.value!r}")
    for _ in range(3):  # at once: the survivor (and, once it is up, the new replica) answers
        pcm, replica, _ = speak(client, **SAME)
        assert replica != victim and len(pcm) > 0
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not (ray_server.running_replicas() == 2 and len(ray_server.replica_ids() - ids_before) == 1):
        assert time.monotonic() < deadline, f"the replica did not come back: {serve.status()}"
        time.sleep(0.5)
    newcomer, = ray_server.replica_ids() - ids_before
    print(f"replica {newcomer} replaced {victim} within {time.monotonic() - killed:.1f} s")
    assert victim not in ray_server.replica_ids()
    assert ray_server.report(newcomer).failed == 0

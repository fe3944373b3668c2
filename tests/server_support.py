"""Helpers of the server tests: a real server on loopback, fixture voices, and independent decoders.

`LiveServer` runs `create_app(...)` on uvicorn in a background thread on a
free 127.0.0.1 port (the same app `agent-tts serve` runs); the tests reach it
with real clients (the `openai` SDK, `urllib`, `websockets`, a browser). The
voices are the gsv-v2 fixture's tiny random-weight models with four
reference clips cut from its clip, so they differ as speakers do while their
streams share one GPT and one batched AR step.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import soundfile
import uvicorn

from agent_tts.server.app import create_app
from agent_tts.server.local_service import LocalSpeechService
from agent_tts.server.settings import ServerSettings
from agent_tts.voices import VoiceRegistry
from engine_support import write_fixture_voice

READY_TIMEOUT_S = 300
# Reference clips cut from the fixture's 5.5 s clip: (name, first second, last second, reversed).
CLIPS = (("fixture", None, None, False), ("second", None, None, True), ("third", 0.0, 4.0, False),
         ("fourth", 1.5, 5.5, False))
GREEDY = {"top_k": 1}


def write_fixture_voices(fixture: Path, folder: Path) -> VoiceRegistry:
    """A registry in `folder` with the fixture voice and three more made from cuts of its clip."""
    folder.mkdir(parents=True, exist_ok=True)
    clip, rate = soundfile.read(fixture / "ref" / "ref.wav", dtype="float32")
    for name, start, end, backwards in CLIPS:
        path = write_fixture_voice(fixture, folder, name)
        if name == "fixture":
            continue
        cut = clip[int((start or 0) * rate): None if end is None else int(end * rate)]
        wav = folder / f"{name}.wav"
        soundfile.write(wav, cut[::-1].copy() if backwards else cut, rate)
        path.write_text(path.read_text().replace(str(fixture / "ref" / "ref.wav"), str(wav)))
    (folder / "default").write_text("fixture\n")
    return VoiceRegistry(folder)


class ServerClient:
    """Plain HTTP calls to a server on loopback at `port`."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def request(self, method: str, path: str, body: bytes | dict | None = None,
                headers: dict[str, str] | None = None, timeout: float = 120) -> tuple[int, bytes, dict[str, str]]:
        """(status, body, headers with lower-case names) of one request; errors are answers, not exceptions."""
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        request = urllib.request.Request(self.url + path, data=data, method=method, headers={
            **({"Content-Type": "application/json"} if data is not None else {}), **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read(), _lower(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, error.read(), _lower(error.headers)
        except OSError:
            return 0, b"", {}

    def get(self, path: str, **kwargs) -> tuple[int, bytes]:
        status, body, _ = self.request("GET", path, **kwargs)
        return status, body

    def metrics(self) -> dict[str, float]:
        """/metrics as {sample with labels: value}."""
        _, body = self.get("/metrics")
        samples = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples


class LiveServer(ServerClient):
    """The app on uvicorn in a thread, on a free loopback port; `with LiveServer(app) as server:` waits for ready."""

    def __init__(self, app) -> None:
        self.app = app
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        super().__init__(self._socket.getsockname()[1])
        self.server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False,
                                                    timeout_graceful_shutdown=5))
        self._thread = threading.Thread(target=lambda: asyncio.run(self.server.serve(sockets=[self._socket])),
                                        name="live-server", daemon=True)

    def __enter__(self) -> "LiveServer":
        self._thread.start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            status, body = self.get("/health")
            if status == 200:
                return self
            if b"failed" in body:
                raise RuntimeError(f"the server did not start: {body!r}")
            time.sleep(0.2)
        raise RuntimeError(f"{self.url}/health did not say ready in {READY_TIMEOUT_S} s")

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=30)

def _lower(headers) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def fixture_server(fixture: Path, folder: Path, also_allowed: tuple[Path, ...] = (), **service_options) -> LiveServer:
    """A server of the fixture voices written into `folder`, which (with `also_allowed`) clients may name files in."""
    service = LocalSpeechService(write_fixture_voices(fixture, folder), **service_options)
    return LiveServer(create_app(service, ServerSettings(allowed_dirs=(folder, *also_allowed))))


@dataclass
class Decoded:
    """Audio decoded by PyAV (FFmpeg's decoders and demuxers), not by the server's code: mono samples, rate."""

    samples: np.ndarray
    sample_rate: int
    codec: str

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate


def decode(data: bytes, format: str | None = None) -> Decoded:
    """Decode a whole file's bytes with PyAV; `format` forces the demuxer (raw PCM needs its rate elsewhere)."""
    with av.open(io.BytesIO(data), format=format) as container:
        stream = container.streams.audio[0]
        assert stream.channels == 1, f"{stream.channels} channels"
        frames = [frame.to_ndarray().reshape(-1) for frame in container.decode(stream)]
        return Decoded(np.concatenate(frames) if frames else np.zeros(0), stream.rate,
                       stream.codec_context.name)


def pcm16(data: bytes) -> np.ndarray:
    return np.frombuffer(data, "<i2").astype(np.float32) / 32768.0


class ServeChild(ServerClient):
    """`agent-tts serve` in a child process on a free loopback port; its log goes to `log_path`.

    `with ServeChild(args, env, log_path) as child:` waits for /health to say ready; leaving the block stops it
    (SIGTERM, then SIGABRT for a stack dump if it hangs, as tests/child_process.py does).
    """

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            super().__init__(probe.getsockname()[1])
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "agent_tts.cli.main", "serve", "--port", str(self.port), *args],
            env={**os.environ, **env, "PYTHONFAULTHANDLER": "1"}, stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text()

    def __enter__(self) -> "ServeChild":
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"agent-tts serve exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            if self.get("/health")[0] == 200:
                return self
            time.sleep(0.3)
        self.stop()
        raise AssertionError(f"agent-tts serve was not ready in {READY_TIMEOUT_S} s:\n{self.log()[-4000:]}")

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait; a child that hangs dumps its threads' stacks into the log and fails the test."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGABRT)
            self.process.wait(30)
            raise AssertionError(f"agent-tts serve did not stop in {timeout} s:\n{self.log()[-12000:]}") from None
        finally:
            self._log.close()

    def __exit__(self, *exc) -> None:
        self.stop()

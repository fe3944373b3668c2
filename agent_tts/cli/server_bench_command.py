"""``agent-tts bench-server``: N concurrent clients against a speech server; first byte p50/p95, throughput, errors.

Without --url it starts `agent-tts serve` on a free loopback port (with
--voice and --device; or, with --real-size-voice, on a real-size v2 voice
with random weights written for the run), waits for /health, measures, and
stops it. Each client
sends OpenAI speech requests (`response_format: pcm`, 24 kHz 16-bit) one
after another and reads the body as it streams; the first byte is timed
from the request's start. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import tempfile
import urllib.request
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from agent_tts.errors import AgentTTSError

PCM_BYTES_PER_SECOND = 24000 * 2
DEFAULT_TEXT = ("Thanks for calling. Your order shipped on Monday, and it should arrive by Thursday. "
                "Is there anything else I can help you with today?")
READY_TIMEOUT_S = 600


@dataclass
class RequestResult:
    """One request: when its first byte came, when it ended, the audio it brought, and its error if any."""

    first_byte_s: float | None
    total_s: float
    audio_s: float
    error: str | None = None


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench-server",
        help="load a speech server with concurrent clients: first byte p50/p95, throughput, errors",
        description="Run N concurrent OpenAI speech clients (pcm, streamed) against --url, or against an "
        "`agent-tts serve` started here on a free port.",
    )
    parser.add_argument("--url", help="a running server (default: start one here)")
    parser.add_argument("--voice", metavar="NAME", help="the voice (default: the server's default voice)")
    parser.add_argument("--real-size-voice", action="store_true",
                        help="the server started here speaks a real-size GPT-SoVITS v2 voice with random weights "
                        "(written for the run, about 20 s; same compute as trained weights)")
    parser.add_argument("--device", default="auto", help="for the server started here (default auto)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (default 4)")
    parser.add_argument("--requests", type=int, default=3, help="requests per client, one after another (default 3)")
    parser.add_argument("--text", default=DEFAULT_TEXT, help="what each request says")
    parser.add_argument("--api-key", default=os.environ.get("AGENT_TTS_API_KEY"), help="Bearer key, if needed")
    parser.add_argument("--json", metavar="PATH", help="also write the figures and every request as JSON")
    parser.set_defaults(handler=run)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_ready(url: str, server: subprocess.Popen | None) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server is not None and server.poll() is not None:
            raise AgentTTSError(f"the server exited with status {server.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                if json.load(response).get("status") == "ready":
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AgentTTSError(f"{url}/health did not say ready within {READY_TIMEOUT_S} s")


def speak_once(url: str, text: str, voice: str | None, api_key: str | None) -> RequestResult:
    """One streamed OpenAI speech request, timed."""
    parts = urlsplit(url)
    body = json.dumps({"model": "agent-tts", "input": text, "voice": voice or "alloy", "response_format": "pcm"})
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {api_key}"} if api_key else {})}
    started = time.perf_counter()
    first = None
    received = 0
    connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=300)
    try:
        connection.request("POST", "/v1/audio/speech", body, headers)
        response = connection.getresponse()
        if response.status != 200:
            return RequestResult(None, time.perf_counter() - started, 0.0,
                                 f"{response.status}: {response.read().decode(errors='replace')[:200]}")
        while data := response.read1(65536):
            if first is None:
                first = time.perf_counter() - started
            received += len(data)
    except OSError as exc:
        return RequestResult(first, time.perf_counter() - started, received / PCM_BYTES_PER_SECOND, str(exc))
    finally:
        connection.close()
    return RequestResult(first, time.perf_counter() - started, received / PCM_BYTES_PER_SECOND)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def load(url: str, clients: int, requests: int, text: str, voice: str | None,
         api_key: str | None) -> tuple[list[RequestResult], float]:
    """Every request's result, and the wall time of the whole load."""
    results: list[RequestResult] = []
    lock = threading.Lock()

    def client() -> None:
        for _ in range(requests):
            result = speak_once(url, text, voice, api_key)
            with lock:
                results.append(result)

    threads = [threading.Thread(target=client, name=f"bench-client-{i}") for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, time.perf_counter() - started


def run(args: argparse.Namespace) -> int:
    if args.clients < 1 or args.requests < 1:
        raise AgentTTSError("--clients and --requests must be at least 1")
    if args.url and args.real_size_voice:
        raise AgentTTSError("--real-size-voice is for the server started here; leave out --url")
    with tempfile.TemporaryDirectory(prefix="agent-tts-bench-server-") as scratch:
        return _bench(args, Path(scratch))


def _real_size_home(scratch: Path) -> Path:
    """An AGENT_TTS_HOME whose only voice, `bench`, is a real-size v2 voice with random weights."""
    from agent_tts.cli.bench_voice import bench_voice_toml
    from agent_tts.voice import VoiceSpec
    from agent_tts.voices import VoiceRegistry

    spec = VoiceSpec.from_toml(bench_voice_toml(None, scratch))
    home = scratch / "home"
    VoiceRegistry(home / "voices").add(replace(spec, name="bench"), validate=False)
    return home


def _bench(args: argparse.Namespace, scratch: Path) -> int:
    server = None
    url = (args.url or "").rstrip("/")
    if not url:
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "agent_tts.cli.main", "serve", "--port", str(port), "--device", args.device,
                   "--max-streams", str(args.clients)]
        env = dict(os.environ)
        if args.real_size_voice:
            env["AGENT_TTS_HOME"] = str(_real_size_home(scratch))
        if args.voice:
            command += ["--voice", args.voice]
        print(f"starting: {' '.join(command[2:])}", file=sys.stderr, flush=True)
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(url, server)
        warm = speak_once(url, args.text, args.voice, args.api_key)
        if warm.error:
            raise AgentTTSError(f"the warm-up request failed: {warm.error}")
        load_before = os.getloadavg()
        results, wall = load(url, args.clients, args.requests, args.text, args.voice, args.api_key)
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
    ok = [r for r in results if r.error is None and r.first_byte_s is not None]
    errors = [r.error for r in results if r.error is not None]
    audio = sum(r.audio_s for r in ok)
    figures = {
        "clients": args.clients, "requests": len(results), "errors": len(errors),
        "first_byte_p50_ms": 1000 * _percentile([r.first_byte_s for r in ok], 0.5) if ok else None,
        "first_byte_p95_ms": 1000 * _percentile([r.first_byte_s for r in ok], 0.95) if ok else None,
        "request_p50_s": _percentile([r.total_s for r in ok], 0.5) if ok else None,
        "audio_seconds": audio, "wall_seconds": wall, "audio_per_wall": audio / wall,
        "requests_per_second": len(ok) / wall, "mean_audio_per_request_s": statistics.fmean(r.audio_s for r in ok)
        if ok else 0.0, "load_average_before": load_before, "load_average_after": os.getloadavg(),
    }
    print(f"{args.clients} clients x {args.requests} requests: {len(ok)} ok, {len(errors)} errors; load average "
          f"{load_before[0]:.1f} before, {figures['load_average_after'][0]:.1f} after")
    if ok:
        print(f"first byte p50 {figures['first_byte_p50_ms']:.0f} ms, p95 {figures['first_byte_p95_ms']:.0f} ms; "
              f"request p50 {figures['request_p50_s']:.2f} s")
        print(f"throughput {audio:.1f} s of audio in {wall:.1f} s ({figures['audio_per_wall']:.2f}x real time, "
              f"{figures['requests_per_second']:.2f} requests/s)")
    for error in dict.fromkeys(errors):
        print(f"error: {error}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps({"figures": figures, "requests": [asdict(r) for r in results]},
                                              indent=2))
    return 1 if errors else 0

"""``agent-tts serve``: the speech server (OpenAI speech, upstream api_v2, a WebSocket for LLM streams, a page)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from agent_tts.cli.engine_arguments import add_backend_arguments
from agent_tts.errors import AgentTTSError
from agent_tts.server.settings import MAX_INPUT_CHARS

if TYPE_CHECKING:
    from agent_tts.server.ray_app import RayServeArgs

API_KEY_VARIABLE = "AGENT_TTS_API_KEY"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve speech over HTTP and WebSocket (OpenAI /v1/audio/speech, GPT-SoVITS api_v2 /tts)",
        description="A streaming speech server: OpenAI's /v1/audio/speech, upstream GPT-SoVITS api_v2's /tts, "
        "a WebSocket for LLM token streams (/v1/audio/stream) and a page to try it at /. With no GPT-SoVITS "
        "voice registered it speaks with the bundled default voice. See docs/server.md.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; any other "
                        "needs --api-key or --no-auth)")
    parser.add_argument("--port", type=int, default=9880, help="port (default 9880, as upstream api_v2)")
    parser.add_argument("--voice", metavar="NAME", help="the default voice (default: the registry's default, "
                        "else the bundled voice)")
    add_backend_arguments(parser)
    parser.add_argument("--allow-dir", action="append", default=[], metavar="DIR",
                        help="a directory whose files clients may name (api_v2 ref_audio_path, weights); "
                        "repeatable (default: the voices directory)")
    parser.add_argument("--pretrained", metavar="DIR", type=Path,
                        help="the folder with chinese-hubert-base/ and chinese-roberta-wwm-ext-large/ for voices "
                        "made per request (default: the default voice's, else agent-tts download's)")
    parser.add_argument("--api-key", metavar="KEY", default=os.environ.get(API_KEY_VARIABLE),
                        help=f"require Authorization: Bearer KEY (default: ${API_KEY_VARIABLE})")
    parser.add_argument("--no-auth", action="store_true", help="serve a non-loopback address without a key")
    parser.add_argument("--max-streams", type=int, default=16, metavar="N",
                        help="streams speaking at once per engine (default 16); more wait in order")
    parser.add_argument("--max-waiting", type=int, default=32, metavar="N",
                        help="streams waiting per engine (default 32); beyond it requests get 503 + Retry-After")
    parser.add_argument("--max-input-chars", type=int, default=MAX_INPUT_CHARS, metavar="N",
                        help=f"the longest text of one request or utterance (default {MAX_INPUT_CHARS})")
    parser.add_argument("--shutdown-deadline", type=float, default=10.0, metavar="SECONDS",
                        help="on SIGTERM, how long requests in progress may finish (default 10)")
    scale = parser.add_argument_group("Ray Serve (scale out over replicas and machines; pip install "
                                      "'agent-tts[ray]'; see docs/scaling.md)")
    scale.add_argument("--ray", action="store_true", help="serve as a Ray Serve application: speech replicas "
                       "behind Ray's HTTP proxy on --host/--port")
    count = scale.add_mutually_exclusive_group()
    count.add_argument("--replicas", type=int, metavar="N", help="speech replicas (default 1)")
    count.add_argument("--autoscale", type=int, nargs=2, metavar=("MIN", "MAX"),
                       help="scale the speech replicas between MIN and MAX on ongoing requests")
    scale.add_argument("--address", metavar="ADDRESS", help="the Ray cluster to join (auto: the one `ray start` "
                       "runs here; default: start a Ray instance on this machine)")
    scale.add_argument("--num-cpus", type=float, metavar="X", help="CPUs Ray reserves per replica (default 1)")
    scale.add_argument("--num-gpus", type=float, metavar="X", help="GPUs per replica (default 0; 0.5: two share one)")
    scale.add_argument("--voices-per-replica", type=int, metavar="N",
                       help="voices a replica keeps loaded besides the default one (default 4, least recently used "
                       "out)")
    scale.add_argument("--max-queued", type=int, metavar="N", help="requests waiting for a free replica (default "
                       "64); beyond it the busy answer")
    scale.add_argument("--busy-status", type=int, choices=(503, 429), help="the busy answer's status (default 503), "
                       "with Retry-After")
    parser.set_defaults(handler=run)


RAY_OPTIONS = {"replicas": "--replicas", "autoscale": "--autoscale", "address": "--address", "num_cpus": "--num-cpus",
               "num_gpus": "--num-gpus", "voices_per_replica": "--voices-per-replica", "max_queued": "--max-queued",
               "busy_status": "--busy-status"}


def run(args: argparse.Namespace) -> int:
    try:
        from agent_tts.server.app import create_app
        from agent_tts.server.local_service import LocalSpeechService
        from agent_tts.server.runner import ServerRunner, check_binding
        from agent_tts.server.settings import ServerSettings
    except ImportError as exc:
        raise AgentTTSError(f"the server needs its extra ({exc.name} is missing): pip install 'agent-tts[server]'")\
            from None
    from agent_tts.voice import default_voices_dir

    check_binding(args.host, args.api_key, args.no_auth)
    for name, value in (("--max-streams", args.max_streams), ("--max-input-chars", args.max_input_chars)):
        if value < 1:
            raise AgentTTSError(f"{name} must be at least 1, got {value}")
    if args.ray:
        return _run_on_ray(args)
    for name, flag in RAY_OPTIONS.items():
        if getattr(args, name) is not None:
            raise AgentTTSError(f"{flag} is an option of --ray (scaling out on Ray Serve): add --ray, or leave it out")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    service = LocalSpeechService(default_voice=args.voice, device=args.device, backend=args.backend,
                                 onnx_dir=args.onnx_dir, max_streams=args.max_streams,
                                 max_waiting=max(0, args.max_waiting), pretrained=args.pretrained,
                                 precision=args.precision)
    settings = ServerSettings(allowed_dirs=tuple(Path(d) for d in args.allow_dir) or (default_voices_dir(),),
                              api_key=args.api_key or None, max_input_chars=args.max_input_chars)
    runner = ServerRunner(args.host, args.port, args.shutdown_deadline)
    logging.getLogger("agent_tts.server").info(
        "agent-tts serve on http://%s:%d (default voice %s; files readable by clients under %s)", args.host,
        args.port, service.default_id, ", ".join(map(str, settings.allowed_dirs)))
    runner.run(create_app(service, settings, control=runner.control))
    return 0


def ray_args_from(args: argparse.Namespace) -> RayServeArgs:
    """The Ray Serve application's arguments from the command line (a one-line error for a bad value)."""
    from pydantic import ValidationError

    from agent_tts.server.ray_app import RayServeArgs

    given = {name: getattr(args, name) for name in RAY_OPTIONS if name != "address" and getattr(args, name) is not None}
    if "max_queued" in given:
        given["max_queued_requests"] = given.pop("max_queued")
    try:
        return RayServeArgs(voice=args.voice, device=args.device, backend=args.backend, onnx_dir=args.onnx_dir,
                            precision=args.precision,
                            pretrained=str(args.pretrained) if args.pretrained else None, max_streams=args.max_streams,
                            max_waiting=max(0, args.max_waiting), allowed_dirs=args.allow_dir, api_key=args.api_key,
                            max_input_chars=args.max_input_chars, shutdown_deadline=args.shutdown_deadline, **given)
    except ValidationError as exc:
        problem = exc.errors()[0]
        name = str(problem["loc"][0]) if problem["loc"] else ""
        flag = {**RAY_OPTIONS, "max_queued_requests": "--max-queued"}.get(name, "--" + name.replace("_", "-"))
        raise AgentTTSError(f"{flag}: {problem['msg'].removeprefix('Value error, ')}") from None


def _run_on_ray(args: argparse.Namespace) -> int:
    try:
        from agent_tts.server.ray_app import serve_on_ray
    except ImportError as exc:
        raise AgentTTSError(f"--ray needs Ray Serve ({exc.name} is missing): pip install 'agent-tts[ray]'") from None
    ray_args = ray_args_from(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve_on_ray(ray_args, args.host, args.port, args.address)
    return 0

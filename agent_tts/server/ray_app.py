"""`agent-tts serve --ray`: the same server as a Ray Serve application, scaled out over replicas and machines.

Two deployments:

- `SpeechIngress`, the FastAPI app of `create_app` (the same routes, errors
  and page as `agent-tts serve`) as Serve's ingress, over a
  `RaySpeechService` (ray_service.py) instead of engines in its process; its
  answers say which replica spoke (`x-agent-tts-replica`);
- `SpeechReplica` (ray_replica.py): each replica one process with one batched
  engine, the default voice warm, other voices loaded on demand
  (`@serve.multiplexed`, `voices_per_replica` per replica).

Ray Serve does the rest: its HTTP proxy on every node, routing (to a replica
with the voice loaded, the less loaded of two), a queue per caller bounded by
`max_queued_requests` (beyond it 503 or 429 with `Retry-After`), autoscaling
on ongoing requests, and restarting replicas that die. A replica takes at
most `max_streams` requests at once (`max_ongoing_requests`), so requests
wait in Ray's queue, where any replica can take them, rather than in one
engine's admission queue.

`build_app(RayServeArgs)` is also an application builder for Serve config
files (`import_path: agent_tts.server.ray_app:build_app`), as a KubeRay
`RayService` uses it; see docs/scaling.md.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator
from ray import serve
from ray.serve.config import BackpressureConfig
from ray.serve.handle import DeploymentHandle

from agent_tts.errors import AgentTTSError
from agent_tts.server.ray_replica import ReplicaConfig, SpeechReplica, log_through_serve
from agent_tts.server.settings import MAX_INPUT_CHARS, ServerSettings

logger = logging.getLogger(__name__)

APP_NAME = "agent-tts"
# The ingress only encodes and forwards: the replicas' limits bound the work. (Its queue is as long, since Ray's
# router may count requests arriving together as queued for a moment and refuse some of them.)
INGRESS_MAX_ONGOING_REQUESTS = 1000


class RayServeArgs(BaseModel):
    """Everything the Ray Serve application is made from (the `args` of a Serve config file)."""

    model_config = {"extra": "forbid"}

    # the voices and engines (each replica's LocalSpeechService)
    voices_dir: str | None = Field(None, description="the voice registry's folder on every node (default: "
                                   "$AGENT_TTS_HOME/voices or the user's config folder)")
    voice: str | None = Field(None, description="the default voice, loaded and warmed up by every replica")
    device: str = "auto"
    backend: Literal["torch", "onnx", "openvino"] = "torch"
    onnx_dir: str | None = None
    precision: Literal["auto", "fp32", "bf16", "int8", "fp16"] = Field("auto", description="what GPT-SoVITS voices "
                                                                       "compute in (docs/precision.md)")
    pretrained: str | None = None
    max_streams: int = Field(16, ge=1, description="streams one replica speaks at once (max_ongoing_requests)")
    max_waiting: int = Field(32, ge=0, description="streams waiting in a replica's engine")
    voices_per_replica: int = Field(4, ge=1, description="voices a replica keeps loaded besides the default")
    # scaling
    replicas: int = Field(1, ge=1, description="speech replicas (without autoscale)")
    autoscale: tuple[int, int] | None = Field(None, description="(min, max) speech replicas, scaled on ongoing "
                                              "requests")
    target_ongoing_requests: float | None = Field(None, gt=0, description="autoscaling target per replica "
                                                  "(default: half of max_streams)")
    num_cpus: float = Field(1.0, ge=0, description="CPUs Ray reserves per speech replica (fractions allowed)")
    num_gpus: float = Field(0.0, ge=0, description="GPUs Ray reserves per speech replica (fractions share one)")
    max_queued_requests: int = Field(64, ge=-1, description="requests waiting for a replica, per caller "
                                     "(-1: no limit); beyond it the busy answer")
    busy_status: Literal[503, 429] = 503
    retry_after_s: float = Field(1.0, ge=0)
    ingress_replicas: int = Field(1, ge=1)
    ingress_num_cpus: float = Field(1.0, ge=0)
    shutdown_deadline: float = Field(10.0, ge=0, description="how long a stopping replica lets its requests finish")
    # the server (ServerSettings)
    allowed_dirs: list[str] = Field(default_factory=list, description="folders clients may name files in "
                                    "(default: the voices folder)")
    api_key: str | None = None
    max_input_chars: int = Field(MAX_INPUT_CHARS, ge=1)

    @field_validator("autoscale")
    @classmethod
    def _check_autoscale(cls, autoscale: tuple[int, int] | None) -> tuple[int, int] | None:
        if autoscale is not None and not (0 <= autoscale[0] <= autoscale[1] and autoscale[1] >= 1):
            raise ValueError(f"needs 0 <= MIN <= MAX and MAX >= 1, got MIN {autoscale[0]}, MAX {autoscale[1]}")
        return autoscale

    def replica_config(self) -> ReplicaConfig:
        return ReplicaConfig(_path(self.voices_dir), self.voice, self.device, self.backend, self.onnx_dir,
                             self.max_streams, self.max_waiting, _path(self.pretrained), self.voices_per_replica,
                             self.precision)

    def settings(self) -> ServerSettings:
        from agent_tts.voice import default_voices_dir

        allowed = tuple(map(Path, self.allowed_dirs)) or (_path(self.voices_dir) or default_voices_dir(),)
        return ServerSettings(allowed_dirs=allowed, api_key=self.api_key or None,
                              max_input_chars=self.max_input_chars)

    def scaling(self) -> dict:
        if self.autoscale is None:
            return {"num_replicas": self.replicas}
        low, high = self.autoscale
        return {"autoscaling_config": {"min_replicas": low, "max_replicas": high, "initial_replicas": max(low, 1),
                                       "target_ongoing_requests": self.target_ongoing_requests
                                       or max(1.0, self.max_streams / 2)}}


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


class SpeechIngress:
    """The ingress replica: `create_app` over the speech replicas' handle, with the replica header."""

    def __init__(self, replicas: DeploymentHandle, settings: ServerSettings) -> None:
        log_through_serve()
        self.replicas = replicas
        self.settings = settings

    def __serve_build_asgi_app__(self):
        from agent_tts.server.app import create_app
        from agent_tts.server.ray_service import RaySpeechService
        from agent_tts.server.replica_header import ReplicaHeader

        app = create_app(RaySpeechService(self.replicas), self.settings)  # no /control: Serve owns the lifecycle
        app.add_middleware(ReplicaHeader)
        return app


def build_app(args: RayServeArgs | dict) -> serve.Application:
    """The application: the ingress bound to the speech replicas, as `args` describe them (a Serve config file's
    `args` mapping, or `RayServeArgs`)."""
    if not isinstance(args, RayServeArgs):
        args = RayServeArgs.model_validate(args)
    backpressure = BackpressureConfig(status_code=args.busy_status, retry_after_s=args.retry_after_s)
    replicas = serve.deployment(
        SpeechReplica, name="SpeechReplica", ray_actor_options={"num_cpus": args.num_cpus, "num_gpus": args.num_gpus},
        max_ongoing_requests=args.max_streams, max_queued_requests=args.max_queued_requests,
        backpressure_config=backpressure, graceful_shutdown_timeout_s=args.shutdown_deadline, **args.scaling())
    ingress = serve.deployment(
        serve.ingress()(SpeechIngress), name="SpeechIngress", num_replicas=args.ingress_replicas,
        ray_actor_options={"num_cpus": args.ingress_num_cpus}, max_ongoing_requests=INGRESS_MAX_ONGOING_REQUESTS,
        max_queued_requests=INGRESS_MAX_ONGOING_REQUESTS, backpressure_config=backpressure,
        graceful_shutdown_timeout_s=args.shutdown_deadline)
    return ingress.bind(replicas.bind(args.replica_config()), args.settings())


def serve_on_ray(args: RayServeArgs, host: str, port: int, address: str | None) -> None:
    """Run the application on Ray until SIGTERM or SIGINT: on a Ray instance started here (`address` None), or on
    the cluster at `address` ("auto": the one `ray start` runs on this machine); the HTTP proxy on host:port."""
    import ray

    ray.init(address=address, logging_level=logging.WARNING)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):  # after ray.init, which installs handlers of its own
        signal.signal(signum, lambda *_: stop.set())
    try:
        serve.start(http_options={"host": host, "port": port})
        serve.run(build_app(args), name=APP_NAME, route_prefix="/")
        logger.info("agent-tts on Ray Serve at http://%s:%d (%s)", host, port,
                    f"{args.autoscale[0]}-{args.autoscale[1]} replicas" if args.autoscale
                    else f"{args.replicas} replica{'s' if args.replicas != 1 else ''}")
        stop.wait()
        logger.info("stopping: deleting the application")
    except RuntimeError as exc:  # Serve's deployment failures (a replica that cannot start) arrive as these
        raise AgentTTSError(f"the Ray Serve application did not start: {exc}") from None
    finally:
        if address is None:
            serve.shutdown()
        else:
            serve.delete(APP_NAME)
        ray.shutdown()

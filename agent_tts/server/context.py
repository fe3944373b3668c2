"""What every route of one server shares: the speech service, settings, metrics and readiness."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agent_tts.server.api_errors import ApiError, api_error_from
from agent_tts.server.metrics import ServerMetrics
from agent_tts.server.settings import ServerSettings
from agent_tts.server.speech_service import SpeechService
from agent_tts.server.streams import SpeechStreams


@dataclass
class ServerContext:
    """One server's shared state, handed to each protocol adapter when the app is made."""

    service: SpeechService
    settings: ServerSettings
    metrics: ServerMetrics
    streams: SpeechStreams
    control: Callable[[str], None] | None = None  # api_v2 /control: "exit" or "restart", if the runner allows it
    ready: bool = False
    start_error: str | None = None

    @classmethod
    def create(cls, service: SpeechService, settings: ServerSettings,
               control: Callable[[str], None] | None = None) -> "ServerContext":
        metrics = ServerMetrics(service.counts)
        return cls(service, settings, metrics, SpeechStreams(service, metrics), control)

    def answered_error(self, exc: BaseException) -> ApiError:
        """The answer for `exc`, counted in the metrics."""
        error = api_error_from(exc)
        self.metrics.errors.labels(error.kind).inc()
        return error

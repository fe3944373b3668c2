"""The server's Prometheus metrics, in a registry of its own (one per app, so several apps can run in one process).

    agent_tts_first_audio_seconds{api}       request (or utterance) start to its first audio chunk
    agent_tts_stream_rtf{api}                a finished stream's wall time over its audio time
    agent_tts_audio_seconds_total{api}       audio sent
    agent_tts_streams_total{api,outcome}     completed, cancelled (by the client's message), disconnected, failed
    agent_tts_errors_total{kind}             bad_request, forbidden, not_found, busy, engine, auth
    agent_tts_streams_active                 streams speaking now (all engines)
    agent_tts_streams_waiting                streams waiting for a seat
    agent_tts_work_after_cancel_total        prefills, AR steps and SoVITS windows begun after their stream was
                                             cancelled (the engines keep it at 0: a cancel stops within one step)
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from agent_tts.server.speech_service import StreamCounts

FIRST_AUDIO_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
RTF_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _EngineLoad:
    """Reads the engines' stream counts when /metrics is scraped."""

    def __init__(self, counts: Callable[[], StreamCounts]) -> None:
        self._counts = counts

    def collect(self):
        counts = self._counts()
        yield GaugeMetricFamily("agent_tts_streams_active", "Streams speaking now", value=counts.active)
        yield GaugeMetricFamily("agent_tts_streams_waiting", "Streams waiting for a seat", value=counts.waiting)
        yield CounterMetricFamily("agent_tts_work_after_cancel", "Engine work begun after its stream was cancelled",
                                  value=counts.work_after_cancel)


class ServerMetrics:
    """The counters and histograms the server updates, and their text exposition."""

    def __init__(self, counts: Callable[[], StreamCounts]) -> None:
        self.registry = CollectorRegistry()
        self.first_audio = Histogram("agent_tts_first_audio_seconds", "Request start to the first audio chunk",
                                     ["api"], buckets=FIRST_AUDIO_BUCKETS, registry=self.registry)
        self.rtf = Histogram("agent_tts_stream_rtf", "Wall time over audio time of finished streams", ["api"],
                             buckets=RTF_BUCKETS, registry=self.registry)
        self.audio_seconds = Counter("agent_tts_audio_seconds", "Audio sent", ["api"], registry=self.registry)
        self.streams = Counter("agent_tts_streams", "Streams by how they ended", ["api", "outcome"],
                               registry=self.registry)
        self.errors = Counter("agent_tts_errors", "Errors answered, by kind", ["kind"], registry=self.registry)
        self.registry.register(_EngineLoad(counts))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

"""A speech replica of the Ray Serve deployment: one process, one batched engine set, voices loaded on demand.

Each replica loads the default voice at start and speaks one warm-up sentence
before Ray Serve counts it as running, so a replica that takes requests is
warm. Other voices (registered names, api_v2 reference voices) are loaded on
a replica's first request for them through `@serve.multiplexed`: an LRU of
`voices_per_replica` voices per replica, and Ray Serve's router sends a
voice's requests to replicas that have it loaded. Voices made from one GPT
file share the loaded GPT, and so one batched AR step, within a replica
(`models/shared.py`, `engine/scheduler.py`).

`speak` is an async generator all the way down: when the caller goes away,
Ray Serve cancels the request's task, the cancel arrives at the engine
stream's `await`, and closing the stream stops its synthesis within one AR
step. (A sync generator would run to its end.) An evicted voice finishes the
streams it has and is closed when the last one ends.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray import serve

from agent_tts.engine.unit_stream import AudioChunk, UnitStreamEngine
from agent_tts.server.local_service import LocalSpeechService, engine_counts, work_after_cancel
from agent_tts.server.ray_protocol import ReplicaReport, ServedBy, voice_from_key
from agent_tts.server.speech_service import StreamCounts, VoiceInfo
from agent_tts.voices import VoiceRegistry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplicaConfig:
    """What every speech replica is made with (plain data: it is pickled to each replica's process)."""

    voices_dir: Path | None = None          # the voice registry's folder on the replica's node (None: the default)
    default_voice: str | None = None
    device: str = "auto"
    backend: str = "torch"
    onnx_dir: str | None = None
    max_streams: int = 16
    max_waiting: int = 32
    pretrained: Path | None = None
    voices_per_replica: int = 4             # multiplexed voices kept per replica, besides the default voice
    precision: str = "auto"


def log_through_serve() -> None:
    """agent-tts's log lines (INFO and up) into this replica's Serve log, as Serve's own are (`ray.serve`)."""
    ours = logging.getLogger("agent_tts")
    ours.setLevel(logging.INFO)
    ours.propagate = False
    ours.handlers = list(logging.getLogger("ray.serve").handlers)


class LoadedVoice:
    """A multiplexed voice's engine in a replica's LRU; Ray Serve calls `__del__` when it evicts it."""

    def __init__(self, key: str, engine: UnitStreamEngine, on_evicted) -> None:
        self.key = key
        self.engine = engine
        self._on_evicted = on_evicted
        self._evicted = False

    def __del__(self) -> None:  # called by Ray Serve on eviction (in a thread), and by Python when collected
        if not self._evicted:
            self._evicted = True
            self._on_evicted(self)


class SpeechReplica:
    """The speech replica (made a Ray Serve deployment by ray_app.py): `speak` streams, `voices`, `report`."""

    async def __init__(self, config: ReplicaConfig) -> None:
        log_through_serve()
        self.config = config
        self.replica_id = serve.get_replica_context().replica_id.unique_id
        self.loader = LocalSpeechService(VoiceRegistry(config.voices_dir), config.default_voice,
                                         device=config.device, backend=config.backend, onnx_dir=config.onnx_dir,
                                         max_streams=config.max_streams, max_waiting=config.max_waiting,
                                         pretrained=config.pretrained, precision=config.precision)
        self.default_engine = await self.loader.load_engine(None)
        await asyncio.to_thread(self.default_engine.warm_up)
        self._loaded: dict[str, LoadedVoice] = {}
        self._evicted: list[UnitStreamEngine] = []  # evicted engines still finishing their streams
        self._evicted_lock = threading.Lock()
        self._retired_work = 0
        self._outcomes = {"completed": 0, "cancelled": 0, "failed": 0}
        self._cancelled_audio = 0.0

        async def load_voice(key: str) -> LoadedVoice:  # a plain function: Ray keeps its LRU as an attribute of it
            return await self._load_voice(key)

        self._voice = serve.multiplexed(max_num_models_per_replica=config.voices_per_replica)(load_voice)
        self._closed = False
        logger.info("voice %r loaded and warmed up", self.loader.default_id)

    async def _load_voice(self, key: str) -> LoadedVoice:
        logger.info("loading voice %s on demand", key[:120])
        loaded = LoadedVoice(key, await self.loader.load_engine(voice_from_key(key)), self._retire)
        self._loaded[key] = loaded
        return loaded

    def _retire(self, loaded: LoadedVoice) -> None:
        with self._evicted_lock:
            if self._loaded.get(loaded.key) is loaded:
                del self._loaded[loaded.key]
            self._evicted.append(loaded.engine)
        logger.info("voice %s evicted (least recently used)", loaded.key[:120])
        self._close_idle_evicted()

    def _close_idle_evicted(self) -> None:
        with self._evicted_lock:
            idle = [engine for engine in self._evicted if engine.active_streams == 0]
            self._evicted = [engine for engine in self._evicted if engine.active_streams > 0]
            for engine in idle:
                self._retired_work += work_after_cancel(engine)
        for engine in idle:
            engine.close()

    # -- the deployment's methods, called through handles -------------------------------------

    async def speak(self, text: str, options: Mapping[str, Any]) -> AsyncIterator[ServedBy | AudioChunk]:
        """`ServedBy`, then the audio of `text` in the request's voice (its multiplexed model id)."""
        yield ServedBy(self.replica_id, self.counts())
        outcome, audio = "failed", 0.0
        try:
            key = serve.get_multiplexed_model_id()
            engine = (await self._voice(key)).engine if key else self.default_engine
            async with aclosing(engine.stream(text, **options)) as chunks:
                async for chunk in chunks:
                    audio += chunk.seconds
                    yield chunk
            outcome = "completed"
        except (asyncio.CancelledError, GeneratorExit):
            outcome = "cancelled"
            raise
        finally:
            self._outcomes[outcome] += 1
            if outcome == "cancelled":
                self._cancelled_audio += audio
                logger.info("stream cancelled after %.2f s of audio", audio)
            self._close_idle_evicted()

    async def voices(self) -> list[VoiceInfo]:
        return await self.loader.voices()

    async def default_voice(self) -> VoiceInfo:
        return await self.loader.default_voice()

    async def report(self) -> ReplicaReport:
        return ReplicaReport(self.replica_id, self.loader.default_id, tuple(self._loaded), self.counts(),
                             self._outcomes["completed"], self._outcomes["cancelled"], self._outcomes["failed"],
                             round(self._cancelled_audio, 3))

    def counts(self) -> StreamCounts:
        with self._evicted_lock:
            return engine_counts(self._engines(), self._retired_work)

    def _engines(self) -> list[UnitStreamEngine]:
        return [self.default_engine, *(loaded.engine for loaded in self._loaded.values()), *self._evicted]

    def __del__(self) -> None:  # Ray Serve calls it when the replica stops
        if getattr(self, "_closed", True):
            return
        self._closed = True
        for engine in self._engines():
            engine.cancel_active()
            engine.close()

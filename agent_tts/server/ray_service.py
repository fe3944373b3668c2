"""The `SpeechService` of the Ray Serve ingress: speech from the speech replicas, through a deployment handle.

The protocol adapters call it as they call `LocalSpeechService`. A text is
one streaming request (`SpeechReplica.speak`, an async generator, so closing
the stream here cancels the replica's synthesis through the handle chain),
routed by the voice's multiplexed model id (ray_protocol.py). Text deltas (the
WebSocket's LLM tokens) cannot cross a handle as a stream: they are cut into
units here with the engine's own `Segmenter`, as they arrive, and each unit is
one request, sent when its text is complete and the previous unit's audio has
all arrived; unit indexes, chunk starts and word times are moved onto the
utterance's timeline so the adapters see one stream (see docs/scaling.md for
what this changes).

Failures: a replica lost before any audio came (killed, its node gone) is
asked once more, and Ray Serve routes the retry to a live replica; lost
after audio came, the stream ends with an error (the rest of an utterance
cannot be spliced from another replica). A full deployment
(`max_queued_requests`) is 503 or 429 with `Retry-After`. Errors a replica
raises (unknown voice, bad option) arrive as themselves.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from contextlib import suppress
from typing import Any

from ray.exceptions import RayActorError, RayTaskError
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError, ReplicaUnavailableError
from ray.serve.handle import DeploymentHandle, DeploymentResponseGenerator

from agent_tts.engine.unit_stream import AudioChunk
from agent_tts.errors import AgentTTSError, VoiceNotFoundError
from agent_tts.server.api_errors import busy
from agent_tts.server.ray_protocol import ServedBy, voice_key
from agent_tts.server.replica_header import note_replica
from agent_tts.server.speech_service import StreamCounts, VoiceInfo, VoiceSelection
from agent_tts.text.segmenter import SegmenterOptions, segment_stream

logger = logging.getLogger(__name__)

LOST = (RayActorError, ReplicaUnavailableError)
ATTEMPTS = 2  # a request whose replica was lost before any audio is sent once more


class ReplicaLostError(AgentTTSError):
    """The replica speaking a stream stopped (it was killed, or its node went away) after audio was sent."""


class RaySpeechService:
    """Speech from the replicas behind `handle` (a `SpeechReplica` deployment)."""

    def __init__(self, handle: DeploymentHandle) -> None:
        self._handle = handle
        self._voices: list[VoiceInfo] | None = None
        self._routing = 0           # requests sent that no replica has taken yet
        self._speaking = 0          # requests a replica is serving
        self._replica_work: dict[str, int] = {}  # each replica's work after cancel, as it last reported it
        self._open: set[DeploymentResponseGenerator] = set()

    async def start(self) -> None:
        await self.voices()

    async def close(self) -> None:
        for responses in list(self._open):
            responses.cancel()

    async def voices(self) -> list[VoiceInfo]:
        if self._voices is None:  # the replicas share one registry, read at their start
            self._voices = await self._handle.voices.remote()
        return self._voices

    async def default_voice(self) -> VoiceInfo:
        return (await self.voices())[0]

    async def stream(self, voice: VoiceSelection, text: str | AsyncIterable[str],
                     options: Mapping[str, Any]) -> AsyncIterator[AudioChunk]:
        voices = await self.voices()
        if isinstance(voice, str) and voice not in {info.id for info in voices}:  # refused here, not by a replica
            raise VoiceNotFoundError(f"no voice named {voice!r} (voices: {', '.join(sorted(v.id for v in voices))})")
        key = voice_key(voice, voices[0].id)
        options = dict(options)
        if isinstance(text, str):
            async for chunk in self._speak(key, text, options):
                yield chunk
            return
        first_index, offset_s = 0, 0.0
        async for unit in segment_stream(text, options.get("segmenter") or SegmenterOptions()):
            last_index, unit_end_s = -1, 0.0
            async for chunk in self._speak(key, unit, options):
                last_index, unit_end_s = chunk.unit_index, chunk.end_s
                yield _on_utterance_timeline(chunk, first_index, offset_s)
            first_index += last_index + 1
            offset_s += unit_end_s

    def counts(self) -> StreamCounts:
        """Streams this ingress has a replica speaking (active) or not yet taken by one (waiting); work after
        cancel as the replicas last reported it."""
        return StreamCounts(active=self._speaking, waiting=self._routing,
                            work_after_cancel=sum(self._replica_work.values()))

    async def _speak(self, key: str, text: str, options: dict) -> AsyncIterator[AudioChunk]:
        """One request's audio; a replica lost before any audio is replaced once."""
        for attempt in range(1, ATTEMPTS + 1):
            responses = self._handle.options(stream=True, multiplexed_model_id=key).speak.remote(text, options)
            self._open.add(responses)
            self._routing += 1
            served: ServedBy | None = None
            audio_sent = False
            try:
                served = await anext(responses)
                self._routing -= 1
                self._speaking += 1
                self._replica_work[served.replica] = served.counts.work_after_cancel
                note_replica(served.replica)
                async for chunk in responses:
                    audio_sent = True
                    yield chunk
                return
            except LOST as exc:
                where = f"replica {served.replica}" if served is not None else "its replica"
                if audio_sent:
                    raise ReplicaLostError(f"{where} stopped while speaking ({type(exc).__name__}); "
                                           "send the request again") from None
                if attempt == ATTEMPTS:
                    raise busy(f"{where} stopped before speaking, twice ({type(exc).__name__}); try again "
                               "shortly") from None
                logger.warning("%s stopped before any audio (%s); sending the request again", where,
                               type(exc).__name__)
            except RayTaskError as exc:  # raised in the replica: the error itself, without Ray's wrapper
                raise _answerable(exc.cause if isinstance(exc.cause, Exception) else exc) from None
            except (BackPressureError, DeploymentUnavailableError) as exc:
                raise _answerable(exc) from None
            finally:
                with suppress(Exception):  # a request that was never assigned re-raises its refusal here
                    responses.cancel()
                self._open.discard(responses)
                if served is None:
                    self._routing -= 1
                else:
                    self._speaking -= 1


def _on_utterance_timeline(chunk: AudioChunk, first_index: int, offset_s: float) -> AudioChunk:
    """A unit request's chunk as a chunk of the utterance: its unit index after the units before it, its start and
    its words' starts after their audio (`offset_s`)."""
    words = tuple(dataclasses.replace(word, start_s=word.start_s + offset_s) for word in chunk.words)
    return dataclasses.replace(chunk, unit_index=first_index + chunk.unit_index, start_s=chunk.start_s + offset_s,
                               words=words)


def _answerable(exc: Exception) -> Exception:
    """Ray Serve's refusals as the server's busy answer; anything else as it is."""
    if isinstance(exc, BackPressureError):
        return busy(f"every speech replica is busy and the queue is full ({exc}); try again shortly",
                    exc.status_code, exc.retry_after_s or 1)
    if isinstance(exc, DeploymentUnavailableError):
        return busy(f"the speech replicas are not available ({exc.message}); try again shortly")
    return exc

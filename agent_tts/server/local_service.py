"""The server's engines in this process: registered voices, the bundled voice, and voices made per request.

Registered GPT-SoVITS voices load on first use (the default voice at start,
then warmed up) and stay loaded; voices of one GPT file share the loaded GPT
and so one batched AR step (`engine/scheduler.py`). A `ReferenceVoice` (api_v2's
`ref_audio_path` + `prompt_text`) is made through `VoiceSpec` + `Voice.load`
and kept, the most recently used few, by its files (path, size, modification
time) and reference text and language, so the reference features are derived
once per clip and text. Every engine gets the server's stream limits.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from contextlib import aclosing
from pathlib import Path
from typing import Any

from agent_tts.compute_device import compute_device
from agent_tts.engine.unit_stream import AudioChunk, UnitStreamEngine
from agent_tts.errors import AgentTTSError, RequestError, VoiceNotFoundError
from agent_tts.server.speech_service import ReferenceVoice, StreamCounts, VoiceInfo, VoiceSelection
from agent_tts.voice import BERT_FOLDER, HUBERT_FOLDER, VoiceSpec
from agent_tts.voices import VoiceRegistry, default_pretrained_dir

logger = logging.getLogger(__name__)

BUNDLED_VOICE_ID = "joe"
GPT_SOVITS = "gpt-sovits"
BUNDLED = "bundled"


class LocalSpeechService:
    """Speech from engines in this process (the `SpeechService` the server uses unless it is given another).

    `default_voice`: a registered voice name, else the registry's default, else the bundled voice.
    `max_streams` / `max_waiting` bound each engine's concurrent and waiting streams (see `Admission`).
    `pretrained`: the folder with the HuBERT and BERT folders for voices made from a reference clip (default:
    the default GPT-SoVITS voice's, else `agent-tts download`'s folder).
    `precision`: what GPT-SoVITS voices compute in (see `Voice.load`); the bundled voice runs in fp32.
    """

    def __init__(self, registry: VoiceRegistry | None = None, default_voice: str | None = None, *,
                 device: str = "auto", backend: str = "torch", onnx_dir: str | Path | None = None,
                 max_streams: int | None = None, max_waiting: int | None = None, pretrained: Path | None = None,
                 precision: str = "fp32", reference_voices_kept: int = 8) -> None:
        self.registry = registry or VoiceRegistry()
        self.device = compute_device(device)
        self.backend = backend
        self.onnx_dir = onnx_dir
        self.max_streams = max_streams
        self.max_waiting = max_waiting
        self.pretrained = pretrained
        self.precision = precision
        self.reference_voices_kept = reference_voices_kept
        names = self.registry.names()
        if default_voice is not None and default_voice not in names and default_voice != BUNDLED_VOICE_ID:
            raise VoiceNotFoundError(f"no voice named {default_voice!r} to serve by default "
                                     f"(registered: {', '.join(names) or 'none'}; the bundled one: {BUNDLED_VOICE_ID})")
        self.default_id = default_voice or self.registry.default_name() or BUNDLED_VOICE_ID
        self._engines: dict[str, UnitStreamEngine] = {}
        self._reference_engines: OrderedDict[tuple, UnitStreamEngine] = OrderedDict()
        self._locks: dict[object, asyncio.Lock] = {}
        self._retired_work = 0  # work after cancel counted by engines no longer kept

    # -- the SpeechService interface -----------------------------------------------------------

    async def start(self) -> None:
        engine = await self._named_engine(self.default_id)
        await asyncio.to_thread(engine.warm_up)
        logger.info("serving voice %r by default", self.default_id)

    async def close(self) -> None:
        for engine in self._all_engines():
            engine.cancel_active()
            engine.close()

    async def voices(self) -> list[VoiceInfo]:
        infos = [self._registered_info(name) for name in self.registry.names()]
        if BUNDLED_VOICE_ID not in {info.id for info in infos}:
            infos.append(VoiceInfo(BUNDLED_VOICE_ID, _bundled_voice_name(), BUNDLED))
        return sorted(infos, key=lambda info: info.id != self.default_id)

    async def default_voice(self) -> VoiceInfo:
        return (await self.voices())[0]

    async def stream(self, voice: VoiceSelection, text: str | AsyncIterable[str],
                     options: Mapping[str, Any]) -> AsyncIterator[AudioChunk]:
        if isinstance(voice, ReferenceVoice):
            engine = await self._reference_engine(voice)
        else:
            engine = await self._named_engine(voice or self.default_id)
        async with aclosing(engine.stream(text, **options)) as chunks:
            async for chunk in chunks:
                yield chunk

    def counts(self) -> StreamCounts:
        return engine_counts(self._all_engines(), self._retired_work)

    async def load_engine(self, voice: VoiceSelection) -> UnitStreamEngine:
        """A new engine for `voice` (None: the default voice), with the stream limits, that this service does not
        keep: for a caller that keeps engines itself (a Ray replica's multiplexed voices, ray_replica.py)."""
        if isinstance(voice, ReferenceVoice):
            for path in (voice.gpt, voice.sovits, voice.ref_audio):
                _file_key(path)
            return self._limited(await asyncio.to_thread(self._load_reference, voice))
        name = voice or self.default_id
        return await self._new_named_engine(name, self._known_names(name))

    # -- engines --------------------------------------------------------------------------------

    def _all_engines(self) -> list[UnitStreamEngine]:
        return list(self._engines.values()) + list(self._reference_engines.values())

    def _registered_info(self, name: str) -> VoiceInfo:
        try:
            spec = self.registry.spec(name)
        except AgentTTSError as exc:
            logger.warning("voice %r: %s", name, exc)
            return VoiceInfo(name, name, GPT_SOVITS)
        return VoiceInfo(name, name, GPT_SOVITS, ReferenceVoice(spec.gpt, spec.sovits, spec.ref_audio, spec.ref_text,
                                                                spec.ref_language))

    def _lock(self, key: object) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def _named_engine(self, name: str) -> UnitStreamEngine:
        engine = self._engines.get(name)
        if engine is not None:
            return engine
        names = self._known_names(name)
        async with self._lock(name):
            if name not in self._engines:
                self._engines[name] = await self._new_named_engine(name, names)
        return self._engines[name]

    def _known_names(self, name: str) -> list[str]:
        """The registered names, checking that `name` is one of them or the bundled voice."""
        names = self.registry.names()
        if name not in names and name != BUNDLED_VOICE_ID:
            raise VoiceNotFoundError(f"no voice named {name!r} (voices: {', '.join(sorted({*names, BUNDLED_VOICE_ID}))})")
        return names

    async def _new_named_engine(self, name: str, names: list[str]) -> UnitStreamEngine:
        try:
            engine = await asyncio.to_thread(self._load_named, name, names)
        except AgentTTSError as exc:  # the operator's voice: not the client's fault, and a retry will not help
            raise AgentTTSError(f"voice {name!r} could not be loaded: {exc}") from exc
        return self._limited(engine)

    def _load_named(self, name: str, registered: list[str]) -> UnitStreamEngine:
        if name not in registered:
            from agent_tts.default_voice.engine import DefaultVoiceSynthesizer

            return DefaultVoiceSynthesizer()
        from agent_tts.engine.synthesizer import Synthesizer
        from agent_tts.voice import Voice

        logger.info("loading voice %r (%s backend, %s, precision %s)", name, self.backend, self.device, self.precision)
        onnx_dir = self.onnx_dir if name == self.default_id else None
        return Synthesizer(Voice.load(self.registry.spec(name), self.device, precision=self.precision,
                                      backend=self.backend, onnx_dir=onnx_dir))

    async def _reference_engine(self, reference: ReferenceVoice) -> UnitStreamEngine:
        key = (*map(_file_key, (reference.gpt, reference.sovits, reference.ref_audio)), reference.ref_text,
               reference.ref_language)
        async with self._lock(key):
            engine = self._reference_engines.get(key)
            if engine is None:
                engine = self._limited(await asyncio.to_thread(self._load_reference, reference))
                self._reference_engines[key] = engine
                while len(self._reference_engines) > self.reference_voices_kept:
                    _, retired = self._reference_engines.popitem(last=False)
                    self._retired_work += work_after_cancel(retired)
            self._reference_engines.move_to_end(key)
        return engine

    def _load_reference(self, reference: ReferenceVoice) -> UnitStreamEngine:
        from agent_tts.engine.synthesizer import Synthesizer
        from agent_tts.voice import Voice

        hubert, bert = self._pretrained_folders()
        spec = VoiceSpec(f"ref:{reference.ref_audio.name}", reference.gpt, reference.sovits, reference.ref_audio,
                         reference.ref_text, reference.ref_language, hubert, bert)
        logger.info("making a voice from %s with %s and %s", reference.ref_audio, reference.gpt.name,
                    reference.sovits.name)
        return Synthesizer(Voice.load(spec, self.device, precision=self.precision, backend="torch"))

    def _pretrained_folders(self) -> tuple[Path, Path]:
        """HuBERT and BERT folders for voices made per request."""
        if self.pretrained is not None:
            return self.pretrained / HUBERT_FOLDER, self.pretrained / BERT_FOLDER
        for name in [self.default_id, *self.registry.names()]:
            if name in self.registry.names():
                try:
                    spec = self.registry.spec(name)
                except AgentTTSError:
                    continue
                return spec.hubert, spec.bert
        folder = default_pretrained_dir()
        return folder / HUBERT_FOLDER, folder / BERT_FOLDER

    def _limited(self, engine: UnitStreamEngine) -> UnitStreamEngine:
        if self.max_streams is not None:
            engine.admission.max_streams = self.max_streams
        if self.max_waiting is not None:
            engine.admission.max_waiting = self.max_waiting
        return engine


def engine_counts(engines: Iterable[UnitStreamEngine], retired_work: int = 0) -> StreamCounts:
    """The load of `engines` (voices sharing a GPT share its admission, counted once); `retired_work`: work after
    cancel counted by engines no longer held."""
    engines = list(engines)
    admissions = {id(engine.admission): engine.admission for engine in engines}.values()
    return StreamCounts(active=sum(a.active for a in admissions), waiting=sum(a.waiting for a in admissions),
                        work_after_cancel=retired_work + sum(map(work_after_cancel, engines)))


def work_after_cancel(engine: UnitStreamEngine) -> int:
    return getattr(engine, "steps_after_cancel", 0) + getattr(engine, "decodes_after_cancel", 0)


def _file_key(path: Path) -> tuple[str, int, int]:
    try:
        stat = path.stat()
    except OSError:
        raise RequestError(f"{path}: file not found") from None
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


def _bundled_voice_name() -> str:
    from agent_tts.default_voice.engine import DEFAULT_VOICE_NAME

    return DEFAULT_VOICE_NAME

"""Pick the speaking engine: a GPT-SoVITS voice from the registry, or the bundled default voice when there is none."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from agent_tts.compute_device import compute_device
from agent_tts.engine.unit_stream import UnitStreamEngine
from agent_tts.errors import AgentTTSError
from agent_tts.voices import VoiceRegistry

logger = logging.getLogger(__name__)

HOW_TO_ADD_A_VOICE = ("add a GPT-SoVITS voice with: agent-tts voices add NAME --gpt FILE.ckpt --sovits FILE.pth "
                      "--ref CLIP.wav --ref-text TEXT --ref-language zh|en|ja")


@dataclass
class EngineChoice:
    """The engine to speak with and a one-line description of it for the user."""

    engine: UnitStreamEngine
    description: str
    is_default_voice: bool


def open_engine(voice: str | None = None, device: str = "auto", registry: VoiceRegistry | None = None,
                backend: str = "torch", onnx_dir: str | Path | None = None, precision: str = "fp32") -> EngineChoice:
    """`voice` is a registered name or a TOML path; None means the registry's default, else the bundled voice.

    `device` (auto, cpu, cuda, cuda:N), `backend` ("torch", "onnx" or "openvino", with the export in `onnx_dir`
    or the voice's default export folder) and `precision` (see `Voice.load`) apply to GPT-SoVITS voices; the
    bundled voice runs on ONNX Runtime on the CPU.
    """
    device = compute_device(device)
    registry = registry or VoiceRegistry()
    if voice is None:
        voice = registry.default_name()
        if voice is None and registry.names():
            raise AgentTTSError(f"several voices are registered ({', '.join(registry.names())}); pick one with "
                                "--voice NAME or make one the default with: agent-tts voices default NAME")
    if voice is None:
        from agent_tts.default_voice.engine import DefaultVoiceSynthesizer

        engine = DefaultVoiceSynthesizer()
        if device.type != "cpu":
            logger.warning("the bundled default voice runs on the CPU; the device %s is for GPT-SoVITS voices", device)
        return EngineChoice(engine, f"no GPT-SoVITS voice is configured: speaking with the bundled default voice, "
                                    f"{engine.name}. To use your own, {HOW_TO_ADD_A_VOICE}", True)
    from agent_tts.engine.synthesizer import Synthesizer
    from agent_tts.voice import Voice, VoiceSpec

    spec = VoiceSpec.from_toml(voice) if Path(voice).suffix == ".toml" else registry.spec(voice)
    logger.info("loading voice %s (%s backend)", spec.name, backend)
    voice = Voice.load(spec, device, precision=precision, backend=backend, onnx_dir=onnx_dir)
    computed = voice.precision.describe() if voice.precision is not None else "fp32"
    return EngineChoice(Synthesizer(voice), f"GPT-SoVITS voice {spec.name!r} ({backend} backend, {device}, {computed})",
                        False)

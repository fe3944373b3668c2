"""A local voice agent: talk into the microphone, it answers through the speaker; talk over it to interrupt.

    python demos/mic_to_speaker.py
    python demos/mic_to_speaker.py --llm-url http://localhost:11434/v1 --llm-model llama3.2 --voice alice

Microphone -> WebRTC VAD -> local Whisper (faster-whisper) -> LLM (any
OpenAI-compatible endpoint, else an offline scripted responder) -> agent-tts
(your GPT-SoVITS voice, else the bundled voice) -> speaker. Each turn prints
its first-audio and first-sound times from the end of your speech.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipelines"))

import voice_agent  # noqa: E402

if __name__ == "__main__":
    sys.exit(voice_agent.main())

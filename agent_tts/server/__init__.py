"""The speech server (`agent-tts serve`): protocol adapters over one speech service; see docs/server.md."""

from agent_tts.server.app import create_app
from agent_tts.server.local_service import LocalSpeechService
from agent_tts.server.settings import ServerSettings
from agent_tts.server.speech_service import ReferenceVoice, SpeechService, StreamCounts, VoiceInfo

__all__ = ["LocalSpeechService", "ReferenceVoice", "ServerSettings", "SpeechService", "StreamCounts", "VoiceInfo",
           "create_app"]

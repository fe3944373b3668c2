"""LiveKit Agents adapter: `agent_tts.livekit.TTS`, a streaming `livekit.agents.tts.TTS` with aligned transcripts.

    from agent_tts.livekit import TTS
    session = AgentSession(tts=TTS(voice="alice"), use_tts_aligned_transcript=True, ...)

Needs the `livekit` extra (`pip install agent-tts[livekit]`); see docs/livekit.md.
"""

from agent_tts.livekit.tts import TTS, ChunkedStream, SynthesizeStream

__all__ = ["TTS", "ChunkedStream", "SynthesizeStream"]

"""agent-tts: a real-time GPT-SoVITS voice for conversational agents."""

__version__ = "0.1.0"

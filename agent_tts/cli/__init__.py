"""The ``agent-tts`` command line."""

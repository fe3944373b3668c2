"""A spoken conversation: an LLM's streamed reply -> the streaming engine -> the sound device, turn after turn."""

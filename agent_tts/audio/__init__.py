"""Audio input/output: reading clips now; the sound-device player comes with the engine."""

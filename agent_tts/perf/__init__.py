"""What a machine can do (arithmetic rate, memory bandwidth) and the least time a voice's work needs on it."""

"""The voice a benchmark command measures: the one given with --voice, else a real-size random-weight voice."""

from __future__ import annotations

import sys
import time
from pathlib import Path


def say(message: str) -> None:
    """Progress for the person running the benchmark (stderr, so stdout holds only the figures)."""
    print(message, file=sys.stderr, flush=True)


def bench_voice_toml(voice: str | None, scratch: Path) -> Path:
    """`voice` as a path, or a real-size v2 voice with random weights written under `scratch` (about 20 s)."""
    if voice:
        return Path(voice)
    from agent_tts.models.synthetic_voice import write_synthetic_voice

    started = time.perf_counter()
    say("writing a real-size v2 voice with random weights (GPT, SoVITS, HuBERT, RoBERTa-large) ...")
    toml = write_synthetic_voice(scratch / "voice")
    say(f"  done in {time.perf_counter() - started:.1f} s")
    return toml

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
    return next(iter(bench_voice_tomls(voice, scratch, ("v2",)).values()))


def bench_voice_tomls(voice: str | None, scratch: Path, versions: tuple[str, ...]) -> dict[str, Path]:
    """`voice` as a path (its version as the file says), or real-size random-weight voices of each version,
    sharing one GPT, HuBERT and RoBERTa, written under `scratch`."""
    if voice:
        return {"": Path(voice)}
    from agent_tts.models.synthetic_voice import write_synthetic_voices

    started = time.perf_counter()
    say(f"writing real-size {', '.join(versions)} voices with random weights (GPT, SoVITS, HuBERT, RoBERTa-large"
        + (", the speaker-verification model" if set(versions) - {"v2"} else "") + ") ...")
    tomls = write_synthetic_voices(scratch / "voice", versions)
    say(f"  done in {time.perf_counter() - started:.1f} s")
    return tomls

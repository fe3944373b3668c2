"""Run a scripted spoken conversation through the streaming path and report each turn's latencies."""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TextIO

from agent_tts.audio.player import PlaybackStats
from agent_tts.conversation.scripted_llm import ScriptedLLM, ScriptedTurn
from agent_tts.engine.unit_stream import AudioChunk, UnitStreamEngine


class AudioSink(Protocol):
    async def play(self, chunks) -> PlaybackStats: ...


@dataclass(frozen=True)
class TurnReport:
    """Latencies of one agent turn, in seconds from the end of the user's turn (when the LLM was asked)."""

    user: str
    agent: str
    first_token_s: float
    first_audio_s: float | None          # the first audio chunk left the engine
    first_unit_to_audio_s: float | None  # from the first unit's text being complete to its first audio
    first_sound_s: float | None          # the first sample reached the sound device (None for a file)
    speech_seconds: float
    underruns: int
    units: int

    def line(self) -> str:
        def ms(value: float | None) -> str:
            return "n/a" if value is None else f"{1000 * value:.0f} ms"
        return (f"first token {ms(self.first_token_s)}, first audio {ms(self.first_audio_s)} "
                f"({ms(self.first_unit_to_audio_s)} after its clause was complete), "
                f"first sound {ms(self.first_sound_s)}; {self.speech_seconds:.1f} s of speech in {self.units} units, "
                f"{self.underruns} underruns")


async def speak_turn(engine: UnitStreamEngine, llm: ScriptedLLM, turn: ScriptedTurn, sink: AudioSink,
                     on_text: Callable[[str], None] | None = None, **options) -> TurnReport:
    """The agent's reply to one user turn, streamed from the LLM through the engine to the sink."""
    asked = time.perf_counter()
    marks: dict[str, float] = {}
    units: set[int] = set()

    async def deltas() -> AsyncIterator[str]:
        async for token in llm.stream(turn.agent):
            marks.setdefault("first_token", time.perf_counter())
            if on_text:
                on_text(token)
            yield token

    async def chunks() -> AsyncIterator[AudioChunk]:
        async for chunk in engine.stream(deltas(), **options):
            if "first_audio" not in marks:
                marks["first_audio"] = time.perf_counter()
                marks["unit_to_audio"] = chunk.timings.since_unit_ready_s
            units.add(chunk.unit_index)
            yield chunk

    stats = await sink.play(chunks())
    return TurnReport(
        user=turn.user, agent=turn.agent, first_token_s=marks.get("first_token", asked) - asked,
        first_audio_s=marks["first_audio"] - asked if "first_audio" in marks else None,
        first_unit_to_audio_s=marks.get("unit_to_audio"),
        first_sound_s=stats.first_sound - asked if stats.first_sound is not None else None,
        speech_seconds=stats.played_seconds, underruns=stats.underruns, units=len(units))


async def run_conversation(engine: UnitStreamEngine, script: Sequence[ScriptedTurn], sink: AudioSink,
                           llm: ScriptedLLM | None = None, out: TextIO | None = sys.stdout,
                           **options) -> list[TurnReport]:
    """Every turn of `script` in order; `out` gets the dialogue as it streams and each turn's latencies."""
    llm = llm or ScriptedLLM()
    reports = []
    for number, turn in enumerate(script, 1):
        if out:
            out.write(f"you:   {turn.user}\nagent: ")
            out.flush()
        on_text = (lambda token: (out.write(token), out.flush())) if out else None
        report = await speak_turn(engine, llm, turn, sink, on_text=on_text, **options)
        if out:
            out.write(f"\n  turn {number}: {report.line()}\n")
            out.flush()
        reports.append(report)
    return reports

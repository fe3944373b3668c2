"""Child process of the round-trip test: the scripted conversation through the default voice to the sound device.

Run with an environment whose default ALSA device is a WAV file (see
`system_support.alsa_wav_device`). Writes, into the folder given as argument,
what the engine synthesized (`synthesized.npy`, all turns in order), each
turn's unit texts and the player's statistics (`report.json`).
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from agent_tts.audio.player import Player
from agent_tts.conversation.runner import speak_turn
from agent_tts.conversation.scripted_llm import DEFAULT_SCRIPT, ScriptedLLM
from agent_tts.default_voice.engine import DefaultVoiceSynthesizer


class TeeEngine:
    """Passes the engine's chunks through, keeping a copy of each (what was synthesized)."""

    def __init__(self, engine: DefaultVoiceSynthesizer) -> None:
        self.engine = engine
        self.chunks = []

    async def stream(self, text, **options):
        async for chunk in self.engine.stream(text, **options):
            self.chunks.append(chunk)
            yield chunk


async def main(folder: Path) -> None:
    engine = TeeEngine(DefaultVoiceSynthesizer())
    # The file device is not paced: holding each turn until it is complete keeps the file free of underrun silence.
    player = Player(engine.engine.sample_rate, prebuffer_seconds=600, keep_timeline=True, keep_running=False)
    llm = ScriptedLLM(first_token_s=0.0, tokens_per_second=400)
    turns = []
    for turn in DEFAULT_SCRIPT:
        before = len(engine.chunks)
        report = await speak_turn(engine, llm, turn, player)
        chunks = engine.chunks[before:]
        units = sorted({(chunk.unit_index, chunk.unit_text) for chunk in chunks})
        turns.append({"agent": turn.agent, "units": [text for _, text in units], "underruns": report.underruns,
                      "speech_seconds": report.speech_seconds, "sample_rate": chunks[0].sample_rate})
    player.close()
    engine.engine.close()
    np.save(folder / "synthesized.npy", np.concatenate([chunk.pcm for chunk in engine.chunks]))
    (folder / "report.json").write_text(json.dumps(
        {"turns": turns, "timeline": [asdict(segment) for segment in player.timeline]}), encoding="utf-8")


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))

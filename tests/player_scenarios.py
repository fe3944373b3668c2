"""Child process of the player tests: one scenario on the default ALSA device, results as JSON on stdout."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import asdict

import numpy as np

from agent_tts.audio.player import AudioDeviceError, Player
from agent_tts.engine.unit_stream import AudioChunk, ChunkTimings


def chunk(pcm: np.ndarray, rate: int, index: int = 0) -> AudioChunk:
    return AudioChunk(pcm.astype(np.float32), rate, index, "", index == 0, False,
                      ChunkTimings(0, 0, 0, 0, 0, 0, 0, 0))


def tone(freq: float, seconds: float, rate: int, level: float = 0.5) -> np.ndarray:
    return level * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)


async def resample() -> dict:
    player = Player(22050, prebuffer_seconds=10, keep_running=False)  # a file device has no clock

    async def chunks():
        for piece in np.split(tone(440, 1.0, 32000), 4):
            yield chunk(piece, 32000)
    stats = await player.play(chunks())
    player.close()
    return {"played_seconds": stats.played_seconds}


async def stop_then_next_turn() -> dict:
    player = Player(22050, prebuffer_seconds=0.05, keep_timeline=True, keep_running=False)

    async def chunks():
        yield chunk(tone(440, 0.5, 22050), 22050)
        await asyncio.sleep(0.3)
        player.stop()
        for index in range(1, 4):  # what the engine still sends after the barge-in must not be heard
            yield chunk(np.full(2205, 0.9), 22050, index)
            await asyncio.sleep(0.01)
    first = await player.play(chunks())
    kinds_after_stop = len(player.timeline)

    async def next_turn():
        yield chunk(tone(660, 0.5, 22050), 22050)
    second = await player.play(next_turn())
    player.close()
    return {"first": {"stopped": first.stopped, "played_seconds": first.played_seconds},
            "second": {"stopped": second.stopped, "played_seconds": second.played_seconds},
            "segments_before_second_turn": kinds_after_stop}


async def stop_in_real_time() -> dict:
    """A 5 s tone on a real-time device, stopped after about one second of sound; then a 0.5 s turn."""
    player = Player(22050, device="agent_tts_capture", prebuffer_seconds=0.05)
    player.open()
    await asyncio.sleep(2.5)  # PulseAudio's ALSA plugin takes up to 2 s to settle after a stream starts

    async def chunks():
        for piece in np.split(tone(440, 5.0, 22050), 10):
            yield chunk(piece, 22050)

    async def stop_later():
        while player._turn is None or player._turn.stats.first_sound is None:
            await asyncio.sleep(0.005)
        await asyncio.sleep(1.0)
        player.stop()

    stopper = asyncio.create_task(stop_later())
    stats = await player.play(chunks())
    await stopper
    await asyncio.sleep(0.5)

    async def next_turn():
        yield chunk(tone(660, 0.5, 22050), 22050)
    second = await player.play(next_turn())
    player.close()
    return {"played_at_stop": stats.played_at_stop, "block_seconds": player.blocksize / 22050,
            "played_seconds": stats.played_seconds, "underruns": stats.underruns,
            "device_underflows": stats.device_underflows + second.device_underflows,
            "second_turn_sound_after_s": second.first_sound - second.started,
            "second_turn_played_seconds": second.played_seconds}


async def prebuffer_grows_after_underrun() -> dict:
    """A turn whose engine stalls for 3 s mid-speech (longer than a busy device's own stalls), on a real-time
    device; then a second turn."""
    player = Player(22050, device="agent_tts_capture")
    player.open()
    await asyncio.sleep(2.5)  # PulseAudio's ALSA plugin takes up to 2 s to settle after a stream starts

    async def stalling():
        yield chunk(tone(440, 0.3, 22050), 22050)
        await asyncio.sleep(3.0)
        yield chunk(tone(440, 0.3, 22050), 22050, 1)
    first = await player.play(stalling())

    async def next_turn():
        yield chunk(tone(660, 0.5, 22050), 22050)
    second = await player.play(next_turn())
    player.close()
    return {"first": asdict(first), "second": asdict(second)}


def no_device() -> dict:
    try:
        Player(22050).open()
    except AudioDeviceError as exc:
        return {"error": str(exc)}
    return {"error": None}


if __name__ == "__main__":
    scenario = sys.argv[1]
    result = no_device() if scenario == "no_device" else asyncio.run(globals()[scenario]())
    print(json.dumps(result))

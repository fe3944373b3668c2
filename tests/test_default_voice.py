"""The bundled default voice: Piper's model on onnxruntime, eSpeak NG in its own process, the engine's stream."""

from __future__ import annotations

import asyncio
import os
import threading
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from agent_tts.default_voice.engine import DefaultVoiceSynthesizer
from agent_tts.default_voice.espeak_phonemizer import EspeakPhonemizer
from agent_tts.stress.resources import stream_workers


@pytest.fixture(scope="module")
def engine():
    engine = DefaultVoiceSynthesizer(noise_scale=0.0, noise_w=0.0)  # no noise: the same text gives the same audio
    yield engine
    engine.close()


def test_phoneme_ids_follow_pipers_layout(engine):
    table = engine.voice.config.phoneme_id_map
    ids = engine.voice.phoneme_ids("hə,")
    assert ids == table["^"] + table["_"] + table["h"] + table["_"] + table["ə"] + table["_"] \
        + table[","] + table["_"] + table["$"]


def test_text_becomes_ipa_with_clause_punctuation(engine):
    phonemes, speakable = engine.to_phonemes("Sure, Dr. Smith! It costs $5.")
    assert phonemes.startswith("ʃˈʊɹ, dˈɑːktɚ") and phonemes.endswith("dˈɑːlɚz.")
    assert "!" in phonemes and speakable > 20
    assert engine.to_phonemes("🙂🙂 ... **") == ("", 0)


def test_espeak_runs_in_its_own_process_not_ours(engine):
    engine.to_phonemes("Hello there.")
    maps = Path(f"/proc/{os.getpid()}/maps").read_text()
    assert "espeak" not in maps
    helper = engine.phonemizer._process
    assert helper is not None and helper.pid != os.getpid()
    assert "libespeak-ng" in Path(f"/proc/{helper.pid}/maps").read_text()


def test_the_phonemizer_survives_its_process_dying():
    phonemizer = EspeakPhonemizer()
    first = phonemizer.phonemize(["good morning"])
    phonemizer._process.kill()
    phonemizer._process.wait()
    assert phonemizer.phonemize(["good morning"]) == first
    phonemizer.close()


async def test_stream_speaks_each_unit_in_order_like_the_gpt_sovits_engine(engine):
    text = "Sure, I can help with that. Your order shipped on Monday. It should arrive by Friday."
    chunks = [chunk async for chunk in engine.stream(text)]
    assert [chunk.unit_index for chunk in chunks] == list(range(len(chunks))) and len(chunks) == 3
    assert all(chunk.first and chunk.last and chunk.sample_rate == 22050 for chunk in chunks)
    assert chunks[0].unit_text == "Sure, I can help with that."
    whole = np.concatenate([chunk.pcm for chunk in chunks])
    # Same text, same audio (noise off); a unit's audio does not depend on how the text arrived.
    async def deltas():
        for word in text.split(" "):
            yield word + " "
    assert np.array_equal(await engine.synthesize_async(deltas()), whole)
    assert 4.0 < len(whole) / 22050 < 12.0
    slower = await engine.synthesize_async(text, speed=0.5)
    assert 1.6 < len(slower) / len(whole) < 2.4


@pytest.mark.parametrize("text, speaks", [("", False), ("   ", False), ("🙂🙂🙂", False), ("...!?", False),
                                          ("你好世界", False), ("Привет мир", False), ("\x00\x07\x1b\x7f", False),
                                          ("# Title\n\n* item\n* `code`", True)])
async def test_text_with_nothing_english_to_say_gives_no_audio_and_no_error(engine, text, speaks):
    chunks = [chunk async for chunk in engine.stream(text)]
    assert bool(chunks) == speaks
    assert all(np.isfinite(chunk.pcm).all() and len(chunk.pcm) for chunk in chunks)


async def test_closing_the_stream_stops_its_worker(engine):
    stream = engine.stream("First sentence here. " * 20)
    first = await stream.__anext__()
    await stream.aclose()
    assert first.unit_index == 0
    assert not stream_workers()
    assert [chunk async for chunk in engine.stream("And the next request works.")]


def test_warm_up_runs_and_chunk_timings_cover_the_synthesis(engine):
    # A warm-up text longer than the lookahead bound: nobody consumes warm-up audio, so it must not wait for room.
    warming = threading.Thread(target=engine.warm_up, args=("This warm-up sentence runs well past one second of "
                                                            "audio, longer than the lookahead bound.",), daemon=True)
    warming.start()
    warming.join(timeout=30)
    assert not warming.is_alive()
    async def first_chunk():
        async for chunk in engine.stream("Sure, I can help with that."):
            return chunk
    chunk = asyncio.run(first_chunk())
    assert chunk.timings.decode_ms > 0 and chunk.timings.since_unit_ready_s >= chunk.timings.decode_ms / 1000


ACCURACY_TEXT = ("Sure, I can help with that. Your order shipped on Monday from our warehouse in Leeds. "
                 "The courier collected it in the afternoon, and it passed through the regional depot on Tuesday "
                 "morning. Is there anything else I can do for you today?")


def test_the_graph_gives_phoneme_durations_that_add_up_to_the_waveform(engine):
    phonemes, _ = engine.to_phonemes("Good morning, how are you?")
    audio, starts = engine.voice.synthesize_timed(phonemes, noise_scale=0.0, noise_w=0.0)
    assert starts is not None and len(starts) == len(unicodedata.normalize("NFD", phonemes))
    assert starts[0] > 0 and np.all(np.diff(starts) >= 0) and starts[-1] < len(audio)
    assert np.array_equal(audio, engine.voice.synthesize(phonemes, noise_scale=0.0, noise_w=0.0))


async def test_word_start_times_match_what_whisper_hears(engine):
    """Real weights: Piper's own durations against whisper tiny.en's word timestamps on the same audio."""
    from asr_oracle import align, transcribe_words, words

    chunks = [chunk async for chunk in engine.stream(ACCURACY_TEXT)]
    ours = [(word, timed.start_s) for chunk in chunks for timed in chunk.words for word in words(timed.text)]
    assert [word for word, _ in ours] == words(ACCURACY_TEXT)
    heard = transcribe_words(np.concatenate([chunk.pcm for chunk in chunks]), engine.sample_rate)
    pairs = align([word for word, _ in ours], [word.word for word in heard]).pairs
    errors = np.array([ours[r][1] - heard[h].start_s for r, h in pairs
                       if r is not None and h is not None and ours[r][0] == heard[h].word])
    print(f"{len(errors)} of {len(ours)} words compared: median |error| {1000 * np.median(np.abs(errors)):.0f} ms, "
          f"mean {1000 * errors.mean():+.0f} ms, 90th percentile {1000 * np.percentile(np.abs(errors), 90):.0f} ms")
    assert len(errors) >= 0.8 * len(ours)
    assert np.median(np.abs(errors)) <= 0.080

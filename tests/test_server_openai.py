"""The OpenAI speech API on a real server, with the official `openai` client; audio checked by PyAV and libsndfile.

The voices are the gsv-v2 fixture's tiny random-weight models (real formats,
real engine); greedy decoding with a seed makes repeated requests speak alike.
"""

from __future__ import annotations

import base64
import io
import json
import time
import wave

import openai
import pytest
import soundfile

from server_support import GREEDY, decode, fixture_server, pcm16

TEXT = "Your order shipped on Monday. It should arrive by Thursday."
SAME = {**GREEDY, "seed": 3}
CONTENT_TYPES = {"mp3": "audio/mpeg", "opus": "audio/opus", "aac": "audio/aac", "flac": "audio/flac",
                 "wav": "audio/wav", "pcm": "audio/pcm"}
# Encoders add a little at the edges (MP3 and AAC frames, Opus pre-roll), never whole units.
DURATION_TOLERANCE_S = 0.15


@pytest.fixture(scope="module")
def server(gsv_v2_fixture, tmp_path_factory):
    with fixture_server(gsv_v2_fixture, tmp_path_factory.mktemp("voices")) as live:
        yield live


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def speak(client: openai.OpenAI, text: str = TEXT, voice="fixture", **options) -> tuple[bytes, dict, list[float]]:
    """The streamed body, the headers, and when each piece of it arrived (seconds after the request)."""
    started = time.perf_counter()
    arrivals, pieces = [], []
    extra = {key: options.pop(key) for key in list(options) if key not in ("response_format", "stream_format",
                                                                           "speed", "instructions")}
    with client.audio.speech.with_streaming_response.create(model="tts-1", voice=voice, input=text,
                                                           extra_body=extra, **options) as response:
        headers = dict(response.headers)
        for piece in response.iter_bytes():
            arrivals.append(time.perf_counter() - started)
            pieces.append(piece)
    return b"".join(pieces), headers, arrivals


@pytest.fixture(scope="module")
def pcm_seconds(client) -> float:
    data, headers, _ = speak(client, response_format="pcm", **SAME)
    assert headers["content-type"] == "audio/pcm"
    return len(pcm16(data)) / 24000


@pytest.mark.parametrize("response_format", ["mp3", "opus", "aac", "flac", "wav"])
def test_each_format_streams_and_decodes_to_24_khz_and_the_same_length(client, pcm_seconds, response_format):
    data, headers, _ = speak(client, response_format=response_format, **SAME)
    assert headers["content-type"] == CONTENT_TYPES[response_format]
    assert headers.get("transfer-encoding") == "chunked"
    decoded = decode(data)
    # Opus decoders always give 48 kHz; the Ogg header records the 24 kHz input.
    assert decoded.sample_rate == (48000 if response_format == "opus" else 24000)
    assert abs(decoded.seconds - pcm_seconds) < DURATION_TOLERANCE_S, (decoded.seconds, pcm_seconds)
    if response_format == "wav":  # libsndfile reads the streamed WAV too, to the last sample
        samples, rate = soundfile.read(io.BytesIO(data))
        assert rate == 24000 and len(samples) == round(pcm_seconds * 24000)


def test_a_streamed_wav_is_read_to_its_end_by_pythons_wave(client, pcm_seconds):
    data, _, _ = speak(client, response_format="wav", **SAME)
    with wave.open(io.BytesIO(data)) as reader:
        assert (reader.getframerate(), reader.getnchannels(), reader.getsampwidth()) == (24000, 1, 2)
        assert len(reader.readframes(10**9)) // 2 == round(pcm_seconds * 24000)


def test_sse_sends_audio_deltas_then_done_with_usage(client, pcm_seconds):
    data, headers, _ = speak(client, response_format="pcm", stream_format="sse", **SAME)
    assert headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[len("data: "):]) for line in data.decode().splitlines() if line.startswith("data: ")]
    assert [event["type"] for event in events[:-1]] == ["speech.audio.delta"] * (len(events) - 1)
    assert len(events) > 2
    audio = b"".join(base64.b64decode(event["audio"]) for event in events[:-1])
    assert len(pcm16(audio)) == round(pcm_seconds * 24000)
    done = events[-1]
    assert done["type"] == "speech.audio.done"
    assert done["usage"]["input_tokens"] > 0 and done["usage"]["output_tokens"] > 0
    assert done["usage"]["total_tokens"] == done["usage"]["input_tokens"] + done["usage"]["output_tokens"]


def test_the_first_bytes_of_a_long_input_arrive_while_the_rest_is_made(client):
    long_text = " ".join(f"Sentence number {n} of a long answer goes here." for n in range(1, 16))
    data, _, arrivals = speak(client, long_text, response_format="pcm", **GREEDY)
    print(f"long input: first bytes after {arrivals[0]:.2f} s, last after {arrivals[-1]:.2f} s, "
          f"{len(arrivals)} pieces, {len(pcm16(data)) / 24000:.1f} s of audio")
    assert len(arrivals) > 5  # the body came as it was made, not at the end


def test_speed_options_and_ignored_instructions(client, pcm_seconds):
    faster, _, _ = speak(client, response_format="pcm", speed=2.0, **SAME)
    assert len(pcm16(faster)) / 24000 < 0.75 * pcm_seconds
    same, _, _ = speak(client, response_format="pcm", instructions="Speak like a pirate.", **SAME)
    plain, _, _ = speak(client, response_format="pcm", **SAME)
    assert same == plain


def test_openai_voice_names_speak_with_the_default_voice_and_a_voice_object_works(client):
    default, _, _ = speak(client, voice="alloy", response_format="pcm", **SAME)
    named, _, _ = speak(client, voice={"id": "fixture"}, response_format="pcm", **SAME)
    other, _, _ = speak(client, voice="second", response_format="pcm", **SAME)
    assert default == named and other != named


def test_voices_and_models_are_listed(server, client):
    status, body = server.get("/v1/audio/voices")
    voices = json.loads(body)["voices"]
    assert status == 200 and voices[0]["id"] == "fixture"
    assert {voice["id"] for voice in voices} == {"fixture", "second", "third", "fourth", "joe"}
    assert "tts-1" in {model.id for model in client.models.list()}

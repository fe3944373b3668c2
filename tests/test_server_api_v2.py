"""Upstream api_v2 clients against a real server: GET with string parameters (some empty), POST JSON, the global
`/set_*` calls, streaming and not; the WAV read by Python's `wave`, the rest by PyAV.

The fixture voices (tiny random-weight models); greedy decoding with a seed makes a request speak the same as
another asking for the same voice another way.
"""

from __future__ import annotations

import io
import json
import struct
import urllib.parse
import wave

import pytest

from engine_support import REFERENCE_TEXT
from server_support import decode, fixture_server, pcm16

TEXT = "Thanks for waiting. Your table is ready now."


@pytest.fixture(scope="module")
def voices_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("voices")


@pytest.fixture(scope="module")
def server(gsv_v2_fixture, voices_dir):
    # The voices folder and the fixture's model folder are the two directories clients may name files in.
    with fixture_server(gsv_v2_fixture, voices_dir, (gsv_v2_fixture / "models",)) as live:
        yield live


def every_parameter(**changes: str) -> dict[str, str]:
    """A GET query as api_v2 clients send it: every upstream parameter, as strings, some of them empty."""
    query = {"text": TEXT, "text_lang": "en", "ref_audio_path": "", "aux_ref_audio_paths": "", "prompt_lang": "",
             "prompt_text": "", "top_k": "1", "top_p": "1", "temperature": "1", "text_split_method": "cut5",
             "batch_size": "1", "batch_threshold": "", "split_bucket": "true", "speed_factor": "1.0",
             "fragment_interval": "0.3", "seed": "7", "media_type": "wav", "parallel_infer": "True",
             "repetition_penalty": "1.35", "sample_steps": "32", "super_sampling": "false", "streaming_mode": "false",
             "overlap_length": "", "min_chunk_length": "16"}
    return {**query, **changes}


def get_tts(server, **changes: str) -> tuple[int, bytes, dict]:
    return server.request("GET", "/tts?" + urllib.parse.urlencode(every_parameter(**changes)))


def wav_frames(data: bytes) -> tuple[int, bytes]:
    with wave.open(io.BytesIO(data)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth()) == (1, 2)
        return reader.getframerate(), reader.readframes(10**9)


def test_get_with_every_parameter_as_a_string_gives_a_whole_wav(server):
    status, body, headers = get_tts(server)
    assert status == 200 and headers["content-type"] == "audio/wav"
    rate, frames = wav_frames(body)
    assert rate == 32000 and len(frames) > 32000  # the fixture voice's rate; more than half a second
    riff_size, data_size = struct.unpack("<I", body[4:8])[0], struct.unpack("<I", body[40:44])[0]
    assert (riff_size, data_size) == (len(body) - 8, len(frames))  # a whole file carries its real sizes


@pytest.mark.parametrize("mode", ["true", "1", "2", "3"])
def test_every_streaming_mode_streams_a_wav_that_wave_reads_to_its_end(server, mode):
    _, whole, _ = get_tts(server)
    status, streamed, headers = get_tts(server, streaming_mode=mode)
    assert status == 200 and headers.get("transfer-encoding") == "chunked"
    assert struct.unpack("<I", streamed[40:44])[0] == 0xFFFFFFFF  # upstream says 0 here: readers then read nothing
    assert wav_frames(streamed) == wav_frames(whole)


def test_post_json_as_upstream_documents_it(server):
    body = {"text": TEXT, "text_lang": "en", "ref_audio_path": "", "prompt_lang": "en", "prompt_text": "",
            "top_k": 1, "top_p": 1, "temperature": 1, "text_split_method": "cut5", "batch_size": 1,
            "batch_threshold": 0.75, "split_bucket": True, "speed_factor": 1.0, "fragment_interval": 0.3, "seed": 7,
            "media_type": "wav", "streaming_mode": False, "parallel_infer": True, "repetition_penalty": 1.35,
            "sample_steps": 32, "super_sampling": False, "overlap_length": 2, "min_chunk_length": 16}
    status, posted, _ = server.request("POST", "/tts", body)
    assert status == 200 and wav_frames(posted) == wav_frames(get_tts(server)[1])


@pytest.mark.parametrize("media_type", ["raw", "ogg", "aac"])
def test_other_media_types_stream_and_decode(server, media_type):
    _, whole, _ = get_tts(server)
    seconds = len(wav_frames(whole)[1]) / 2 / 32000
    status, body, headers = get_tts(server, media_type=media_type, streaming_mode="2")
    assert status == 200 and headers["content-type"] == f"audio/{media_type}"
    if media_type == "raw":  # 16-bit little-endian at the voice's rate, as upstream
        assert len(pcm16(body)) / 32000 == seconds
    else:
        decoded = decode(body)
        assert decoded.sample_rate == (48000 if media_type == "ogg" else 32000)
        assert abs(decoded.seconds - seconds) < 0.15


def test_a_request_reference_makes_the_same_voice_as_the_registered_one(server, voices_dir):
    by_reference = get_tts(server, ref_audio_path=str(voices_dir / "second.wav"), prompt_text=REFERENCE_TEXT,
                           prompt_lang="en")
    by_name = get_tts(server, voice="second")
    default = get_tts(server)
    assert by_reference[0] == by_name[0] == 200
    assert wav_frames(by_reference[1]) == wav_frames(by_name[1]) != wav_frames(default[1])


def test_a_reference_without_its_text_is_a_clear_400(server, voices_dir):
    status, body, _ = get_tts(server, ref_audio_path=str(voices_dir / "third.wav"), prompt_lang="en")
    assert status == 400 and "prompt_text is required" in json.loads(body)["message"]


def test_set_weights_then_tts_and_set_refer_audio_change_the_voice_for_later_requests(server, gsv_v2_fixture,
                                                                                     voices_dir):
    models = gsv_v2_fixture / "models"
    for route, path in (("/set_gpt_weights", models / "s1.ckpt"), ("/set_sovits_weights", models / "s2.pth")):
        status, body, _ = server.request("GET", f"{route}?weights_path={urllib.parse.quote(str(path))}")
        assert (status, json.loads(body)) == (200, {"message": "success"})
    status, body, _ = get_tts(server, ref_audio_path=str(voices_dir / "fourth.wav"), prompt_text=REFERENCE_TEXT,
                              prompt_lang="en")
    assert status == 200 and wav_frames(body) == wav_frames(get_tts(server, voice="fourth")[1])
    query = urllib.parse.urlencode({"refer_audio_path": str(voices_dir / "third.wav"), "prompt_text": REFERENCE_TEXT,
                                    "prompt_lang": "en"})
    assert server.request("GET", f"/set_refer_audio?{query}")[0] == 200
    status, body, _ = get_tts(server)  # no ref_audio_path: the one set globally
    assert status == 200 and wav_frames(body) == wav_frames(get_tts(server, voice="third")[1])


def test_files_outside_the_allowed_directories_are_403_naming_the_rule(server, voices_dir, tmp_path):
    outside = tmp_path / "secret.wav"
    outside.write_bytes(b"RIFF")
    (voices_dir / "escape.wav").symlink_to(outside)
    for status, body, _ in (get_tts(server, ref_audio_path=str(outside), prompt_text="x", prompt_lang="en"),
                            get_tts(server, ref_audio_path=str(voices_dir / "escape.wav"), prompt_text="x",
                                    prompt_lang="en"),
                            server.request("GET", "/set_gpt_weights?weights_path=/etc/passwd")):
        assert status == 403
        assert "outside the directories" in json.loads(body)["message"]
        assert "--allow-dir" in json.loads(body)["message"]


@pytest.mark.parametrize("changes, message", [
    ({"text": ""}, "text is required"),
    ({"text": "   "}, "text is required"),
    ({"text_lang": ""}, "text_lang is required"),
    ({"text_lang": "ko"}, "ko is not supported"),
    ({"media_type": "mp4"}, "media_type: mp4 is not supported"),
    ({"streaming_mode": "5"}, "streaming_mode must be 0, 1, 2, 3"),
    ({"top_k": "many"}, "top_k must be an integer"),
    ({"text_split_method": "cut9"}, "text_split_method:cut9 is not supported"),
    ({"speed_factor": "10"}, "speed must be between 0.25 and 4"),
    ({"voice": "nobody"}, "no voice named 'nobody'"),
])
def test_bad_parameters_are_400_json_not_200_with_silence(server, changes, message):
    status, body, headers = get_tts(server, **changes)
    assert status == 400 and headers["content-type"] == "application/json"
    assert message in json.loads(body)["message"]


def test_weights_that_are_not_a_checkpoint_are_400(server, voices_dir):
    path = urllib.parse.quote(str(voices_dir / "fixture.toml"))
    status, body, _ = server.request("GET", f"/set_sovits_weights?weights_path={path}")
    assert status == 400 and "fixture.toml" in json.loads(body)["message"]


def test_control_needs_the_runner_and_a_known_command(server):
    assert server.request("GET", "/control")[0] == 400
    assert server.request("GET", "/control?command=dance")[0] == 400
    status, body, _ = server.request("GET", "/control?command=exit")
    assert status == 501 and "agent-tts serve" in json.loads(body)["message"]

"""`agent-tts serve --precision`: every GPT-SoVITS voice the server loads, registered or made per request from a
reference clip, computes in the precision it was given (the fixture's tiny random-weight models)."""

from __future__ import annotations

from agent_tts.cli.main import build_parser
from agent_tts.server.local_service import LocalSpeechService
from agent_tts.server.speech_service import ReferenceVoice
from engine_support import REFERENCE_TEXT
from server_support import write_fixture_voices


def test_serve_takes_the_precision_option_of_the_other_commands():
    assert build_parser().parse_args(["serve"]).precision == "auto"
    assert build_parser().parse_args(["serve", "--precision", "int8"]).precision == "int8"


async def test_registered_and_reference_voices_load_in_the_services_precision(gsv_v2_fixture, tmp_path):
    service = LocalSpeechService(write_fixture_voices(gsv_v2_fixture, tmp_path / "voices"), precision="int8",
                                 device="cpu")
    registered = await service.load_engine("second")
    reference = await service.load_engine(ReferenceVoice(gsv_v2_fixture / "models" / "s1.ckpt",
                                                         gsv_v2_fixture / "models" / "s2.pth",
                                                         gsv_v2_fixture / "ref" / "ref.wav", REFERENCE_TEXT, "en"))
    try:
        for engine in (registered, reference):
            assert engine.voice.precision.name == "int8" and engine.voice.precision.int8_weights
    finally:
        registered.close()
        reference.close()
    fp32 = LocalSpeechService(service.registry, device="cpu")  # the default, as before the option
    engine = await fp32.load_engine(None)
    try:
        assert engine.voice.precision.name == "fp32"
    finally:
        engine.close()

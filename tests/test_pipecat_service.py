"""The pipecat TTS service, clause-first aggregator and WebRTC VAD, run in real pipecat pipelines (run_test)."""

from __future__ import annotations


import numpy as np
import pytest
import soxr
from pipecat.audio.vad.vad_analyzer import VADParams, VADState
from pipecat.frames.frames import (
    ErrorFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    MetricsFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    TTSUpdateSettingsFrame,
)
from pipecat.pipeline.worker import PipelineParams
from pipecat.tests.utils import SleepFrame, run_test

from agent_tts.conversation.scripted_llm import llm_tokens
from agent_tts.default_voice.engine import DefaultVoiceSynthesizer
from agent_tts.engine.synthesizer import Synthesizer
from agent_tts.errors import OptionError
from agent_tts.pipecat.clause_aggregator import ClauseFirstTextAggregator
from agent_tts.pipecat.tts_service import GPTSoVITSTTSService
from agent_tts.pipecat.webrtc_vad import WebRTCVADAnalyzer
from agent_tts.stress.resources import stream_workers
from engine_support import write_fixture_voice
from pipecat_support import AwaitCondition, AwaitFrame, run_script


def llm_reply(text: str) -> list:
    return [LLMFullResponseStartFrame(), *[LLMTextFrame(token) for token in llm_tokens(text)],
            LLMFullResponseEndFrame()]


def audio_of(frames, context_ids=None) -> np.ndarray:
    pcm = b"".join(f.audio for f in frames if isinstance(f, TTSAudioRawFrame)
                   and (context_ids is None or f.context_id in context_ids))
    return np.frombuffer(pcm, np.int16)


@pytest.fixture(scope="module")
def default_engine():
    engine = DefaultVoiceSynthesizer(noise_scale=0.0, noise_w=0.0)
    yield engine
    engine.close()


async def test_clause_first_aggregator_sends_the_first_clause_at_its_comma():
    aggregator = ClauseFirstTextAggregator()
    units = []
    for token in llm_tokens("Sure thing, my friend, your order shipped on Monday. It arrives Friday."):
        units += [a.text async for a in aggregator.aggregate(token)]
    assert units == ["Sure thing, my friend,", "your order shipped on Monday."]
    assert (await aggregator.flush()).text == "It arrives Friday."
    chinese = [a.text async for a in aggregator.aggregate("您好，您的订单已经发货了，预计明天送到。")]
    assert chinese[0] == "您好，您的订单已经发货了，"  # a new reply starts with a clause again
    await aggregator.handle_interruption()
    assert aggregator.text.text == "" and await aggregator.flush() is None


async def test_service_streams_clause_first_audio_resampled_to_the_pipeline_rate(default_engine):
    text = "Sure, I can help with that. Your order shipped on Monday, and it arrives on Friday."
    tts = GPTSoVITSTTSService(voice=default_engine)
    down, _ = await run_test(tts, frames_to_send=llm_reply(text), start_timeout=10,
                             pipeline_params=PipelineParams(audio_out_sample_rate=16000, enable_metrics=True,
                                                            enable_usage_metrics=True))
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert audio and all(f.sample_rate == 16000 and f.num_channels == 1 for f in audio)
    spoken = [f.text for f in down if isinstance(f, TTSTextFrame)]
    assert " ".join(spoken) == text  # word by word (word timestamps), every word once
    expected_seconds = len(await default_engine.synthesize_async(text)) / 22050
    # The same speech (units cut slightly differently change the pauses a little), at 16 kHz.
    assert abs(len(audio_of(down)) / 16000 - expected_seconds) < 0.04 * expected_seconds
    metrics = [d for f in down if isinstance(f, MetricsFrame) for d in f.data]
    assert {type(d).__name__ for d in metrics} >= {"TTFBMetricsData", "ProcessingMetricsData", "TTSUsageMetricsData"}
    assert tts.warm_up_seconds is not None and tts._stop_frame_timeout_s >= 3.0
    assert isinstance(down[-1], (TTSStoppedFrame, LLMFullResponseEndFrame))


class UnitRecordingVoice(DefaultVoiceSynthesizer):
    """The bundled voice, noting the text of each unit it is given to speak."""

    def __init__(self) -> None:
        super().__init__(noise_scale=0.0, noise_w=0.0)
        self.units: list[str] = []

    def _prepare_unit(self, text, options):
        self.units.append(text)
        return super()._prepare_unit(text, options)


async def test_the_engine_speaks_the_aggregators_units_and_each_word_is_timed_as_it_plays():
    engine = UnitRecordingVoice()
    text = "Sure, I can help with that. Your order shipped on Monday, and it arrives on Friday."
    tts = GPTSoVITSTTSService(voice=engine, warm_up=False)
    try:
        down, _ = await run_test(tts, frames_to_send=llm_reply(text), start_timeout=10)
    finally:
        engine.close()
    # One segmentation pass: the clause-first rule fired once, on the reply's first clause, not on every sentence.
    assert engine.units == ["Sure, I can help with that.", "Your order shipped on Monday, and it arrives on Friday."]
    words = [f for f in down if isinstance(f, TTSTextFrame)]
    assert [f.text for f in words] == text.split(" ")
    pts = [f.pts for f in words]
    assert all(pts) and pts == sorted(pts)
    audio = audio_of(down)
    # The words' times span the audio: the last one begins within its last two seconds.
    assert 0 < (pts[-1] - pts[0]) / 1e9 < len(audio) / 24000 and len(audio) / 24000 - (pts[-1] - pts[0]) / 1e9 < 2.0


async def test_interruption_stops_synthesis_and_nothing_of_the_turn_follows(default_engine):
    tts = GPTSoVITSTTSService(voice=default_engine)
    long_text = " ".join(f"This is sentence number {n} of a long answer." for n in range(1, 30))
    frames = [TTSSpeakFrame(long_text), AwaitFrame(TTSAudioRawFrame), SleepFrame(sleep=0.3), InterruptionFrame(),
              SleepFrame(sleep=0.5), TTSSpeakFrame("And the next turn is spoken."), AwaitFrame(TTSAudioRawFrame),
              SleepFrame(sleep=0.5)]
    down, _ = await run_script(tts, frames)
    index = next(i for i, f in enumerate(down) if isinstance(f, InterruptionFrame))
    first_turn = {f.context_id for f in down[:index] if isinstance(f, TTSAudioRawFrame)}
    after = [f for f in down[index:] if isinstance(f, TTSAudioRawFrame)]
    assert first_turn and after and not [f for f in after if f.context_id in first_turn]
    assert len(audio_of(down[:index])) / 24000 < 20  # far from the whole answer: it was cut short
    assert not stream_workers()


async def test_interruption_stops_the_gpt_sovits_engine_within_one_step(gsv_v2_fixture, tmp_path):
    from agent_tts.voice import Voice

    engine = Synthesizer(Voice.load(write_fixture_voice(gsv_v2_fixture, tmp_path)))
    tts = GPTSoVITSTTSService(voice=engine, engine_options={"fixed_tokens": 400, "seed": 1}, warm_up=False)
    frames = [TTSSpeakFrame("Hello there, this is a test of stopping."), AwaitFrame(TTSAudioRawFrame),
              InterruptionFrame(), SleepFrame(sleep=0.5), TTSSpeakFrame("Next."), AwaitFrame(TTSAudioRawFrame),
              SleepFrame(sleep=0.5)]
    down, _ = await run_script(tts, frames)
    assert engine.steps_after_cancel == 0 and engine.decodes_after_cancel == 0
    index = next(i for i, f in enumerate(down) if isinstance(f, InterruptionFrame))
    first_turn = {f.context_id for f in down[:index] if isinstance(f, TTSAudioRawFrame)}
    assert not [f for f in down[index:] if isinstance(f, TTSAudioRawFrame) and f.context_id in first_turn]
    assert [f for f in down[index:] if isinstance(f, TTSAudioRawFrame)]


async def test_voice_switch_takes_effect_between_sentences(default_engine, gsv_v2_fixture, tmp_path):
    voice_file = write_fixture_voice(gsv_v2_fixture, tmp_path)
    tts = GPTSoVITSTTSService(voice=default_engine, engine_options={"fixed_tokens_per_phone": 2.0, "seed": 3})
    frames = [TTSSpeakFrame("The first sentence is in the default voice."),
              TTSUpdateSettingsFrame(delta=GPTSoVITSTTSService.Settings(voice=str(voice_file))),
              AwaitCondition(lambda: tts.pending_voice is not None),  # the update is taken; the voice loads ...
              AwaitCondition(lambda: tts.pending_voice is None),  # ... and is ready for the next sentence
              TTSSpeakFrame("This one is in the new voice."),
              AwaitFrame(TTSStoppedFrame)]
    down, _ = await run_script(tts, frames)
    assert isinstance(tts.engine, Synthesizer) and tts.engine.voice.name == "fixture"
    contexts = list(dict.fromkeys(f.context_id for f in down if isinstance(f, TTSAudioRawFrame)))
    assert len(contexts) == 2
    first = audio_of(down, {contexts[0]})
    reference = soxr.resample(await default_engine.synthesize_async("The first sentence is in the default voice."),
                              22050, 24000)
    assert abs(len(first) - len(reference)) < 0.02 * len(reference)  # the first sentence was not cut or switched


def test_webrtc_vad_hears_speech_and_not_silence(default_engine):
    import asyncio

    speech = soxr.resample(asyncio.run(default_engine.synthesize_async("Hello there, can you hear me speaking?")),
                           22050, 16000)
    pcm = (np.concatenate([np.zeros(8000), speech, np.zeros(16000)]) * 32767).astype(np.int16).tobytes()
    for mode in (0, 3):
        vad = WebRTCVADAnalyzer(mode=mode, frame_ms=20, params=VADParams(start_secs=0.1, stop_secs=0.3))
        vad.set_sample_rate(16000)
        step = vad.num_frames_required() * 2
        states = [vad._run_analyzer(pcm[i:i + step]) for i in range(0, len(pcm) - step, step)]
        assert states[:20] == [VADState.QUIET] * 20  # half a second of silence
        assert VADState.SPEAKING in states and states[-1] == VADState.QUIET
    with pytest.raises(ValueError, match="8000, 16000, 32000 or 48000"):
        WebRTCVADAnalyzer().set_sample_rate(22050)
    with pytest.raises(ValueError):
        WebRTCVADAnalyzer(mode=5)
    analyzer = WebRTCVADAnalyzer(frame_ms=30, sample_rate=48000)
    analyzer.set_sample_rate(48000)
    assert analyzer.num_frames_required() == 1440


async def test_empty_deltas_a_stalling_llm_and_emoji_only_replies_keep_the_pipeline_running(default_engine):
    tts = GPTSoVITSTTSService(voice=default_engine)
    frames = [LLMFullResponseStartFrame(), LLMTextFrame(""), LLMTextFrame(" "), LLMTextFrame("Hello there,"),
              LLMTextFrame(""), SleepFrame(sleep=3.5),  # the LLM stalls longer than the stop-frame timeout
              LLMTextFrame(" my friend. How are"), LLMTextFrame(" you?"), LLMFullResponseEndFrame()]
    for _ in range(4):  # more emoji-only replies in a row than pipecat's default tolerance of silent turns
        frames += llm_reply("🙂🙂🙂 👍")
    frames += [*llm_reply("And I still speak."), SleepFrame(sleep=1.0)]
    down, _ = await run_test(tts, frames_to_send=frames, start_timeout=10)
    spoken = [f.text for f in down if isinstance(f, TTSTextFrame)]
    assert " ".join(spoken) == "Hello there, my friend. How are you? And I still speak."
    assert tts.is_usable and not [f for f in down if type(f).__name__ == "ErrorFrame"]


async def test_bad_settings_are_one_line_errors_and_a_bad_update_keeps_the_previous_settings(default_engine):
    with pytest.raises(OptionError, match="^speed must be between 0.25 and 4, got 10$"):
        GPTSoVITSTTSService(voice=default_engine, settings=GPTSoVITSTTSService.Settings(speed=10.0))
    with pytest.raises(OptionError, match="unknown synthesis option"):
        GPTSoVITSTTSService(voice=default_engine, engine_options={"no_such_option": 1})
    tts = GPTSoVITSTTSService(voice=default_engine)
    frames = [TTSUpdateSettingsFrame(delta=GPTSoVITSTTSService.Settings(speed=10.0)),
              TTSSpeakFrame("Still speaking at the old speed."), AwaitFrame(TTSStoppedFrame)]
    down, up = await run_script(tts, frames)
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert len(errors) == 1 and "speed must be between 0.25 and 4, got 10" in errors[0].error
    assert tts._settings.speed == 1.0
    expected = len(await default_engine.synthesize_async("Still speaking at the old speed.")) / 22050
    assert abs(len(audio_of(down)) / 24000 - expected) < 0.05 * expected

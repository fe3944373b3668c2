"""The LiveKit Agents plugin (`agent_tts.livekit.TTS`) driven without a LiveKit server: its streams directly, and a
room-less `AgentSession` whose audio output plays in real time, interrupted mid-sentence."""

from __future__ import annotations

import asyncio
import time

import pytest

pytest.importorskip("livekit.agents")

from livekit.agents import Agent, AgentSession, io  # noqa: E402
from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT  # noqa: E402
from livekit.agents.voice.transcription.synchronizer import TranscriptSynchronizer  # noqa: E402

from agent_tts.conversation.scripted_llm import llm_tokens  # noqa: E402
from agent_tts.default_voice.engine import DefaultVoiceSynthesizer  # noqa: E402
from agent_tts.engine.synthesizer import Synthesizer  # noqa: E402
from agent_tts.livekit import TTS  # noqa: E402
from agent_tts.stress.resources import stream_workers  # noqa: E402
from asr_oracle import words  # noqa: E402
from engine_support import write_fixture_voice  # noqa: E402

TEXT = "Sure, I can help with that. Your order shipped on Monday, and it arrives on Friday."
LONG = ("Your order shipped on Monday from our warehouse in Leeds. The courier collected it in the afternoon, and it "
        "passed through the regional depot on Tuesday morning. It is now on the van for your area.")


@pytest.fixture(scope="module")
def engine():
    engine = DefaultVoiceSynthesizer(noise_scale=0.0, noise_w=0.0)
    yield engine
    engine.close()


def timed(events) -> list:
    return [text for event in events for text in event.frame.userdata.get(USERDATA_TIMED_TRANSCRIPT, [])]


async def test_streamed_text_comes_out_as_audio_frames_with_aligned_words(engine):
    tts = TTS(voice=engine)
    assert tts.capabilities.streaming and tts.capabilities.aligned_transcript and tts.sample_rate == 22050
    metrics = []
    tts.on("metrics_collected", metrics.append)
    stream = tts.stream()
    for token in llm_tokens(TEXT):
        stream.push_text(token)
    stream.flush()
    stream.end_input()
    events = [event async for event in stream]
    await stream.aclose()
    assert events and all(e.frame.sample_rate == 22050 and e.frame.num_channels == 1 for e in events)
    assert len({e.segment_id for e in events}) == 1 and events[-1].is_final
    duration = sum(e.frame.duration for e in events)
    texts = timed(events)
    assert "".join(texts) == TEXT  # the words and the spaces between them: the text as the LLM wrote it
    starts = [text.start_time for text in texts]
    assert starts == sorted(starts) and 0 <= starts[0] and starts[-1] < duration
    await asyncio.sleep(0.1)  # metrics are emitted by the framework's monitoring task
    assert metrics and metrics[-1].characters_count == len(TEXT) and metrics[-1].audio_duration > 0
    assert metrics[-1].ttfb > 0 and metrics[-1].streamed


async def test_a_flush_ends_the_segment_and_synthesize_speaks_a_whole_text(engine):
    tts = TTS(voice=engine)
    stream = tts.stream()
    stream.push_text("The segment ends at its flush, ")
    stream.push_text("with the input still open.")
    stream.flush()
    events = []
    async with asyncio.timeout(60):
        async for event in stream:
            events.append(event)
            if event.is_final:
                break
    await stream.aclose()
    assert "".join(timed(events)) == "The segment ends at its flush, with the input still open."
    chunked = [event async for event in tts.synthesize("Hello there, this is the whole text.")]
    assert "".join(timed(chunked)) == "Hello there, this is the whole text."
    assert sum(e.frame.duration for e in chunked) > 1.0


async def test_closing_a_stream_mid_utterance_stops_the_engine_at_once(gsv_v2_fixture, tmp_path):
    from agent_tts.voice import Voice

    synthesizer = Synthesizer(Voice.load(write_fixture_voice(gsv_v2_fixture, tmp_path)))
    tts = TTS(voice=synthesizer, fixed_tokens=400, seed=1)
    stream = tts.stream()
    stream.push_text("Hello there, this is a long test of stopping in the middle.")
    stream.end_input()
    first = await stream.__anext__()
    await stream.aclose()
    assert first.frame.duration > 0
    assert synthesizer.steps_after_cancel == 0 and synthesizer.decodes_after_cancel == 0
    assert not stream_workers()
    again = [event async for event in tts.synthesize("Next.")]  # the engine is free for the next request
    assert again


class RealTimeSpeaker(io.AudioOutput):
    """An audio output that plays frames at real-time pace and stops at once on `clear_buffer`."""

    def __init__(self) -> None:
        super().__init__(label="real-time speaker", capabilities=io.AudioOutputCapabilities(pause=False))
        self._frames: asyncio.Queue = asyncio.Queue()
        self._cleared = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.played_s = 0.0

    async def capture_frame(self, frame) -> None:
        await super().capture_frame(frame)
        if self._task is None or self._task.done():
            self.played_s = 0.0
            self._task = asyncio.create_task(self._play())
        self._frames.put_nowait(frame)

    def flush(self) -> None:
        super().flush()
        self._frames.put_nowait(None)

    def clear_buffer(self) -> None:
        self._cleared.set()

    async def _play(self) -> None:
        started = False
        while (frame := await self._frames.get()) is not None:
            if not started:
                self.on_playback_started(created_at=time.time())
                started = True
            try:
                await asyncio.wait_for(self._cleared.wait(), frame.duration)
            except TimeoutError:
                self.played_s += frame.duration
                continue
            self._cleared.clear()
            while not self._frames.empty():
                self._frames.get_nowait()
            self.on_playback_finished(playback_position=self.played_s, interrupted=True)
            return
        self.on_playback_finished(playback_position=self.played_s, interrupted=False)


async def test_an_interrupted_reply_leaves_the_words_that_played_in_the_chat(engine):
    """A room-less AgentSession with aligned transcripts: interrupted mid-reply, the chat keeps what was played."""
    word_times = [(word, timed_word.start_s) async for chunk in engine.stream(LONG) for timed_word in chunk.words
                  for word in words(timed_word.text)]
    session = AgentSession(tts=TTS(voice=engine), use_tts_aligned_transcript=True)
    speaker = RealTimeSpeaker()
    synchronizer = TranscriptSynchronizer(next_in_chain_audio=speaker, next_in_chain_text=None)
    session.output.audio = synchronizer.audio_output
    session.output.transcription = synchronizer.text_output
    await session.start(agent=Agent(instructions="Answer questions about orders."))
    try:
        handle = session.say(LONG)
        async with asyncio.timeout(60):
            while speaker.played_s < 2.5:
                await asyncio.sleep(0.01)
        handle.interrupt()
        await handle.wait_for_playout()
        played = speaker.played_s
        messages = [item for item in session.history.items if item.type == "message" and item.role == "assistant"]
    finally:
        await session.aclose()
    assert len(messages) == 1 and messages[0].interrupted
    kept = words(messages[0].text_content)
    expected = [word for word, start in word_times if start < played]
    print(f"played {played:.2f} s; the chat keeps {messages[0].text_content!r}")
    assert kept == [word for word, _ in word_times][: len(kept)]  # a cut of the reply ...
    assert abs(len(kept) - len(expected)) <= 1  # ... where the audio stopped, up to one word


async def test_the_livekit_demo_answers_a_typed_question_in_the_bundled_voice(monkeypatch, tmp_path):
    import importlib.util
    from pathlib import Path

    monkeypatch.setenv("AGENT_TTS_HOME", str(tmp_path))  # no registered voice: the bundled one
    monkeypatch.delenv("AGENT_TTS_VOICE", raising=False)
    path = Path(__file__).resolve().parents[1] / "demos" / "livekit_agent.py"
    spec = importlib.util.spec_from_file_location("livekit_agent", path)
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    session = demo.make_session()
    await session.start(agent=Agent(instructions=demo.INSTRUCTIONS))
    try:
        await session.run(user_input="Where is my order?")
        replies = [item.text_content for item in session.history.items
                   if item.type == "message" and item.role == "assistant"]
    finally:
        await session.aclose()
        session.tts.engine.close()
    assert replies and "order shipped on Monday" in replies[-1]

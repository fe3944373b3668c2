"""Fuzzed input: random Unicode, Markdown, control characters and very long texts, fed as deltas of random sizes.

Each case goes through `engine.stream()` as an async stream of deltas (cut at
random places, empty deltas included), and a share of them through the
pipecat service. Checked: nothing but `AgentTTSError` escapes, and the audio
is bounded by the input: at most `MAX_AUDIO_S_PER_CHAR` seconds per input
character (the engine's per-phone token budget times the most phones a
character can make), and at least `MIN_AUDIO_S_PER_PHRASE_CHAR` per
character of the plain phrases the generator put in ("thank you", "您好"),
so that text dropped unspoken (as a mid-line code fence once dropped the rest
of its line) shows.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from agent_tts.engine.unit_stream import UnitStreamEngine
from agent_tts.errors import AgentTTSError

MAX_AUDIO_S_PER_CHAR = 2.6  # 8 tokens per phone x 8 phones per character x 0.04 s per token, rounded up
# A third of the slowest the fixture voice speaks the phrases at 1 token per phone ("has shipped": 0.029 s a character).
MIN_AUDIO_S_PER_PHRASE_CHAR = 0.01
PHRASES = ("Your order", "has shipped", "您好", "欢迎光临", "thank you", "请稍等", "OK")
PIECES = ("1,000", "3.5", "$12.99", "85%", "12:30", "2024年3月15日", "13800138000", "Dr.", "e.g.", "U.S.A.",
          "www.example.com", "a@b.c", "😀", "👍🏽", "🇨🇳", "**bold**", "_it_", "# Title", "```code```", "- item",
          "> quote", "[link](url)", "| a | b |", "\x00", "\x07", "\x1b[31m", "\u200b", "\u202e", "\ufeff", "\t", "\n",
          "\r\n", "Привет", "مرحبا", "한국어", "ภาษาไทย", "ｶﾀｶﾅ", "ＡＢＣ１２３", "①", "Ⅷ", "½", "你好", "订单号20231108",
          "-5℃", "3-5天", "こんにちは", "東京", "Hello", "NASA", "iPhone 15", "。", "！", "…", "——", "《》")


def random_text(rng: random.Random, max_chars: int, exact: bool = False, phrases: list[str] | None = None) -> str:
    """A text of up to (`exact`: about) `max_chars` characters: random code points, tricky pieces, words and
    marks mixed. The plain phrases among them that the text keeps whole are added to `phrases`."""
    parts: list[str] = []
    length = 0
    target = max_chars if exact else rng.randint(0, max_chars)
    while length < target:
        kind = rng.random()
        if kind < 0.35:
            part = rng.choice(PIECES)
        elif kind < 0.6:
            part = "".join(chr(rng.randint(0x20, 0x2FFF)) for _ in range(rng.randint(1, 12)))
        elif kind < 0.7:
            part = "".join(chr(rng.randint(0, 0x10FFFF)) for _ in range(rng.randint(1, 4)))
        else:
            phrase = rng.choice(PHRASES)
            part = phrase + rng.choice((" ", ", ", ". ", "，", "。", "\n", ""))
            if phrases is not None and length + len(phrase) <= max_chars:
                phrases.append(phrase)
        parts.append(part)
        length += len(part)
    text = "".join(parts)[:max_chars]
    return "".join(ch for ch in text if not 0xD800 <= ord(ch) <= 0xDFFF)  # no lone surrogates: not UTF-8


def random_deltas(rng: random.Random, text: str) -> list[str]:
    deltas, index = [], 0
    while index < len(text):
        size = rng.choice((0, 1, 1, 2, 3, 5, 8, 20, 200))
        deltas.append(text[index:index + size])
        index += size
    return deltas


@dataclass
class FuzzReport:
    cases: int
    escaped: list[str] = field(default_factory=list)       # exceptions other than AgentTTSError
    agent_errors: int = 0
    over_bound: list[str] = field(default_factory=list)    # cases whose audio exceeded the bound
    under_bound: list[str] = field(default_factory=list)   # cases with less audio than their plain phrases need
    chars: int = 0
    audio_s: float = 0.0
    longest_chars: int = 0
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.escaped or self.over_bound or self.under_bound)

    def summary(self) -> dict:
        return {"cases": self.cases, "escaped": self.escaped[:10], "agent_errors": self.agent_errors,
                "over_bound": self.over_bound[:10], "under_bound": self.under_bound[:10], "chars": self.chars,
                "longest_chars": self.longest_chars, "audio_s": round(self.audio_s, 1), "wall_s": round(self.wall_s, 1)}


async def _deltas(items: list[str]):
    for item in items:
        yield item


async def fuzz_inputs(engine: UnitStreamEngine, cases: int, max_chars: int = 400, long_chars: int = 0,
                      seed: int = 0, pipecat_share: float = 0.2, options: dict | None = None,
                      progress=None, note=None) -> FuzzReport:
    """`cases` random texts (one of them `long_chars` long, if set) through `stream()` and the pipecat service;
    `options` go to every stream; `progress(done, total)` every 20 cases; `note(message)` every minute of a long
    case."""
    rng = random.Random(seed)
    report = FuzzReport(cases)
    pipeline = None
    started = time.perf_counter()
    try:
        for index in range(cases):
            phrases: list[str] = []
            text = random_text(rng, long_chars, exact=True, phrases=phrases) if long_chars and index == 0 else \
                random_text(rng, max_chars, phrases=phrases)
            report.chars += len(text)
            report.longest_chars = max(report.longest_chars, len(text))
            audio, erred = 0.0, False
            try:
                if rng.random() < pipecat_share:
                    if pipeline is None:
                        pipeline = await _service_pipeline(engine, options)
                    audio = await _through_pipecat(pipeline, text)
                else:
                    noted = time.perf_counter()
                    async for chunk in engine.stream(_deltas(random_deltas(rng, text)), **(options or {})):
                        audio += chunk.seconds
                        if note is not None and time.perf_counter() - noted >= 60:
                            note(f"case {index} ({len(text)} chars): {audio:.0f} s of audio so far")
                            noted = time.perf_counter()
            except AgentTTSError:
                report.agent_errors += 1
                erred = True
            except Exception as exc:  # noqa: BLE001 - exactly what this run looks for
                report.escaped.append(f"case {index} ({len(text)} chars): {type(exc).__name__}: {exc}")
                erred = True
            report.audio_s += audio
            if audio > MAX_AUDIO_S_PER_CHAR * max(1, len(text)):
                report.over_bound.append(f"case {index}: {audio:.1f} s of audio for {len(text)} characters")
            phrase_chars = sum(len(phrase) for phrase in phrases)
            if not erred and audio < MIN_AUDIO_S_PER_PHRASE_CHAR * phrase_chars:
                report.under_bound.append(f"case {index}: {audio:.1f} s of audio for {len(phrases)} plain phrases "
                                          f"({phrase_chars} characters)")
            if progress is not None and (index + 1) % 20 == 0:
                progress(index + 1, cases)
    finally:
        if pipeline is not None:
            await pipeline.close()
    report.wall_s = time.perf_counter() - started
    return report


async def _service_pipeline(engine: UnitStreamEngine, options: dict | None):
    from agent_tts.pipecat.tts_service import GPTSoVITSTTSService
    from agent_tts.stress.pipecat_harness import ServicePipeline

    pipeline = ServicePipeline(GPTSoVITSTTSService(voice=engine, engine_options=dict(options or {}), warm_up=False))
    await pipeline.start()
    return pipeline


async def _through_pipecat(pipeline, text: str, idle_s: float = 1.0, timeout_s: float = 300.0) -> float:
    """Speak `text` through the service; seconds of audio it pushed (at the pipeline's rate, 16-bit mono).

    The turn is over at its `TTSStoppedFrame`, or (a text with nothing to say starts no speech) once the engine
    has had no stream for `idle_s`.
    """
    from pipecat.frames.frames import ErrorFrame, TTSAudioRawFrame, TTSStoppedFrame

    pipeline.forget()
    started = time.perf_counter()
    await pipeline.speak(text)
    engine = pipeline.service.engine
    idle_since = None
    while time.perf_counter() - started < timeout_s:
        if await pipeline.wait_for(TTSStoppedFrame, started, 0.05) is not None:
            break
        if engine.active_streams:
            idle_since = None
        elif idle_since is None:
            idle_since = time.perf_counter()
        elif time.perf_counter() - idle_since >= idle_s:
            break
    errors = [seen.frame for seen in pipeline.sink.seen if isinstance(seen.frame, ErrorFrame)]
    if errors:
        raise AgentTTSError(errors[0].error)
    return sum(len(seen.frame.audio) / 2 / seen.frame.sample_rate for seen in pipeline.sink.seen
               if isinstance(seen.frame, TTSAudioRawFrame))

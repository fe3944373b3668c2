"""A pipecat text aggregator that hands the TTS the first clause at its first comma, then whole sentences.

pipecat's default aggregator waits for a sentence end and never splits at
`，`; this one is the engine's `Segmenter` behind pipecat's aggregator
interface, so the first clause of each reply reaches the TTS as soon as it is
long enough (6 CJK characters or 4 words by default), in Chinese, English,
Japanese or mixed text, never cutting a number, abbreviation, URL or address.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from pipecat.utils.text.base_text_aggregator import Aggregation, BaseTextAggregator, TextType

from agent_tts.text.segmenter import Segmenter, SegmenterOptions


class ClauseFirstTextAggregator(BaseTextAggregator):
    """Clause-first segmentation of an LLM reply for `TTSService`; each reply starts over with a clause."""

    def __init__(self, options: SegmenterOptions | None = None, **kwargs) -> None:
        super().__init__(aggregation_type=TextType.SENTENCE, **kwargs)
        self._segmenter = Segmenter(options)

    @property
    def text(self) -> Aggregation:
        return Aggregation(text=self._segmenter.pending.strip(), type=TextType.SENTENCE)

    async def aggregate(self, text: str) -> AsyncIterator[Aggregation]:
        for unit in self._segmenter.feed(text):
            yield Aggregation(text=unit, type=TextType.SENTENCE)

    async def flush(self) -> Aggregation | None:
        units = self._segmenter.flush()
        self._segmenter.reset()  # the next reply begins with a clause again
        return Aggregation(text=" ".join(units), type=TextType.SENTENCE) if units else None

    async def handle_interruption(self) -> None:
        await self.reset()

    async def reset(self) -> None:
        self._segmenter.reset()

"""A pipecat text aggregator that hands the TTS the first clause at its first comma, then whole sentences.

pipecat's default aggregator waits for a sentence end and never splits at
`，`; this one is the engine's `Segmenter` behind pipecat's aggregator
interface, so the first clause of each reply reaches the TTS as soon as it is
long enough (6 CJK characters or 4 words by default), in Chinese, English,
Japanese or mixed text, never cutting a number, abbreviation, URL or address.
It remembers the units of its latest aggregations (`units_of`), so the TTS
service speaks them as they were cut instead of segmenting them again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator

from pipecat.utils.text.base_text_aggregator import Aggregation, BaseTextAggregator, TextType

from agent_tts.text.segmenter import Segmenter, SegmenterOptions


class ClauseFirstTextAggregator(BaseTextAggregator):
    """Clause-first segmentation of an LLM reply for `TTSService`; each reply starts over with a clause."""

    REMEMBERED = 64  # aggregations whose units are kept for `units_of`

    def __init__(self, options: SegmenterOptions | None = None, **kwargs) -> None:
        super().__init__(aggregation_type=TextType.SENTENCE, **kwargs)
        self.options = options or SegmenterOptions()
        self._segmenter = Segmenter(self.options)
        self._cut: OrderedDict[str, list[str]] = OrderedDict()

    def units_of(self, text: str) -> list[str] | None:
        """The units this aggregator cut `text` into (one, or several for a flush), or None for text it did not
        cut."""
        return self._cut.get(text)

    def _remember(self, text: str, units: list[str]) -> Aggregation:
        self._cut[text] = units
        self._cut.move_to_end(text)
        while len(self._cut) > self.REMEMBERED:
            self._cut.popitem(last=False)
        return Aggregation(text=text, type=TextType.SENTENCE)

    @property
    def text(self) -> Aggregation:
        return Aggregation(text=self._segmenter.pending.strip(), type=TextType.SENTENCE)

    async def aggregate(self, text: str) -> AsyncIterator[Aggregation]:
        for unit in self._segmenter.feed(text):
            yield self._remember(unit, [unit])

    async def flush(self) -> Aggregation | None:
        units = self._segmenter.flush()
        self._segmenter.reset()  # the next reply begins with a clause again
        return self._remember(" ".join(units), units) if units else None

    async def handle_interruption(self) -> None:
        await self.reset()

    async def reset(self) -> None:
        self._segmenter.reset()

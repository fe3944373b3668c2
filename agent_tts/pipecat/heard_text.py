"""`HeardTextGuard`: the assistant's context keeps every word that was played when an interruption overtakes them.

With word timestamps the output transport releases each `TTSTextFrame` as
its word plays, and the assistant context aggregator after it writes the
released words to the context. A released word still waiting in a queue on
the way (a busy event loop, a slow processor in between) is lost when the
user interrupts: the `InterruptionFrame` is a system frame and is handled
first, the aggregator commits what it has, and the queued words are dropped
(pipecat issue #4996).

The guard sits directly after `transport.output()`, in direct mode, so it
sees each released word the moment the transport releases it, in the
transport's own task, before any queue. It keeps the turn's words; when the
interruption passes it, it notes what had been heard, and when the
aggregator reports the interrupted turn (`on_assistant_turn_stopped`) with
less than that, it writes the heard text into the turn's assistant message
(or adds the message, if the aggregator had nothing). Turns that end
normally are left as the aggregator wrote them.

    pipeline = Pipeline([..., tts, transport.output(), HeardTextGuard(aggregators.assistant()),
                         aggregators.assistant()])
"""

from __future__ import annotations

from loguru import logger
from pipecat.frames.frames import Frame, InterruptionFrame, TTSTextFrame
from pipecat.processors.aggregators.llm_response_universal import AssistantTurnStoppedMessage, LLMAssistantAggregator
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.utils.string import TextPartForConcatenation, concatenate_aggregated_text


class HeardTextGuard(FrameProcessor):
    """Keeps the words played before an interruption in the assistant's context (see the module docstring)."""

    def __init__(self, assistant: LLMAssistantAggregator, **kwargs) -> None:
        super().__init__(enable_direct_mode=True, **kwargs)
        self._assistant = assistant
        self._heard: list[TextPartForConcatenation] = []
        self._heard_when_interrupted: str | None = None
        self.repaired_turns = 0  # interrupted turns whose context message was missing words that had played
        assistant.add_event_handler("on_assistant_turn_stopped", self._on_turn_stopped)

    @property
    def heard_text(self) -> str:
        """The words of the current turn released so far."""
        return concatenate_aggregated_text(self._heard)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction == FrameDirection.DOWNSTREAM:
            if isinstance(frame, TTSTextFrame) and frame.append_to_context and frame.text:
                self._heard.append(TextPartForConcatenation(
                    frame.raw_text or frame.text, includes_inter_part_spaces=frame.includes_inter_frame_spaces))
            elif isinstance(frame, InterruptionFrame):
                self._heard_when_interrupted = self.heard_text
                self._heard = []
        await self.push_frame(frame, direction)

    async def _on_turn_stopped(self, assistant: LLMAssistantAggregator, message: AssistantTurnStoppedMessage) -> None:
        if not message.interrupted:
            self._heard = []
            return
        heard, self._heard_when_interrupted = self._heard_when_interrupted, None
        if not heard or len(heard) <= len(message.content):
            return
        self.repaired_turns += 1
        logger.debug(f"{self}: the interrupted turn's context had {message.content!r}; {heard!r} had played")
        assistant.context.transform_messages(lambda messages: _with_heard_text(messages, message.content, heard))


def _with_heard_text(messages: list, committed: str, heard: str) -> list:
    """The messages with the interrupted turn's assistant message holding `heard` (added when none was committed)."""
    messages = list(messages)
    if committed:
        for index in range(len(messages) - 1, -1, -1):
            message = messages[index]
            if isinstance(message, dict) and message.get("role") == "assistant" and message.get("content") == committed:
                messages[index] = {**message, "content": heard}
                return messages
    messages.append({"role": "assistant", "content": heard})
    return messages

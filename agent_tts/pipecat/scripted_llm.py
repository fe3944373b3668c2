"""`ScriptedLLMService`: an offline stand-in for an LLM service that streams replies at an LLM's pace.

It answers each `LLMContextFrame` (what pipecat's user aggregator sends to an
LLM) with the reply of a `respond(user_text)` function, pushed as
`LLMFullResponseStartFrame`, `LLMTextFrame` tokens and
`LLMFullResponseEndFrame`, so everything downstream (the clause-first
aggregator, the TTS, the transport) runs exactly as with a real LLM. An
interruption stops the reply being streamed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from loguru import logger
from pipecat.frames.frames import (
    Frame,
    InterruptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from agent_tts.conversation.scripted_llm import llm_tokens


def last_user_text(frame: LLMContextFrame) -> str:
    """The text of the newest user message in the context."""
    for message in reversed(frame.context.get_messages()):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
            return str(content or "")
    return ""


class ScriptedLLMService(FrameProcessor):
    """Streams `respond(user_text)` token by token after `first_token_s`, at `tokens_per_second`."""

    def __init__(self, respond: Callable[[str], str], first_token_s: float = 0.3,
                 tokens_per_second: float = 40.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self._respond = respond
        self.first_token_s = first_token_s
        self.tokens_per_second = tokens_per_second
        self._reply_task: asyncio.Task | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame):
            await self._cancel_reply()
            self._reply_task = self.create_task(self._stream_reply(last_user_text(frame)))
        elif isinstance(frame, InterruptionFrame):
            await self._cancel_reply()
            await self.push_frame(frame, direction)
        else:
            await self.push_frame(frame, direction)

    async def _cancel_reply(self) -> None:
        task, self._reply_task = self._reply_task, None
        if task is not None and not task.done():
            await self.cancel_task(task)

    async def _stream_reply(self, user_text: str) -> None:
        reply = self._respond(user_text)
        logger.debug(f"{self}: replying to {user_text!r}: {reply!r}")
        await self.push_frame(LLMFullResponseStartFrame())
        await asyncio.sleep(self.first_token_s)
        for index, token in enumerate(llm_tokens(reply)):
            if index:
                await asyncio.sleep(1 / self.tokens_per_second)
            await self.push_frame(LLMTextFrame(token))
        await self.push_frame(LLMFullResponseEndFrame())

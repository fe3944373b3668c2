"""An offline stand-in for an LLM: scripted replies streamed token by token at an LLM's pace."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

# Roughly how a BPE tokenizer cuts English: a leading space, word pieces of a few letters, digits in threes,
# punctuation on its own.
TOKEN_PATTERN = re.compile(r" ?[A-Za-z']{1,6}| ?\d{1,3}| ?[^\sA-Za-z\d]|\s+")


def llm_tokens(text: str) -> list[str]:
    """`text` cut into LLM-sized pieces whose concatenation is `text`."""
    return TOKEN_PATTERN.findall(text)


@dataclass(frozen=True)
class ScriptedTurn:
    """One exchange: what the user says and what the agent answers."""

    user: str
    agent: str


DEFAULT_SCRIPT = (
    ScriptedTurn("Hi, I ordered a pair of headphones last week. Where are they?",
                 "Hi there, thanks for reaching out. I can see your order shipped on Monday, "
                 "and the courier expects to deliver it by Thursday afternoon."),
    ScriptedTurn("Can I change the delivery address?",
                 "Yes, you can. Open the tracking page, choose change address, and enter the new one. "
                 "It takes about a minute, and there is no extra charge."),
    ScriptedTurn("Great, thank you.",
                 "You are welcome. Is there anything else I can help you with today?"),
)


class ScriptedLLM:
    """Answers each turn with its scripted reply, streamed after `first_token_s` at `tokens_per_second`."""

    def __init__(self, first_token_s: float = 0.3, tokens_per_second: float = 40.0) -> None:
        if tokens_per_second <= 0:
            raise ValueError("tokens_per_second must be positive")
        self.first_token_s = first_token_s
        self.tokens_per_second = tokens_per_second

    async def stream(self, reply: str) -> AsyncIterator[str]:
        await asyncio.sleep(self.first_token_s)
        for index, token in enumerate(llm_tokens(reply)):
            if index:
                await asyncio.sleep(1 / self.tokens_per_second)
            yield token

"""Offline replies for the scripted LLM: a small FAQ matcher, used when no LLM endpoint is configured."""

from __future__ import annotations

import re
from dataclasses import dataclass

WORD = re.compile(r"[a-z0-9']+")


@dataclass(frozen=True)
class FAQEntry:
    """An answer and the words that point to it."""

    keywords: frozenset[str]
    answer: str


def faq(*entries: tuple[str, str]) -> tuple[FAQEntry, ...]:
    """FAQ entries from ("space-separated keywords", "answer") pairs."""
    return tuple(FAQEntry(frozenset(keywords.split()), answer) for keywords, answer in entries)


SUPPORT_FAQ = faq(
    ("order where shipped shipping track tracking package delivery arrive",
     "Your order shipped on Monday, and the courier expects to deliver it by Thursday afternoon. "
     "You can follow it on the tracking page."),
    ("address change move deliver",
     "You can change the delivery address on the tracking page, as long as the parcel has not left "
     "the local depot. It takes about a minute."),
    ("return refund money back",
     "You can return any item within thirty days. Start the return from your orders page, and the "
     "refund reaches your card within five working days."),
    ("hours open opening time human agent person",
     "Our support team is available from nine in the morning to six in the evening, Monday to Friday. "
     "I can also pass you to a person now, if you like."),
    ("hello hi hey morning evening",
     "Hello! I am the support assistant. How can I help you today?"),
    ("thanks thank bye goodbye",
     "You are welcome. Have a lovely day!"),
)


class FAQResponder:
    """Answers with the FAQ entry sharing the most words with the question, else a fallback."""

    def __init__(self, entries: tuple[FAQEntry, ...] = SUPPORT_FAQ,
                 fallback: str = "Sorry, I did not catch that. Could you say it another way?") -> None:
        self.entries = entries
        self.fallback = fallback

    def __call__(self, question: str) -> str:
        words = set(WORD.findall(question.lower()))
        best = max(self.entries, key=lambda entry: len(entry.keywords & words), default=None)
        if best is None or not best.keywords & words:
            return self.fallback
        return best.answer

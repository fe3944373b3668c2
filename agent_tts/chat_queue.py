"""Which live-chat lines a streamer's voice reads, and in what order: priority, skip rules, barge-in.

`ChatQueue.offer(line)` applies the rules and says what to do: queue the line,
drop it (with the reason), or speak it at once over whatever is playing.

* Priority: a paid message (`$5 ...`, `[SC] ...`) or a moderator command
  (`!say ...`) is high priority: it goes to the front and interrupts the
  current line.
* Skips: nothing speakable (emoji, punctuation, links only), a repeat of a
  recent line, a user who posted too often in the last `user_window_s`, and
  when the queue is full, the oldest normal line makes room.
* Long lines are cut at `max_chars` at a word boundary.
"""

from __future__ import annotations

import re
import time
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

PAID = re.compile(r"^\s*(\$\d+(?:\.\d\d)?|\[SC\])\s*", re.IGNORECASE)
COMMAND = re.compile(r"^\s*!say\s+", re.IGNORECASE)
USER_PREFIX = re.compile(r"^\s*([\w.-]{1,32}):\s+")
URL = re.compile(r"https?://\S+|www\.\S+")


class Verdict(Enum):
    QUEUED = "queued"
    BARGE_IN = "barge-in"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class ChatLine:
    """A line to speak: its text, who wrote it, whether it is high priority."""

    text: str
    user: str = ""
    priority: bool = False


@dataclass
class Decision:
    verdict: Verdict
    line: ChatLine | None = None
    reason: str = ""


@dataclass
class ChatQueue:
    """Orders chat lines for speaking; `next_line()` takes the next one."""

    max_queue: int = 5
    max_chars: int = 200
    repeat_window: int = 20
    user_window_s: float = 10.0
    user_max_lines: int = 3
    queue: deque[ChatLine] = field(default_factory=deque)
    _recent: deque[str] = field(default_factory=deque)
    _user_times: dict[str, deque[float]] = field(default_factory=dict)

    def offer(self, raw: str, now: float | None = None) -> Decision:
        now = time.monotonic() if now is None else now
        text, user = raw.strip(), ""
        if match := USER_PREFIX.match(text):
            user, text = match.group(1), text[match.end():]
        priority = bool(PAID.match(text) or COMMAND.match(text))
        text = COMMAND.sub("", text)
        text = URL.sub("", text).strip()
        if not any(char.isalnum() for char in text):
            return Decision(Verdict.SKIPPED, reason="nothing to say")
        key = " ".join(text.lower().split())
        if not priority and key in self._recent:
            return Decision(Verdict.SKIPPED, reason="repeated")
        if not priority and user and self._too_chatty(user, now):
            return Decision(Verdict.SKIPPED, reason=f"{user} is posting too often")
        self._recent.append(key)
        while len(self._recent) > self.repeat_window:
            self._recent.popleft()
        line = ChatLine(self._shorten(text), user, priority)
        if priority:
            self.queue.appendleft(line)
            return Decision(Verdict.BARGE_IN, line)
        if len(self.queue) >= self.max_queue:
            dropped = next((queued for queued in self.queue if not queued.priority), None)
            if dropped is None:
                return Decision(Verdict.SKIPPED, reason="queue full of priority lines")
            self.queue.remove(dropped)
        self.queue.append(line)
        return Decision(Verdict.QUEUED, line)

    def next_line(self) -> ChatLine | None:
        return self.queue.popleft() if self.queue else None

    def _too_chatty(self, user: str, now: float) -> bool:
        times = self._user_times.setdefault(user, deque())
        while times and now - times[0] > self.user_window_s:
            times.popleft()
        if len(times) >= self.user_max_lines:
            return True
        times.append(now)
        return False

    def _shorten(self, text: str) -> str:
        if len(text) <= self.max_chars:
            return text
        cut = text.rfind(" ", 0, self.max_chars)
        return text[:cut if cut > 0 else self.max_chars].rstrip(" ,;:") + "..."

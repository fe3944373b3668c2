"""`TurnTimer`: an observer that prints each bot turn's first-audio and first-sound times in a live pipeline."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    InterruptionFrame,
    LLMContextFrame,
    LLMFullResponseStartFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.processors.aggregators.llm_response_universal import LLMAssistantAggregator
from pipecat.processors.frame_processor import FrameDirection


@dataclass
class TurnTimes:
    """perf_counter() instants of one bot turn; durations are from `asked` (the user's turn ended)."""

    asked: float
    opened_by: str = ""
    first_audio: float | None = None
    first_sound: float | None = None
    interrupted: bool = False

    def line(self, number: int) -> str:
        def ms(at: float | None) -> str:
            return "n/a" if at is None else f"{1000 * (at - self.asked):.0f} ms"
        return (f"turn {number}: first audio {ms(self.first_audio)}, first sound {ms(self.first_sound)}"
                + (" (interrupted)" if self.interrupted else ""))


class TurnTimer(BaseObserver):
    """Times every turn from the user's end of speech (or the LLM request, or a `TTSSpeakFrame`) to the TTS's
    first audio frame and to the transport's first "bot started speaking"; `report` gets one line per turn."""

    def __init__(self, report: Callable[[str], None] = print, **kwargs) -> None:
        super().__init__(**kwargs)
        self.report = report
        self.turns: list[TurnTimes] = []
        self._current: TurnTimes | None = None
        self._seen: set[int] = set()

    async def on_push_frame(self, data: FramePushed) -> None:
        frame = data.frame
        now = time.perf_counter()
        if isinstance(frame, TTSAudioRawFrame):
            if self._current and self._current.first_audio is None:
                self._current.first_audio = now
            return
        if isinstance(frame, BotStartedSpeakingFrame):
            if self._current and self._current.first_audio is not None and self._current.first_sound is None:
                self._current.first_sound = now
            return
        if frame.id in self._seen:  # every hop between processors reports the frame again
            return
        if isinstance(frame, VADUserStoppedSpeakingFrame):
            # The user's latest end of speech starts the clock, whatever else opened the turn.
            if self._current is None or self._current.first_audio is not None:
                self._finish()
                self._current = TurnTimes(asked=now, opened_by="end of user speech")
            else:
                self._current.asked, self._current.opened_by = now, "end of user speech"
        elif isinstance(frame, (LLMContextFrame, TTSSpeakFrame, LLMFullResponseStartFrame)):
            if isinstance(data.source, LLMAssistantAggregator):  # the updated context, on its way out: no request
                self._seen.add(frame.id)
                return
            if data.direction is FrameDirection.DOWNSTREAM and (self._current is None
                                                                or self._current.first_audio is not None):
                self._finish()
                self._current = TurnTimes(asked=now, opened_by=f"{type(frame).__name__} from {data.source}")
        elif isinstance(frame, InterruptionFrame):
            if self._current and self._current.first_audio is not None:
                self._current.interrupted = True
                self._finish()
        else:
            return
        self._seen.add(frame.id)  # after any _finish(), which forgets the finished turn's frames

    def _finish(self) -> None:
        self._seen.clear()  # only frames of the turn in progress can be reported again
        turn, self._current = self._current, None
        if turn is not None and turn.first_audio is not None:
            self.turns.append(turn)
            self.report(turn.line(len(self.turns)))

    def flush(self) -> None:
        self._finish()

"""How many threads the AR steps and the decodes beside them use: all of torch's, or one while the CPU is shared.

Torch's CPU ops run on OpenMP teams whose threads spin at every barrier
waiting for each other. When another busy process takes one of the cores,
a team member is descheduled and the others spin through its time slice:
on the 2-core AMX Xeon, beside one busy process (`scripts/cpu_hog.py 1`), a
real-size int8 AR step took 200-355 ms on two threads and 22 ms on one, and
two agent-tts processes side by side ran 48 times slower than one alone
(docs/engine.md, "Threads and OpenMP"). Alone, two threads win (14 against
21 ms), so no fixed count is right. `IntraOpThreads` decides while running:
the scheduler times its steps on the current count and, every `interval`
steps, tries the other count for a few steps; if those are clearly faster
(below `MARGIN` of the current count's recent steps with as many rows), it
switches. The first trial comes after `FIRST_TRIAL` steps; a trial that
loses doubles the interval (up to `MAX_INTERVAL` steps), so a settled choice
costs almost nothing, and one that wins sets it to `FIRST_INTERVAL`; a
trial whose first step is already twice as slow ends at once (beside a busy
process that one step on all threads costs 0.2-0.9 s, once per
`MAX_INTERVAL` steps once settled). The count is per thread in torch, so
each thread that computes for a stream adopts the choice itself (`apply`):
the scheduler before every step and prefill, a stream's worker before each
unit's BERT and every decode.

A switch changes the rounding of every step and decode after it (the fixture voice's streamed utterance
on one thread against two: same length, SNR 134 dB), so the same seed gives bit-identical audio only while
the choice holds; on a busy machine it may change between two runs. `AGENT_TTS_THREAD_TUNING=off` keeps
torch's count as it is, for runs that must reproduce bit for bit whatever the load.
"""

from __future__ import annotations

import logging
import os
import statistics
from collections import deque

import torch

logger = logging.getLogger(__name__)

MARGIN = 0.85  # the other count wins when its steps take at most this share of the current count's
TRIAL_STEPS = 3
FIRST_TRIAL = 8  # steps before the first trial: a shared CPU makes steps tens of times slower, so find out soon
FIRST_INTERVAL = 64  # steps between trials after a switch (about a second of speech)
MAX_INTERVAL = 1024
BASELINE_STEPS = 8  # the current count's most recent steps the trial is compared with


def adopt(threads: int) -> None:
    """Run the calling thread's next torch ops on `threads` threads (torch's count is per thread)."""
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def tuning_enabled() -> bool:
    return os.environ.get("AGENT_TTS_THREAD_TUNING", "on").strip().lower() in ("on", "1", "true", "yes")


class IntraOpThreads:
    """Chooses between all threads and one for a scheduler's AR steps by timing them (see the module)."""

    def __init__(self, full: int | None = None, enabled: bool = True, *, first_trial: int = FIRST_TRIAL,
                 first_interval: int = FIRST_INTERVAL, max_interval: int = MAX_INTERVAL) -> None:
        self.full = full if full is not None else torch.get_num_threads()
        self.enabled = enabled and self.full > 1
        self.current = self.full  # the choice: what the streams' decodes adopt
        self.first_interval = first_interval
        self.max_interval = max_interval
        self.interval = first_trial  # then doubled by each trial lost, up to max_interval
        self.since_trial = 0
        self._trial: list[tuple[float, int]] = []  # (seconds, rows) of the trial's steps so far
        self._recent: deque[tuple[float, int]] = deque(maxlen=4 * BASELINE_STEPS)  # on the current count
        self.trials = 0
        self.switches: list[tuple[int, int]] = []  # (from, to), in order

    @property
    def other(self) -> int:
        return 1 if self.current == self.full else self.full

    @property
    def trying(self) -> bool:
        return bool(self._trial) or (self.enabled and self.since_trial >= self.interval)

    def as_dict(self) -> dict:
        """The choice so far, for a benchmark's record: whether tuning is on, the count in use, trials, switches."""
        return {"enabled": self.enabled, "full": self.full, "current": self.current, "trials": self.trials,
                "switches": [list(switch) for switch in self.switches]}

    def apply(self, threads: int | None = None) -> None:
        """The calling thread's next torch ops run on `threads` (by default the choice); nothing when disabled."""
        if self.enabled:
            adopt(self.current if threads is None else threads)

    def for_next_step(self) -> int:
        """The thread count the next step runs on: the choice, or the other count during a trial."""
        return self.other if self.trying else self.current

    def step_took(self, seconds: float, rows: int, threads: int) -> None:
        """A step of `rows` rows ran on `threads` threads in `seconds`."""
        if not self.enabled:
            return
        if threads == self.current:
            self._recent.append((seconds, rows))
            self.since_trial += 1
            return
        self._trial.append((seconds, rows))
        baseline = [taken for taken, count in list(self._recent)[::-1] if count == rows][:BASELINE_STEPS]
        if len(baseline) < 3:  # the batch changed shape: nothing to compare with yet, try again later
            self._end_trial(won=None)
            return
        expected = statistics.median(baseline)
        trial = statistics.median(taken for taken, _ in self._trial)
        if trial > 2 * expected:
            self._end_trial(won=False)
        elif len(self._trial) >= TRIAL_STEPS:
            self._end_trial(won=trial <= MARGIN * expected, trial_s=trial, expected_s=expected)

    def _end_trial(self, won: bool | None, trial_s: float = 0.0, expected_s: float = 0.0) -> None:
        self._trial = []
        self.since_trial = 0
        if won is None:
            return
        self.trials += 1
        if not won:
            self.interval = min(2 * self.interval, self.max_interval)
            return
        self.switches.append((self.current, self.other))
        logger.info("AR steps on %d thread(s) instead of %d: %.1f ms a step against %.1f (%s)", self.other,
                    self.current, 1000 * trial_s, 1000 * expected_s,
                    "the CPU is shared" if self.other == 1 else "the CPU is free again")
        self.current = self.other
        self.interval = self.first_interval
        self._recent.clear()

"""Continuous batching: one scheduler per loaded GPT runs the AR steps of every stream's current unit as one batch.

A stream's worker thread submits each unit (`ARScheduler.submit`) and reads
its tokens as they come (`ScheduledUnit.tokens()`), doing everything else
(frontend, BERT, SoVITS decoding, delivery) itself. The scheduler's thread
loops: drop the units that ended or were cancelled, prefill the newcomers
waiting (in order, as many as `prefill_positions` cache positions hold, at
least one) in one pass, then run one batched step for every unit that has
room for more tokens. So a newcomer waits for at most one step and one
prefill pass plus the passes of those queued before it, never behind other
streams' long units. A burst of newcomers is prefilled together: the pass
costs less than its prefills one by one (eight on the AMX Xeon: 0.73-0.85 of
the time in bf16, 0.90-1.06 in fp32), and the burst's last stream hears its
first token much sooner; the running rows wait for that one pass instead of
one prefill between each of their steps.

Each unit keeps its own sampling options, generator and stopping rules (the
`BatchDecoder` row), and its own backpressure: a unit whose consumer has not
taken `max_ahead` tokens yet is left out of the step until it does, which
pauses that stream only. While a unit's worker decodes a chunk
(`ScheduledUnit.decoding`) and no other unit is in the batch or waiting, the
scheduler waits instead of stepping it: the step and the decode would share
the same cores (each runs on all of them), and one after the other they
finish sooner, the decode first; so the decode also begins only once the
step in flight has ended. A thread-per-stream decode never overlaps
the two either; with other units in the batch, the step runs for them all.
A cancel (the unit's `CancelFlag`) is checked under the flag's lock
immediately before every step and prefill, so no step of a cancelled unit
starts once `set()` has returned.

The scheduler's `Admission` bounds the streams of its GPT (see
`admission.py`). Voices that share a GPT module share its scheduler
(`scheduler_for`, which keeps it on the GPT, so both are freed once no voice
holds the GPT), so their streams share the batch and its limits, each row
with its own reference prompt.

On the CPU the scheduler also chooses, by timing its steps, whether they and
the streams' decodes run on all of torch's threads or on one, which is far
faster while another process keeps a core busy (`intraop_threads.py`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from agent_tts.engine.ar_batch import ARRequest, ARRow, BatchDecoder, EagerStep, StepRunner
from agent_tts.engine.admission import Admission
from agent_tts.engine.exit_guard import stop_at_exit
from agent_tts.engine.intraop_threads import IntraOpThreads, tuning_enabled
from agent_tts.engine.openmp_pool import release_idle_workers
from agent_tts.errors import AgentTTSError
from agent_tts.models.t2s import Text2SemanticModel

logger = logging.getLogger(__name__)

IDLE_EXIT_SECONDS = 2.0  # the scheduler thread ends after this long with nothing to do (and restarts on demand)
PREFILL_POSITIONS = 2048  # cache positions one prefill pass may fill (several newcomers' prefills together)


@dataclass(eq=False)
class ScheduledUnit:
    """One unit's tokens as the scheduler makes them; its worker thread reads them with `tokens()`."""

    request: ARRequest
    max_ahead: int
    scheduler: "ARScheduler"
    submitted: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None
    row: ARRow | None = None
    buffer: deque[tuple[int, np.ndarray | None]] = field(default_factory=deque)  # tokens not yet taken
    # With `align_text`: each token's attention over the unit's phones, for the tokens taken so far.
    attention: list[np.ndarray | None] = field(default_factory=list)
    done: bool = False
    closed: bool = False
    holding: bool = False  # the worker is decoding a chunk (`decoding`)
    error: BaseException | None = None

    @property
    def cancelled(self) -> bool:
        return self.request.cancel is not None and self.request.cancel.is_set()

    @property
    def wants_step(self) -> bool:
        return (self.row is not None and not self.done and not self.closed and not self.cancelled
                and len(self.buffer) < self.max_ahead)

    def tokens(self) -> Iterator[int]:
        """The unit's tokens in order, blocking until each exists; ends at EOS, the token budget, or a cancel."""
        condition = self.scheduler.condition
        while True:
            if not self.buffer:  # about to wait for the scheduler's step: let it have the CPUs (openmp_pool.py)
                release_idle_workers()
            with condition:
                while not self.buffer and not self.done and not self.cancelled and self.error is None:
                    condition.wait()
                if self.error is not None:
                    raise self.error
                if self.cancelled:
                    return
                ready = list(self.buffer)
                self.buffer.clear()
                if not ready and self.done:
                    return
                condition.notify_all()  # room for more: the scheduler may step this unit again
            for token, attention in ready:
                self.attention.append(attention)
                yield token

    @contextmanager
    def decoding(self) -> Iterator[None]:
        """Around the worker's decode of a chunk: a unit alone in the scheduler is not stepped meanwhile, and its
        decode begins once the step in flight has ended (the two would share the cores: at real size on a 2-core
        CPU such a step took 31-39 ms instead of 13, and the decode was slowed too)."""
        scheduler = self.scheduler
        with scheduler.condition:
            self.holding = True
            while scheduler.in_flight and scheduler.alone(self):
                scheduler.condition.wait()
        scheduler.threads.apply()
        try:
            yield
        finally:
            with self.scheduler.condition:
                self.holding = False
                self.scheduler.condition.notify_all()

    def close(self) -> None:
        """The worker is done with this unit (it ended, or a guard stopped it): the scheduler drops its row."""
        with self.scheduler.condition:
            self.closed = True
            self.scheduler.condition.notify_all()


class ARScheduler:
    """Runs the AR steps of every submitted unit of one GPT as one batch, on its own thread (see the module)."""

    def __init__(self, gpt: Text2SemanticModel, runner: StepRunner | None = None,
                 admission: Admission | None = None, prefill_positions: int = PREFILL_POSITIONS,
                 threads: IntraOpThreads | None = None) -> None:
        self.gpt = gpt
        self.prefill_positions = prefill_positions
        self.decoder = BatchDecoder(gpt, runner)
        # Only torch's own CPU steps have threads to choose; ONNX Runtime's and CUDA's do not.
        torch_on_cpu = isinstance(self.decoder.runner, EagerStep) and gpt.device.type == "cpu"
        self.threads = threads or IntraOpThreads(enabled=torch_on_cpu and tuning_enabled())
        self.admission = admission or Admission()
        self.condition = threading.Condition()
        self._waiting: deque[ScheduledUnit] = deque()
        self._running: list[ScheduledUnit] = []
        self._thread: threading.Thread | None = None
        self.in_flight = False  # a prefill or step is being computed (under the condition)
        self._exiting = False  # the interpreter is exiting: the thread ends after the step in flight
        self.batch_sizes: deque[int] = deque(maxlen=10_000)  # rows per batched step, most recent last
        self.step_seconds: deque[float] = deque(maxlen=10_000)  # and how long each took (benchmarks)
        self.step_threads: deque[int] = deque(maxlen=10_000)  # and on how many threads
        self.prefill_seconds: deque[float] = deque(maxlen=10_000)  # each prefill pass's time, most recent last
        self.prefill_sizes: deque[int] = deque(maxlen=10_000)  # and how many units it prefilled
        release_idle_workers()  # allocating the cache may have given the constructing thread OpenMP workers

    def alone(self, unit: ScheduledUnit) -> bool:
        """Under the condition: `unit` is the only unit running and none waits."""
        return len(self._running) == 1 and self._running[0] is unit and not self._waiting

    @property
    def active_units(self) -> int:
        with self.condition:
            return len(self._running) + len(self._waiting)

    def submit(self, request: ARRequest, max_ahead: int) -> ScheduledUnit:
        """Queue `request` for decoding; its tokens come through the returned unit."""
        unit = ScheduledUnit(request, max(1, max_ahead), self)
        release_idle_workers()  # the caller hands its work on; its idle OpenMP workers would slow the steps
        if request.cancel is not None:
            request.cancel.add_listener(self._wake)
        with self.condition:
            if self._exiting:
                raise AgentTTSError("the process is exiting: no new unit is decoded")
            self._waiting.append(unit)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="agent-tts-scheduler", daemon=True)
                stop_at_exit(self._thread, self._stop_for_exit)
                self._thread.start()
            self.condition.notify_all()
        return unit

    def _wake(self) -> None:
        with self.condition:
            self.condition.notify_all()

    def _stop_for_exit(self) -> None:
        """At interpreter exit (exit_guard.py): end the thread after the step in flight; no unit waits on."""
        with self.condition:
            self._exiting = True
            self.condition.notify_all()

    # -- the scheduler thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self.condition:
                if self._exiting:
                    self._abandon_all()
                    return
                ended = [unit for unit in self._running if unit.done or unit.closed or unit.cancelled]
                for unit in ended:
                    self._running.remove(unit)
                newcomers = self._take_newcomers()
                alone = len(self._running) == 1 and not newcomers
                stepping = [unit for unit in self._running if unit.wants_step and not (alone and unit.holding)]
                if not ended and not newcomers and not stepping:
                    # Idle: give back this thread's OpenMP workers, which would slow the threads computing
                    # meanwhile (the streams' SoVITS decoding; openmp_pool.py).
                    release_idle_workers()
                    if self._running:  # every unit waits for its consumer: wait for room, a close or a cancel
                        self.condition.wait()
                    elif not self.condition.wait(IDLE_EXIT_SECONDS) and not self._waiting:
                        self._thread = None
                        return
                    continue
                self.in_flight = True
            try:
                for unit in ended:
                    self._release_row(unit)
                if newcomers:
                    self._prefill(newcomers)
                self._step([unit for unit in stepping if unit.request.may_begin("ar_step")])
            except Exception as exc:  # noqa: BLE001 - every unit in flight gets the error; the batch starts over
                logger.exception("the AR scheduler failed")
                self._fail_all(exc, newcomers)
            finally:
                with self.condition:
                    self.in_flight = False
                    self.condition.notify_all()

    def _take_newcomers(self) -> list[ScheduledUnit]:
        """Under the condition: the waiting units, in order, whose prefills fit in one pass (at least one); those
        closed or cancelled while they waited end here."""
        taken: list[ScheduledUnit] = []
        positions = 0
        while self._waiting:
            if self._waiting[0].closed or self._waiting[0].cancelled:
                self._finish(self._waiting.popleft())
                continue
            length = self._waiting[0].request.prefill_length
            if taken and positions + length > self.prefill_positions:
                break
            taken.append(self._waiting.popleft())
            positions += length
        return taken

    def _prefill(self, units: list[ScheduledUnit]) -> None:
        self.threads.apply()
        started = time.perf_counter()
        rows = self.decoder.add_many([unit.request for unit in units])
        self.prefill_seconds.append(time.perf_counter() - started)
        self.prefill_sizes.append(len(units))
        with self.condition:
            for unit, row in zip(units, rows):
                if row is None:  # cancelled before its prefill
                    self._finish(unit)
                    continue
                unit.row = row
                unit.first_token_at = time.perf_counter()
                self._running.append(unit)
                self._deliver(unit)

    def _step(self, units: list[ScheduledUnit]) -> None:
        if not units:
            return
        threads = self.threads.for_next_step()
        self.threads.apply(threads)
        started = time.perf_counter()
        self.decoder.step([unit.row for unit in units])
        seconds = time.perf_counter() - started
        self.threads.step_took(seconds, len(units), threads)
        self.step_seconds.append(seconds)
        self.step_threads.append(torch.get_num_threads())  # what this thread's step ran on
        self.batch_sizes.append(len(units))
        with self.condition:
            for unit in units:
                self._deliver(unit)

    def _deliver(self, unit: ScheduledUnit) -> None:
        """Hand the row's newest token to the unit (under the condition)."""
        row = unit.row
        if len(row.tokens) > row.steps:
            unit.buffer.append((row.tokens[-1], row.attention[-1] if row.request.align_text else None))
        if row.finished:
            unit.done = True
        self.condition.notify_all()

    def _release_row(self, unit: ScheduledUnit) -> None:
        if unit.row is not None:
            self.decoder.remove(unit.row)
            unit.row = None
        with self.condition:
            self._finish(unit)

    def _finish(self, unit: ScheduledUnit) -> None:
        unit.done = True
        if unit.request.cancel is not None:
            unit.request.cancel.remove_listener(self._wake)
        self.condition.notify_all()

    def _fail_all(self, error: Exception, newcomers: list[ScheduledUnit]) -> None:
        wrapped = AgentTTSError(f"AR decoding failed: {type(error).__name__}: {error}")
        wrapped.__cause__ = error
        with self.condition:
            units = self._running + [unit for unit in newcomers if unit not in self._running]
            self._running = []
        for unit in units:
            if unit.row is not None:
                try:
                    self.decoder.remove(unit.row)
                except Exception:  # noqa: BLE001 - the decoder starts over below
                    pass
                unit.row = None
        self.decoder = BatchDecoder(self.gpt, self.decoder.runner)
        with self.condition:
            for unit in units:
                unit.error = wrapped
                self._finish(unit)

    def _abandon_all(self) -> None:
        """Under the condition, at exit: every unit ends with an error, without touching the decoder (torch)."""
        error = AgentTTSError("the process is exiting")
        for unit in self._running + list(self._waiting):
            unit.error = error
            self._finish(unit)
        self._running = []
        self._waiting.clear()
        self._thread = None


_SCHEDULER_CREATION_LOCK = threading.Lock()
_SCHEDULER_ATTRIBUTE = "_agent_tts_scheduler"


def scheduler_for(gpt: Text2SemanticModel, make: Callable[[], ARScheduler] | None = None) -> ARScheduler:
    """The one scheduler of this GPT module (made on first use), shared by every voice and stream using it.

    It is kept on the GPT itself, so the two are freed together once no voice holds the GPT and the scheduler's
    thread has ended. (A registry keyed weakly by the GPT kept every GPT loaded for good, since its scheduler
    refers to it: a dropped real-size fp32 voice left 965 MiB resident against 635 with this.)"""
    with _SCHEDULER_CREATION_LOCK:
        scheduler = getattr(gpt, _SCHEDULER_ATTRIBUTE, None)
        if scheduler is None:
            scheduler = make() if make is not None else ARScheduler(gpt)
            object.__setattr__(gpt, _SCHEDULER_ATTRIBUTE, scheduler)
        return scheduler

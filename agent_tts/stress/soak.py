"""Long session: many units through one engine, watching memory, threads and open files for growth.

Units go through one engine in streams of `units_per_stream` sentences
each. After a warm-up (by default the first tenth of the units), resident
memory is sampled after every stream, each time after a garbage collection
and with the C heap's free pages handed back (`holdings(settle=True)`), so
that what is sampled is live memory rather than what the allocator happens
to keep; the report gives the least-squares slope (MiB per
thousand units), the growth from the end of the warm-up to the end, and the
thread and file-descriptor counts before and after. The run is `ok` when
memory grew by at most `max_growth_mib`, no thread or open file was added and
no stream worker is left.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from agent_tts.engine.unit_stream import UnitStreamEngine
from agent_tts.stress.resources import Holdings, holdings

MAX_GROWTH_MIB = 20.0  # the default bound on resident memory's growth after the warm-up

SENTENCES = ("Your order has shipped.", "您的订单已经发货了。", "It will arrive on Friday.", "预计周五送达。",
             "Thanks for your patience.", "感谢您的耐心等待。", "Is there anything else?", "还有其他问题吗？")


@dataclass
class SoakReport:
    units: int
    max_growth_mib: float = MAX_GROWTH_MIB
    streams: int = 0
    chunks: int = 0
    audio_s: float = 0.0
    wall_s: float = 0.0
    samples: list[tuple[int, float]] = field(default_factory=list)  # (units done, RSS MiB) after warm-up
    before: Holdings | None = None
    after: Holdings | None = None

    @property
    def slope_mib_per_1000_units(self) -> float:
        if len(self.samples) < 2:
            return 0.0
        xs, ys = zip(*self.samples)
        mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
        spread = sum((x - mean_x) ** 2 for x in xs)
        return 1000 * sum((x - mean_x) * (y - mean_y) for x, y in self.samples) / spread if spread else 0.0

    @property
    def growth_mib(self) -> float:
        return self.samples[-1][1] - self.samples[0][1] if self.samples else 0.0

    @property
    def ok(self) -> bool:
        if self.before is None or self.after is None:
            return False
        return (self.growth_mib <= self.max_growth_mib and self.after.threads <= self.before.threads
                and self.after.stream_workers == 0 and self.after.open_files <= self.before.open_files)

    def summary(self) -> dict:
        return {"ok": self.ok, "units": self.units, "streams": self.streams, "chunks": self.chunks,
                "audio_s": round(self.audio_s, 1), "wall_s": round(self.wall_s, 1),
                "rss_after_warm_up_mib": round(self.samples[0][1], 1) if self.samples else None,
                "rss_end_mib": round(self.samples[-1][1], 1) if self.samples else None,
                "growth_mib": round(self.growth_mib, 1), "max_growth_mib": self.max_growth_mib,
                "slope_mib_per_1000_units": round(self.slope_mib_per_1000_units, 2),
                "threads": [self.before.threads, self.after.threads] if self.before and self.after else None,
                "open_files": [self.before.open_files, self.after.open_files] if self.before and self.after else None}


async def long_session(engine: UnitStreamEngine, units: int, units_per_stream: int = 20, seed: int = 0,
                       options: dict | None = None, warm_up_units: int | None = None,
                       max_growth_mib: float = MAX_GROWTH_MIB, progress=None) -> SoakReport:
    """Speak `units` sentences through `engine`; see the module docstring for what is measured.

    Memory is measured from `warm_up_units` on (default: a tenth of the units, at least one stream): the
    allocator's arenas and the engine's caches fill during the first few hundred units.
    """
    rng = random.Random(seed)
    report = SoakReport(units, max_growth_mib)
    warm_up = warm_up_units if warm_up_units is not None else max(units_per_stream, units // 10)
    done = 0
    started = time.perf_counter()
    while done < units:
        count = min(units_per_stream, units - done)
        text = " ".join(rng.choice(SENTENCES) for _ in range(count))
        async for chunk in engine.stream(text, **{**(options or {}), "seed": rng.randrange(1 << 30)}):
            report.chunks += 1
            report.audio_s += chunk.seconds
        done += count
        report.streams += 1
        if report.before is None and done >= warm_up:
            report.before = holdings(settle=True)
        if report.before is not None:
            report.samples.append((done, holdings(settle=True).rss_mib))
        if progress is not None:
            progress(done, units)
    report.after = holdings(settle=True)
    report.wall_s = time.perf_counter() - started
    return report

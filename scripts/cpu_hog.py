#!/usr/bin/env python3
"""Keep N CPU cores busy for SECONDS, then stop: a busy machine for the real-time tests.

    python scripts/cpu_hog.py N SECONDS

Starts N processes at normal priority, each spinning on arithmetic until the
deadline; they stop by themselves (and with this process, on Ctrl-C or
SIGTERM). Prints one line when it starts and one when it ends.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import sys
import time


def spin(deadline: float) -> None:
    value = 0
    while time.monotonic() < deadline:
        for step in range(100_000):
            value = (value * 31 + step) & 0xFFFFFFFF


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="N busy processes for SECONDS, at normal priority")
    parser.add_argument("processes", type=int, metavar="N")
    parser.add_argument("seconds", type=float, metavar="SECONDS")
    args = parser.parse_args(argv)
    if args.processes < 1 or args.seconds <= 0:
        parser.error("N must be at least 1 and SECONDS positive")
    deadline = time.monotonic() + args.seconds
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=spin, args=(deadline,), daemon=True) for _ in range(args.processes)]
    for worker in workers:
        worker.start()

    def stop(signum, frame) -> None:
        for worker in workers:
            worker.terminate()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"cpu_hog: {args.processes} busy process(es) for {args.seconds:g} s (pid {os.getpid()})", flush=True)
    for worker in workers:
        worker.join()
    print("cpu_hog: done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The rates that bound this engine on a machine: dense fp32 and bf16 arithmetic, and memory read bandwidth.

Measured, not looked up: the best of several matrix products (the shapes the
GPT, BERT and a large square one; in fp32, and in bf16, which AMX and
AVX512-BF16 run natively and other CPUs emulate) and the best of several full reads of a
buffer much larger than the caches, on the threads torch uses. Both are the
best seen, so times computed from them are lower bounds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

# (rows, inner, columns): a GPT prefill's feed-forward, BERT's feed-forward on a clause, a large square product.
GEMM_SHAPES = ((214, 512, 2048), (48, 1024, 4096), (2048, 2048, 2048))
READ_BYTES = 512 * 2**20


@dataclass(frozen=True)
class MachineRates:
    """Best measured fp32 (and bf16) matrix-product rate and memory read bandwidth, on `threads` threads."""

    gemm_gflops: float
    read_gb_per_s: float
    threads: int
    bf16_gemm_gflops: float = 0.0  # 0: not measured

    def gemm_rate(self, bf16: bool) -> float:
        """The matrix-product rate of bf16 (where measured) or fp32 arithmetic."""
        return self.bf16_gemm_gflops if bf16 and self.bf16_gemm_gflops else self.gemm_gflops


def best_seconds(work: Callable[[], object], repeats: int = 5) -> float:
    """The least wall time of `repeats` calls of `work`, after one untimed call (first calls build kernels)."""
    work()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def measure_gemm_gflops(shapes: tuple[tuple[int, int, int], ...] = GEMM_SHAPES, repeats: int = 5,
                        dtype: torch.dtype = torch.float32) -> float:
    """The best matrix-product rate in `dtype` over `shapes`, in GFLOP/s (2 FLOPs per multiply-add)."""
    best = 0.0
    for rows, inner, columns in shapes:
        a, b = torch.randn(rows, inner, dtype=dtype), torch.randn(inner, columns, dtype=dtype)
        seconds = best_seconds(lambda: torch.mm(a, b), repeats)
        best = max(best, 2 * rows * inner * columns / seconds / 1e9)
    return best


def measure_read_bandwidth(nbytes: int = READ_BYTES, repeats: int = 5) -> float:
    """The best rate of summing a float32 buffer of `nbytes` (read once per pass), in GB/s."""
    buffer = torch.ones(nbytes // 4)
    seconds = best_seconds(lambda: buffer.sum(), repeats)
    return buffer.numel() * 4 / seconds / 1e9


def measure_machine_rates(repeats: int = 20, read_bytes: int = READ_BYTES) -> MachineRates:
    with torch.inference_mode():
        return MachineRates(measure_gemm_gflops(repeats=repeats), measure_read_bandwidth(read_bytes, repeats),
                            torch.get_num_threads(), measure_gemm_gflops(repeats=repeats, dtype=torch.bfloat16))

"""What this CPU can multiply fast: its model name and the ISA features precision depends on.

bf16 matrix products are native on AMX (Sapphire Rapids and later Xeons) and
AVX512-BF16; elsewhere torch emulates them in fp32 and bf16 runs correctly but
slower. The flags come from `/proc/cpuinfo` (Linux); elsewhere torch's own
kernel level is all that is known. `precision="auto"` and every benchmark read
them from here.
"""

from __future__ import annotations

import functools
import platform
from dataclasses import dataclass
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class CPUFeatures:
    """A CPU's model name and ISA flags (as `/proc/cpuinfo` spells them)."""

    model: str
    flags: frozenset[str]

    @property
    def avx2(self) -> bool:
        return "avx2" in self.flags

    @property
    def avx512(self) -> bool:
        return "avx512f" in self.flags

    @property
    def avx512_bf16(self) -> bool:
        return "avx512_bf16" in self.flags

    @property
    def amx(self) -> bool:
        """AMX tiles with bf16 (and usually int8) matrix multiply."""
        return "amx_tile" in self.flags and "amx_bf16" in self.flags

    @property
    def native_bf16(self) -> bool:
        """Whether bf16 matrix products run in hardware (AMX or AVX512-BF16), not emulated."""
        return self.amx or self.avx512_bf16

    def summary(self) -> str:
        """`MODEL: AVX2 yes, AVX-512 yes, AVX512-BF16 yes, AMX yes`."""
        def mark(value: bool) -> str:
            return "yes" if value else "no"

        return (f"{self.model}: AVX2 {mark(self.avx2)}, AVX-512 {mark(self.avx512)}, "
                f"AVX512-BF16 {mark(self.avx512_bf16)}, AMX {mark(self.amx)}")

    def as_dict(self) -> dict:
        return {"model": self.model, "avx2": self.avx2, "avx512": self.avx512, "avx512_bf16": self.avx512_bf16,
                "amx": self.amx, "native_bf16": self.native_bf16}


def parse_cpuinfo(text: str) -> CPUFeatures:
    """The first processor's model name and flags from the text of `/proc/cpuinfo`."""
    model, flags = "", frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
    return CPUFeatures(model or platform.processor() or platform.machine(), flags)


def _flags_from_torch() -> frozenset[str]:
    import torch

    capability = torch.backends.cpu.get_cpu_capability().lower()  # "default", "avx2", "avx512", ...
    return frozenset({"avx2"} if capability == "avx2" else {"avx2", "avx512f"} if capability.startswith("avx512")
                     else set())


@functools.lru_cache(maxsize=1)
def cpu_features() -> CPUFeatures:
    """This machine's CPU (read once)."""
    try:
        features = parse_cpuinfo(CPUINFO.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        features = CPUFeatures(platform.processor() or platform.machine(), frozenset())
    if not features.flags:
        features = CPUFeatures(features.model, _flags_from_torch())
    return features

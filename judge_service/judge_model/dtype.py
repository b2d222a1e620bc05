"""Which dtype the embedded judge runs in: bfloat16 only where the CPU computes it natively.

Without `avx512_bf16` or `amx_bf16` the CPU emulates bfloat16 arithmetic, and vLLM's CPU build runs
markedly slower than in float32 (measured in docs/benchmarks.md), so `auto` picks float32 there.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

DtypeSetting = Literal["auto", "float32", "bfloat16", "float16"]
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class DtypeChoice:
    """The dtype vLLM is started with and why."""

    dtype: str
    reason: str


@lru_cache(maxsize=4)
def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    """The CPU feature flags of the first processor in /proc/cpuinfo (empty where it is missing)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def choose_dtype(setting: DtypeSetting = "auto", flags: frozenset[str] | set[str] | None = None) -> DtypeChoice:
    """Resolve `JUDGE_MODEL_DTYPE`: an explicit value wins, `auto` asks the CPU."""
    if setting != "auto":
        return DtypeChoice(setting, f"JUDGE_MODEL_DTYPE={setting}")
    flags = cpu_flags() if flags is None else flags
    native = [f for f in NATIVE_BF16_FLAGS if f in flags]
    if native:
        return DtypeChoice("bfloat16", f"auto: the CPU computes bfloat16 natively ({', '.join(native)})")
    return DtypeChoice(
        "float32", f"auto: the CPU has no native bfloat16 ({' or '.join(NATIVE_BF16_FLAGS)} missing), so float32"
    )

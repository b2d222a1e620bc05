"""CPU-heavy report work (bootstrap CIs, Bradley–Terry fits, pairwise agreement) off the event loop.

A report's statistics run in a worker thread (NumPy releases the GIL in its loops), at most
`threads` at once per process, under `JUDGE_REPORT_TIMEOUT_S`; past it the request is answered 503
and the thread is abandoned (it finishes its bounded work and is dropped). The limits that bound
that work (slices, experiments, annotators) are checked before it starts.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from judge_service.reports.errors import ReportError

T = TypeVar("T")


@dataclass
class ReportLimits:
    """Process-wide report limits (set from the settings by the API at start)."""

    timeout_s: float = 60.0
    max_slices: int = 200
    max_experiments: int = 100
    max_annotators: int = 50
    threads: int = 2


LIMITS = ReportLimits()
_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = weakref.WeakKeyDictionary()


def configure(timeout_s: float, max_slices: int, max_experiments: int, max_annotators: int) -> None:
    """Apply the settings' report limits."""
    LIMITS.timeout_s, LIMITS.max_slices, LIMITS.max_experiments = timeout_s, max_slices, max_experiments
    LIMITS.max_annotators = max_annotators


def _limiter() -> anyio.CapacityLimiter:
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = _limiters[loop] = anyio.CapacityLimiter(LIMITS.threads)
    return limiter


async def run_cpu(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` in a worker thread, within the report time limit (503 past it)."""
    try:
        with anyio.fail_after(LIMITS.timeout_s):
            return await anyio.to_thread.run_sync(
                functools.partial(fn, *args, **kwargs), limiter=_limiter(), abandon_on_cancel=True
            )
    except TimeoutError:
        raise ReportError(
            503,
            f"the report took longer than {LIMITS.timeout_s:g} s (JUDGE_REPORT_TIMEOUT_S); narrow it "
            "(filters, fewer experiments) or try again when the service is less busy",
            ["query"],
        ) from None

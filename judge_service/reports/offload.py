"""CPU-heavy report work (bootstrap CIs, Bradley–Terry fits, pairwise agreement) off the event loop.

A report's statistics run in a small pool of worker processes, not threads: the pairwise agreement
and the Bradley–Terry fits are mostly Python code holding the GIL, and a thread running them made
every other request (`/healthz` included) wait for the GIL, 100-300 ms each on two cores. A process
also makes the time limit real: past `JUDGE_REPORT_TIMEOUT_S` the request is answered 503 and the
pool's processes are terminated (a thread could only be abandoned, still burning CPU).

The limits that bound the work (slices, experiments, annotators) are checked before it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar

from judge_service.reports.errors import ReportError

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass
class ReportLimits:
    """Process-wide report limits (set from the settings by the API at start)."""

    timeout_s: float = 60.0
    max_slices: int = 200
    max_experiments: int = 100
    max_annotators: int = 50
    processes: int = 2


LIMITS = ReportLimits()
WORKER_NICE = 10
PARENT_CHECK_S = 2.0
_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def configure(timeout_s: float, max_slices: int, max_experiments: int, max_annotators: int) -> None:
    """Apply the settings' report limits."""
    LIMITS.timeout_s, LIMITS.max_slices, LIMITS.max_experiments = timeout_s, max_slices, max_experiments
    LIMITS.max_annotators = max_annotators


def _executor() -> ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            # spawn: forking a process that runs an event loop and threads is unsafe.
            _pool = ProcessPoolExecutor(
                LIMITS.processes, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker
            )
        return _pool


def _init_worker() -> None:
    # The API's event loop must win the CPU over report statistics: on a small machine an un-niced
    # worker at 100% delayed every other request.
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICE)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True, name="parent-watch").start()


def _exit_with_parent(parent: int) -> None:
    # A pool worker idles on its call queue and outlives a parent killed with SIGKILL (an OOM kill, a
    # crashed API): it would hold its memory forever as an orphan. Re-parented means the API is gone.
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(0)


def _discard(pool: ProcessPoolExecutor, terminate: bool) -> None:
    """Drop a pool (the next report starts a fresh one); `terminate` kills work still running."""
    global _pool
    with _pool_lock:
        if _pool is pool:
            _pool = None
    if terminate:
        # ProcessPoolExecutor cannot cancel running work: its processes are ended instead.
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


def prewarm(modules: tuple[str, ...] = ()) -> None:
    """Start the worker processes now, in the background (spawning one costs a second or more),
    importing `modules` there (those whose functions the reports will run) so no report waits for it."""
    pool = _executor()
    for _ in range(LIMITS.processes):
        for module in modules:
            pool.submit(importlib.import_module, module)


def shutdown() -> None:
    """Stop the worker processes (at service shutdown)."""
    if _pool is not None:
        _discard(_pool, terminate=True)


async def run_cpu(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` in a worker process, within the report time limit (503 past it).

    `fn` and its arguments must be picklable (module-level functions, plain data).
    """
    pool = _executor()
    loop = asyncio.get_running_loop()
    try:
        future = loop.run_in_executor(pool, functools.partial(fn, *args, **kwargs))
        return await asyncio.wait_for(future, LIMITS.timeout_s)
    except TimeoutError:
        log.warning("report work %s took over %s s: its worker processes are terminated", fn.__name__, LIMITS.timeout_s)
        _discard(pool, terminate=True)
        raise ReportError(
            503,
            f"the report took longer than {LIMITS.timeout_s:g} s (JUDGE_REPORT_TIMEOUT_S); narrow it "
            "(filters, fewer experiments) or try again when the service is less busy",
            ["query"],
        ) from None
    except BrokenProcessPool:
        _discard(pool, terminate=False)
        raise ReportError(503, "a report worker process died; try again", ["query"]) from None

"""The in-process executor (`JUDGE_EXECUTOR=inprocess`, the embedded default): batches judged inside the API.

Batches wait in this process's memory under a lease it renews; if the process dies, the lease runs
out and the reaper loop of any API process (a second replica, or this one restarted) queues them
again. The batch function is the same one the queue workers run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from sqlalchemy import update

from judge_service.jobs.batch import execute_batch, replay_spool
from judge_service.jobs.closing import wait_closed
from judge_service.jobs.context import JobContext
from judge_service.jobs.reaper import reap
from judge_service.store.models import WorkBatch, utcnow

log = logging.getLogger(__name__)


class InProcessExecutor:
    """Judges batches in this process with `JUDGE_WORKER_BATCHES` batches in flight."""

    def __init__(self) -> None:
        self._ctx: JobContext | None = None
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._known: set[str] = set()
        self._events: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def ctx(self) -> JobContext:
        """The context this executor serves (attached by the composition root)."""
        assert self._ctx is not None, "executor not attached"
        return self._ctx

    def attach(self, ctx: JobContext) -> None:
        """Bind to the process's job context."""
        self._ctx = ctx

    def new_batch_claim(self, now: datetime) -> tuple[str | None, datetime | None]:
        """Batches created here are held by this process from the start, under a renewed lease."""
        return self.ctx.owner, now + timedelta(seconds=self.ctx.settings.lease_s)

    async def enqueue(self, batch_ids: list[str]) -> None:
        """Queue batches in memory (each at most once while it waits)."""
        for batch_id in batch_ids:
            if batch_id not in self._known:
                self._known.add(batch_id)
                self._queue.put_nowait(batch_id)

    def notify_closed(self, run_id: str) -> None:
        """Wake local waiters of a run closed here."""
        event = self._events.get(run_id)
        if event is not None:
            event.set()

    async def wait_run(self, run_id: str) -> None:
        """Return once the run is closed, whichever process closed it."""
        event = self._events.setdefault(run_id, asyncio.Event())
        try:
            await wait_closed(self.ctx, run_id, event, 0.5)
        finally:
            self._events.pop(run_id, None)

    async def start(self) -> None:
        """Start the batch workers, the lease keeper and the reaper loop (which also replays the spool)."""
        for index in range(self.ctx.settings.worker_batches):
            self._tasks.append(asyncio.create_task(self._work(), name=f"batch-worker-{index}"))
        self._tasks.append(asyncio.create_task(self._keep_leases(), name="lease-keeper"))
        self._tasks.append(asyncio.create_task(self._reap_loop(), name="reaper"))

    async def _work(self) -> None:
        while True:
            batch_id = await self._queue.get()
            self._known.discard(batch_id)
            try:
                await execute_batch(self.ctx, batch_id)
            except asyncio.CancelledError:
                raise
            except Exception:  # the reaper queues the batch again once its lease runs out
                log.exception("batch %s failed", batch_id)

    async def _keep_leases(self) -> None:
        """Renew the leases of batches waiting in this process's memory."""
        ctx = self.ctx
        while True:
            await asyncio.sleep(ctx.settings.lease_s / 3)
            try:
                async with ctx.sessions() as session, session.begin():
                    await session.execute(
                        update(WorkBatch)
                        .where(WorkBatch.owner == ctx.owner, WorkBatch.status == "queued")
                        .values(lease_until=utcnow() + timedelta(seconds=ctx.settings.lease_s))
                        .execution_options(synchronize_session=False)
                    )
            except Exception as exc:  # noqa: BLE001 - next time; an expired lease only means a re-queue
                log.warning("renewing queued batch leases failed: %r", exc)

    async def _reap_loop(self) -> None:
        ctx = self.ctx
        loop = asyncio.get_running_loop()
        next_replay = 0.0
        while True:
            try:
                if loop.time() >= next_replay:
                    next_replay = loop.time() + ctx.settings.spool_replay_s
                    await replay_spool(ctx)
                reaped = await reap(ctx, queue=False)
                if reaped.requeued or reaped.orphans or reaped.closed:
                    log.info("reaper: %s", reaped)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a lost database: the next pass tries again
                log.warning("reaper pass failed: %r", exc)
            await asyncio.sleep(ctx.settings.reaper_interval_s)

    async def shutdown(self) -> None:
        """Stop judging: in-flight batches hand their work back, waiting ones are left to the reaper at once."""
        ctx = self.ctx
        ctx.stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        with contextlib.suppress(Exception):
            async with ctx.sessions() as session, session.begin():
                # An expired lease: the next reaper pass (here after a restart, or on a peer) takes them.
                await session.execute(
                    update(WorkBatch)
                    .where(WorkBatch.owner == ctx.owner, WorkBatch.status == "queued")
                    .values(lease_until=utcnow() - timedelta(seconds=1))
                    .execution_options(synchronize_session=False)
                )

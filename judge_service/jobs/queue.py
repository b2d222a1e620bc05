"""The queue executor (`JUDGE_EXECUTOR=queue`): work batches as procrastinate jobs on the service's PostgreSQL.

API processes store runs and defer one job per batch; `judge-service worker` processes (any
number, anywhere) run them. Periodic tasks, deduplicated across workers by procrastinate, run the
reaper and evaluate the stored re-judge schedules. Each batch job carries the batch id as its
queueing lock, so a batch never waits in the queue twice, and the reaper can tell a batch whose
job is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

import procrastinate
from procrastinate import exceptions as queue_errors
from procrastinate.jobs import Job, Status
from sqlalchemy.engine import make_url

from judge_service.config import Settings
from judge_service.jobs.batch import execute_batch, replay_spool
from judge_service.jobs.closing import wait_closed
from judge_service.jobs.context import JobContext
from judge_service.jobs.reaper import reap
from judge_service.jobs.scheduler import due_firings, fire

log = logging.getLogger(__name__)
BATCH_TASK = "judge_batch"
CONTROL_SUFFIX = "-control"


def queue_conninfo(database_url: str) -> str:
    """The psycopg connection string for the service's PostgreSQL URL (any SQLAlchemy driver)."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def _every(seconds: float) -> str:
    """A six-field cron line (seconds last) firing every `seconds` (at least 1, at most 60)."""
    step = max(1, min(60, round(seconds)))
    return f"* * * * * */{step}"


class QueueExecutor:
    """Defers batches as jobs; `run_workers` executes them (the `judge-service worker` command)."""

    def __init__(self, settings: Settings, pool_size: int = 4) -> None:
        self.settings = settings
        self.queue = settings.queue_name
        self.control = settings.queue_name + CONTROL_SUFFIX
        connector = procrastinate.PsycopgConnector(
            conninfo=queue_conninfo(settings.database_url), min_size=1, max_size=pool_size
        )
        self.app = procrastinate.App(connector=connector)
        self._ctx: JobContext | None = None
        self._register()

    @property
    def ctx(self) -> JobContext:
        """The context this executor serves (attached by the composition root)."""
        assert self._ctx is not None, "executor not attached"
        return self._ctx

    def attach(self, ctx: JobContext) -> None:
        """Bind to the process's job context."""
        self._ctx = ctx

    def _register(self) -> None:
        app = self.app
        # Retried on any exception (a lost database, mostly); a job that gives up for good leaves its
        # batch queued with no job, which the reaper queues again.
        retry = procrastinate.RetryStrategy(max_attempts=20, wait=2, linear_wait=2)

        @app.task(name=BATCH_TASK, queue=self.queue, retry=retry)
        async def judge_batch(batch_id: str) -> str:
            return await execute_batch(self.ctx, batch_id)

        @app.periodic(cron=_every(self.settings.reaper_interval_s), periodic_id="reaper")
        @app.task(name="reap", queue=self.control)
        async def reap_task(timestamp: int) -> None:
            await self._reap()

        @app.periodic(cron=_every(self.settings.schedule_tick_s), periodic_id="schedules")
        @app.task(name="schedule_tick", queue=self.control)
        async def schedule_tick(timestamp: int) -> None:
            now = datetime.fromtimestamp(timestamp, UTC)
            for schedule_id, key in await due_firings(self.ctx, now):
                with contextlib.suppress(queue_errors.AlreadyEnqueued):
                    await fire_schedule.configure(queueing_lock=f"fire:{schedule_id}:{key}").defer_async(
                        schedule_id=schedule_id, fire_key=key
                    )

        @app.task(name="fire_schedule", queue=self.control, retry=retry)
        async def fire_schedule(schedule_id: int, fire_key: str) -> list[str]:
            return await fire(self.ctx, schedule_id, fire_key)

    async def _reap(self) -> None:
        ctx = self.ctx
        # Jobs whose worker stopped beating (kill -9) would stay "doing" forever: end them, so the
        # batch counts as having no job; its expired lease gets it queued again.
        stalled = await self.app.job_manager.get_stalled_jobs(
            task_name=BATCH_TASK, seconds_since_heartbeat=max(ctx.settings.lease_s, 30.0)
        )
        for job in stalled:
            assert job.id is not None
            log.warning("job %s of a stalled worker ended; its batch will be queued again", job.id)
            await self.app.job_manager.finish_job_by_id_async(job.id, Status.FAILED, delete_job=False)
        reaped = await reap(ctx, queue=True)
        if reaped.requeued or reaped.orphans or reaped.closed:
            log.info("reaper: %s", reaped)

    async def open(self) -> None:
        """Open the connection pool to the queue."""
        await self.app.open_async()

    async def close(self) -> None:
        """Close the connection pool."""
        with contextlib.suppress(Exception):
            await self.app.close_async()

    def new_batch_claim(self, now: datetime) -> tuple[str | None, datetime | None]:
        """Batches wait in the job queue, held by no process until a worker takes one."""
        return None, None

    async def enqueue(self, batch_ids: list[str]) -> None:
        """One job per batch, in one round trip; a batch that already waits in the queue is skipped."""
        jobs = [
            Job(queue=self.queue, lock=None, queueing_lock=b, task_name=BATCH_TASK, task_kwargs={"batch_id": b})
            for b in batch_ids
        ]
        for start in range(0, len(jobs), 500):
            chunk = jobs[start : start + 500]
            try:
                await self.app.job_manager.batch_defer_jobs_async(chunk)
            except queue_errors.AlreadyEnqueued:
                for job in chunk:
                    with contextlib.suppress(queue_errors.AlreadyEnqueued):
                        await self.app.job_manager.defer_job_async(job)

    def notify_closed(self, run_id: str) -> None:
        """Runs close in the workers; waiters here poll the database."""

    async def wait_run(self, run_id: str) -> None:
        """Return once a worker (or the reaper) closed the run."""
        await wait_closed(self.ctx, run_id, None, 0.25)

    async def run_workers(self, stop: asyncio.Event) -> None:
        """Judge batches until `stop` is set, then drain: finish in-flight batches for `JUDGE_WORKER_DRAIN_S`,
        then cancel them (they hand their work back and spool paid verdicts).

        procrastinate stops a worker whose heartbeat or listener loses the database; this loop
        starts it again, so a PostgreSQL restart costs a pause, not the worker.
        """
        ctx = self.ctx
        common: dict[str, Any] = {
            "install_signal_handlers": False,
            "shutdown_graceful_timeout": ctx.settings.worker_drain_s,
            "update_heartbeat_interval": max(1.0, min(10.0, ctx.settings.lease_s / 3)),
            "stalled_worker_timeout": max(ctx.settings.lease_s, 30.0),
            "fetch_job_polling_interval": 2.0,
        }
        specs = {
            "batches": {"queues": [self.queue], "concurrency": ctx.settings.worker_batches},
            "control": {"queues": [self.control], "concurrency": 2},
        }

        async def supervise(name: str, options: dict[str, Any]) -> None:
            delay = 1.0
            while not stop.is_set():
                worker = asyncio.create_task(self.app.run_worker_async(name=f"{ctx.owner}:{name}", **common, **options))
                stopper = asyncio.create_task(stop.wait())
                await asyncio.wait({worker, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if stop.is_set() and not worker.done():
                    worker.cancel()  # procrastinate turns this into its graceful stop
                with contextlib.suppress(BaseException):
                    await worker
                stopper.cancel()
                if worker.cancelled() or stop.is_set():
                    break
                problem = worker.exception()
                log.warning("queue worker %s stopped (%r); starting it again in %.0fs", name, problem, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

        async def replay_loop() -> None:
            while not stop.is_set():
                with contextlib.suppress(Exception):
                    await replay_spool(ctx)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), ctx.settings.spool_replay_s)

        await asyncio.gather(replay_loop(), *(supervise(n, o) for n, o in specs.items()))

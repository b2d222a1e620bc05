"""The composition root: every long-lived part of a process is built here, and only here.

The API lifespan, `judge-service worker` and the CLI all call `build_service`; it reads the
settings, opens (and on request migrates) the database, loads and checks the rubrics, connects the
judge client, opens the spool and picks the executor (`JUDGE_EXECUTOR`): `inprocess` judges inside
the API process, `queue` defers batches to procrastinate jobs that workers run.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from judge_service.config import Settings
from judge_service.engine.client import JudgeClient
from judge_service.jobs.context import JobContext
from judge_service.jobs.durable import Spool
from judge_service.jobs.inprocess import InProcessExecutor
from judge_service.jobs.queue import QueueExecutor
from judge_service.jobs.scheduler import RejudgeScheduler
from judge_service.rubrics.registry import RubricRegistry
from judge_service.store import db, repo
from judge_service.store.rubric_store import StoredRubrics

log = logging.getLogger("judge_service")
Role = Literal["api", "worker", "cli"]


class ConfigError(Exception):
    """Settings that cannot work together; the message says what to change."""


@dataclass
class Service:
    """One process's service: settings, database, rubrics, judge client, executor and scheduler."""

    settings: Settings
    role: Role
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    registry: RubricRegistry
    client: JudgeClient
    jobs: JobContext
    executor: InProcessExecutor | QueueExecutor
    scheduler: RejudgeScheduler | None = None

    @property
    def queue(self) -> QueueExecutor | None:
        """The queue executor, when `JUDGE_EXECUTOR=queue`."""
        return self.executor if isinstance(self.executor, QueueExecutor) else None


def check_settings(settings: Settings) -> None:
    """Refuse combinations that cannot work, before anything starts."""
    if settings.executor == "queue" and db.is_sqlite(settings.database_url):
        raise ConfigError(
            "JUDGE_EXECUTOR=queue needs PostgreSQL (the job queue lives in it): set JUDGE_DATABASE_URL to a "
            "postgresql:// URL, or use JUDGE_EXECUTOR=inprocess with SQLite"
        )


async def build_service(settings: Settings, role: Role, *, migrate: bool = True) -> Service:
    """Build every part of a process; `start_service` then starts its background work."""
    check_settings(settings)
    if migrate:
        await db.upgrade_async(settings.database_url)
    engine = db.create_engine(settings.database_url)
    sessions = db.session_factory(engine)
    registry = RubricRegistry.load(settings.rubrics_dir, settings.prompts_dir)
    # Versions added at run time live in SQL; every process reads them on demand (no restart needed).
    registry.source = StoredRubrics(sessions)
    await registry.refresh()
    async with sessions() as session:
        for problem in registry.check_recorded(await repo.recorded_rubric_hashes(session)):
            log.error(problem)
    client = JudgeClient(settings)
    executor: InProcessExecutor | QueueExecutor
    if settings.executor == "queue":
        pool = settings.worker_batches + 6 if role == "worker" else 4
        executor = QueueExecutor(settings, pool_size=pool)
    else:
        executor = InProcessExecutor()
    jobs = JobContext(settings, engine, sessions, registry, client, Spool(settings.spool_dir), executor)
    executor.attach(jobs)
    if isinstance(executor, QueueExecutor):
        await executor.open()
    return Service(settings, role, engine, sessions, registry, client, jobs, executor)


async def start_service(service: Service) -> None:
    """Start what this role runs in the background.

    inprocess: the batch workers, the reaper loop (which replays the spool) and, for the API, the
    APScheduler that fires schedules. queue: nothing here (`run_worker` judges; periodic jobs reap
    and fire schedules).
    """
    if isinstance(service.executor, InProcessExecutor):
        await service.executor.start()
        if service.role == "api" and service.settings.scheduler_enabled:
            service.scheduler = RejudgeScheduler(service.jobs)
            await service.scheduler.start()


async def run_worker(service: Service, stop: asyncio.Event) -> None:
    """`judge-service worker`: judge queued batches until `stop` is set, then drain."""
    queue = service.queue
    if queue is None:
        raise ConfigError("`judge-service worker` needs JUDGE_EXECUTOR=queue (with PostgreSQL)")
    await queue.run_workers(stop)


async def close_service(service: Service) -> None:
    """Stop background work (handing unfinished batches back) and close connections."""
    service.jobs.stopping.set()
    if service.scheduler is not None:
        service.scheduler.shutdown()
    if isinstance(service.executor, InProcessExecutor):
        await service.executor.shutdown()
    else:
        await service.executor.close()
    service.jobs.spool.close()
    await service.client.aclose()
    await service.engine.dispose()

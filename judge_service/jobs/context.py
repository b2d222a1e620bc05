"""What the jobs need from a running process, and the executor interface they enqueue through.

Built only by the composition root (`judge_service/service.py`); the jobs never build parts.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from judge_service.config import Settings
from judge_service.engine.client import JudgeClient
from judge_service.rubrics.registry import RubricRegistry, RubricVersion
from judge_service.store.results import SetKey

if TYPE_CHECKING:
    from judge_service.jobs.durable import Spool


def process_owner() -> str:
    """A name for this process that is unique across machines and restarts."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Executor(Protocol):
    """Runs work batches: in this process (`inprocess`) or through the job queue (`queue`)."""

    def new_batch_claim(self, now: datetime) -> tuple[str | None, datetime | None]:
        """Owner and lease to write on batches created here (None, None: the job queue holds them)."""
        ...

    async def enqueue(self, batch_ids: list[str]) -> None:
        """Hand batches (already stored as queued) to whoever judges them."""
        ...

    def notify_closed(self, run_id: str) -> None:
        """A run closed in this process: wake whoever waits for it here."""
        ...

    async def wait_run(self, run_id: str) -> None:
        """Return once the run is closed (done or failed), by whichever process closed it."""
        ...


@dataclass
class JobContext:
    """Settings, database, rubrics, judge client, spool and executor of one process."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    registry: RubricRegistry
    client: JudgeClient
    spool: Spool
    executor: Executor
    owner: str = field(default_factory=process_owner)
    # Set when the process is told to stop: slow database retries give up and spool instead.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    versions: dict[int, RubricVersion] = field(default_factory=dict)
    set_ids: dict[SetKey, int] = field(default_factory=dict)  # result set ids never change once committed

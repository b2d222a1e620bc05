"""The long-lived parts of a running service, shared by the API, the executor and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from judge_service.config import Settings
from judge_service.engine.client import JudgeClient
from judge_service.jobs.runner import RunExecutor
from judge_service.rubrics.registry import RubricRegistry

if TYPE_CHECKING:
    from judge_service.jobs.scheduler import RejudgeScheduler


@dataclass
class ServiceContext:
    """Settings, database, rubric registry, judge client and run executor of one process."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    registry: RubricRegistry
    client: JudgeClient
    executor: RunExecutor
    scheduler: RejudgeScheduler | None = None

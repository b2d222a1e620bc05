"""Queue mode: stored schedules fire as periodic jobs in the workers, each firing claimed once across two workers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from judge_service.store.models import Run, ScheduleFire
from tests.cluster import processes, service_env, spawn
from tests.conftest import (
    _pg_database,
    make_settings,
    pair_items,
    pairwise_body,
    pg_problem,
    skip_or_fail,
    start_service,
)
from tests.fake_judge import FakeJudgeServer

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    problem = pg_problem()
    if problem:
        skip_or_fail(problem)
    async for url in _pg_database():
        yield url


async def test_schedule_fires_through_the_queue_once_per_firing(
    pg_url: str, fake_judge: FakeJudgeServer, tmp_path: Path
) -> None:
    settings = make_settings(pg_url, fake_judge.base_url, "fake-judge", executor="queue", scheduler_enabled=False)
    async for svc in start_service(settings):
        assert svc.ctx.scheduler is None  # no APScheduler in queue mode
        env = service_env(pg_url, fake_judge.base_url, tmp_path)
        with processes() as procs:
            procs += [spawn(["worker"], env, tmp_path / f"worker{i}.log") for i in range(2)]
            judged = await svc.http.post(
                "/judge/pairwise", json=pairwise_body(pair_items(6)), headers=svc.auth("submit")
            )
            assert judged.status_code == 200 and judged.json()["status"] == "done", judged.text
            spec = {"name": "often", "experiments": ["exp-1"], "sample_size": 4, "interval_seconds": 2}
            created = await svc.http.post("/schedules", json=spec, headers=svc.auth("admin"))
            assert created.status_code == 201, created.text
            deadline = time.monotonic() + 60
            done: list[str] = []
            while time.monotonic() < deadline and len(done) < 2:
                await asyncio.sleep(0.5)
                async with svc.ctx.sessions() as session:
                    rows = await session.execute(select(Run.id).where(Run.purpose == "rejudge", Run.status == "done"))
                    done = list(rows.scalars())
            async with svc.ctx.sessions() as session:
                fires = (await session.execute(select(ScheduleFire.fire_key, ScheduleFire.run_ids))).all()
            deleted = await svc.http.delete(f"/schedules/{created.json()['id']}", headers=svc.auth("admin"))
            assert deleted.status_code == 204
            assert len(done) >= 2, "the schedule did not fire through the queue"
    assert len(fires) >= 2
    # One firing, one claim, one run: two workers and two periodic deferrers never doubled one.
    assert len({key for key, _ in fires}) == len(fires)
    assert all(len(run_ids) == 1 for _, run_ids in fires)
    history = [r for _, ids in fires for r in ids]
    assert len(history) == len(set(history))

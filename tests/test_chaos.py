"""Chaos on the queue executor: PostgreSQL, a fake judge failing 30% of calls, two real worker processes.

Each test ends with every run closed, exactly the expected judgments per pair, none lost, none
stored twice, none left running, and every failure carrying its reason. The PostgreSQL restarts
take the whole server down for a moment: run this file locally under the exclusive lock
(`flock -x /tmp/judge-cpu.lock ...`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import (
    audit,
    ensure_pg_running,
    kill9,
    pg_ctl,
    pg_ready,
    processes,
    service_env,
    spawn,
    wait_progress,
    wait_runs_closed,
)
from tests.conftest import Service, _pg_database, make_settings, pair_items, pairwise_body, pg_problem, skip_or_fail
from tests.conftest import start_service as run_service
from tests.fake_judge import FakeJudgeServer

pytestmark = [pytest.mark.postgres, pytest.mark.chaos]
DIMENSIONS = 5  # customer_service@v1


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database (the queue executor needs PostgreSQL)."""
    problem = pg_problem()
    if problem:
        skip_or_fail(problem)
    async for url in _pg_database():
        yield url


@pytest.fixture
def flaky_judge(fake_judge: FakeJudgeServer) -> FakeJudgeServer:
    """The fake judge failing a seeded 30% of calls with HTTP 500, each call taking 20 ms."""
    fake_judge.state.fail_rate = 0.3
    fake_judge.seed(8)
    fake_judge.state.delay_s = 0.02
    return fake_judge


def queue_settings(url: str, judge: FakeJudgeServer, tmp_path: Path) -> Any:
    return make_settings(
        url,
        judge.base_url,
        "fake-judge",
        executor="queue",
        batch_size=8,
        lease_s=3.0,
        reaper_interval_s=1.0,
        spool_dir=tmp_path / "api-spool",
    )


async def submit_async(svc: Service, n: int, prefix: str = "p") -> str:
    body = pairwise_body(pair_items(n, prefix=prefix), **{"async": True})
    reply = await svc.http.post("/judge/pairwise", json=body, headers=svc.auth("submit"))
    assert reply.status_code == 202, reply.text
    return str(reply.json()["run_id"])


def check(report: dict[str, Any], pairs: int, per_pair: int = 2) -> None:
    """Closed, exact, nothing lost or doubled, failures explained."""
    assert set(report["runs"].values()) == {"done"}, report["runs"]
    assert len(report["per_pair"]) == pairs
    assert set(report["per_pair"].values()) == {per_pair}  # every pair: exactly its judgments, 0 duplicated
    assert set(report["statuses"]) <= {"done", "failed"}, report["statuses"]  # 0 lost, none stuck running
    assert sum(report["statuses"].values()) == pairs * per_pair
    assert report["failed_without_reason"] == 0
    assert report["scores"] == DIMENSIONS * report["done"]
    assert set(report["rollup"].values()) == {per_pair}  # each verdict counted once in the reports
    assert report["open_batches"] == 0


async def test_kill9_worker_mid_run(pg_url: str, flaky_judge: FakeJudgeServer, tmp_path: Path) -> None:
    async for svc in run_service(queue_settings(pg_url, flaky_judge, tmp_path)):
        env = service_env(pg_url, flaky_judge.base_url, tmp_path)
        with processes() as procs:
            workers = [spawn(["worker"], env, tmp_path / f"worker{i}.log") for i in range(2)]
            procs += workers
            run_id = await submit_async(svc, 150)
            await wait_progress(pg_url, 60)
            kill9(workers[0])
            await wait_runs_closed(pg_url, [run_id], timeout_s=180)
            status = (await svc.http.get(f"/runs/{run_id}", headers=svc.auth("read"))).json()
            assert status["status"] == "done" and status["counts"]["pending"] == 0
    report = await audit(pg_url, [run_id])
    check(report, 150)
    assert report["statuses"].get("failed", 0) > 0 and all("HTTP 500" in r for r in report["reasons"])

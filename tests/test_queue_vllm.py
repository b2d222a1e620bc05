"""Queue mode against the real vLLM judge: a `judge-service worker` process judges what the API accepted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from judge_service.judge_model.serve import VllmServer
from tests.cluster import audit, processes, service_env, spawn
from tests.conftest import _pg_database, make_settings, pairwise_body, pg_problem, skip_or_fail, start_service
from tests.test_e2e_vllm import example_items

pytestmark = [pytest.mark.vllm, pytest.mark.postgres]


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    problem = pg_problem()
    if problem:
        skip_or_fail(problem)
    async for url in _pg_database():
        yield url


async def test_worker_process_judges_with_real_vllm(pg_url: str, vllm_judge: VllmServer, tmp_path: Path) -> None:
    model = vllm_judge.settings.model
    settings = make_settings(pg_url, vllm_judge.base_url, model, executor="queue", request_timeout_s=120.0)
    items = example_items("customer_service", 3)
    too_long = example_items("copywriting", 1)
    too_long[0]["id"] = "too-long"
    too_long[0]["ft_output"] = "lorem ipsum dolor sit amet " * 700
    async for svc in start_service(settings):
        env = service_env(pg_url, vllm_judge.base_url, tmp_path, model=model, request_timeout_s=120, max_tokens=512)
        with processes() as procs:
            procs.append(spawn(["worker"], env, tmp_path / "worker.log"))
            # Synchronous in queue mode: the API only stores and enqueues, the worker judges, the API waits.
            reply = await svc.http.post("/judge/pairwise", json=pairwise_body(items), headers=svc.auth("submit"))
            assert reply.status_code == 200, reply.text
            body = reply.json()
            assert body["status"] == "done" and body["counts"]["pending"] == 0
            assert body["counts"]["done"] + body["counts"]["failed"] == 6 and body["counts"]["done"] >= 5, body
            # Too long for the 4096-token context: accepted (async), then failed with the reason.
            late = pairwise_body(too_long, experiment="exp-long", **{"async": True})
            accepted = await svc.http.post("/judge/pairwise", json=late, headers=svc.auth("submit"))
            assert accepted.status_code == 202, accepted.text
            await svc.ctx.executor.wait_run(accepted.json()["run_id"])
            run = (await svc.http.get(f"/runs/{accepted.json()['run_id']}", headers=svc.auth("read"))).json()
            assert run["status"] == "done" and run["counts"] == {"done": 0, "failed": 2, "pending": 0}
            reasons = {f["failure_reason"] for item in run["items"] for f in item["failed"]}
            assert len(reasons) == 1 and "exceeds the judge context of 4096 tokens" in reasons.pop()
    report = await audit(pg_url, [body["run_id"]])
    assert set(report["per_pair"].values()) == {2} and report["open_batches"] == 0

"""The embedded executor: kill -9 of the API mid-run; a second API process finishes the run through its reaper."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from judge_service.store import db, repo
from tests.cluster import audit, kill9, processes, service_env, spawn, wait_http, wait_progress, wait_runs_closed
from tests.conftest import pair_items, pairwise_body
from tests.fake_judge import FakeJudgeServer, free_port


async def test_kill9_api_mid_run_then_another_process_finishes_it(
    database_url: str, fake_judge: FakeJudgeServer, tmp_path: Path
) -> None:
    fake_judge.state.delay_s = 0.05
    key = await db.in_transaction(database_url, lambda s: repo.create_api_key(s, "chaos", ["submit", "read"]))
    env = service_env(database_url, fake_judge.base_url, tmp_path, executor="inprocess", lease_s=3)
    headers = {"Authorization": f"Bearer {key}"}
    with processes() as procs:
        port = free_port()
        first = spawn(["serve", "--port", str(port)], env, tmp_path / "first.log")
        procs.append(first)
        await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/healthz", first, tmp_path / "first.log")
        async with httpx.AsyncClient(timeout=60, headers=headers) as http:
            body = pairwise_body(pair_items(80), **{"async": True})
            reply = await http.post(f"http://127.0.0.1:{port}/judge/pairwise", json=body)
            assert reply.status_code == 202, reply.text
            run_id = reply.json()["run_id"]
            await wait_progress(database_url, 20)
            kill9(first)
            killed_at = time.monotonic()
            port = free_port()
            second = spawn(["serve", "--port", str(port)], env, tmp_path / "second.log")
            procs.append(second)
            await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/healthz", second, tmp_path / "second.log")
            # Nothing is working on the run until the dead process's leases run out: it must say so.
            status = (await http.get(f"http://127.0.0.1:{port}/runs/{run_id}")).json()["status"]
            assert status in ("queued", "running", "done")
            await wait_runs_closed(database_url, [run_id], timeout_s=90)
            recovered_s = time.monotonic() - killed_at
            final = (await http.get(f"http://127.0.0.1:{port}/runs/{run_id}")).json()
    assert final["status"] == "done" and final["counts"] == {"done": 160, "failed": 0, "pending": 0}
    # Lease (3 s) + reaper interval (1 s) + judging the rest, far from the old 17-minute lease.
    assert recovered_s < 60
    report = await audit(database_url, [run_id])
    assert set(report["per_pair"].values()) == {2} and len(report["per_pair"]) == 80
    assert set(report["statuses"]) == {"done"} and set(report["rollup"].values()) == {2}

"""Several judge replicas behind one JUDGE_BASE_URL, with fake judges of set capacity and faults."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from judge_service.engine.client import JudgeCallError, JudgeClient
from judge_service.store.models import Judgment
from tests.conftest import make_settings, pair_items, pairwise_body, start_service
from tests.fake_judge import FakeJudgeServer

MODEL = "fake-judge"
FAST = {"choice": ["A", "B", "tie"], "max_tokens": 3, "logprobs": 10}


@pytest.fixture
def replicas() -> Iterator[list[FakeJudgeServer]]:
    """Three fresh fake judges, good by default."""
    servers = [FakeJudgeServer().start() for _ in range(3)]
    yield servers
    for server in servers:
        server.stop()


def urls(servers: list[FakeJudgeServer]) -> str:
    return ",".join(s.base_url for s in servers)


def messages(i: int) -> list[dict[str, str]]:
    user = f"<<<ANSWER_A>>>answer {i}<<<END_ANSWER_A>>>\n<<<ANSWER_B>>>GOOD answer {i}<<<END_ANSWER_B>>>"
    return [{"role": "system", "content": "judge"}, {"role": "user", "content": user}]


def client_for(tmp_path: Path, servers: list[FakeJudgeServer], **overrides: Any) -> JudgeClient:
    return JudgeClient(make_settings(f"sqlite:///{tmp_path / 'x.db'}", urls(servers), MODEL, **overrides))


async def test_one_url_is_still_valid_and_list_is_parsed(tmp_path: Path) -> None:
    one = make_settings("sqlite://", "http://judge:8001/v1", MODEL)
    assert one.base_urls == ["http://judge:8001/v1"]
    many = make_settings("sqlite://", " http://a:8001/v1, http://b:8001/v1 ,", MODEL)
    assert many.base_urls == ["http://a:8001/v1", "http://b:8001/v1"]
    with pytest.raises(ValueError, match="must start with http"):
        make_settings("sqlite://", "http://a:8001/v1,b:8001", MODEL)


@pytest.mark.parametrize("capacities", [(2, 2), (3, 1)])
async def test_calls_spread_in_proportion_to_capacity(
    tmp_path: Path, replicas: list[FakeJudgeServer], capacities: tuple[int, int]
) -> None:
    servers = replicas[:2]
    for server, capacity in zip(servers, capacities, strict=True):
        server.state.capacity, server.state.delay_s = capacity, 0.03
    # Each replica may hold 4 calls, more than either processes at once: both stay saturated, so
    # each serves capacity / latency calls per second and least-outstanding keeps their queues level.
    client = client_for(tmp_path, servers, concurrency=16, replica_concurrency=4)
    try:
        n = 160
        await asyncio.gather(*(client.complete(messages(i), seed=0, **FAST) for i in range(n)))
    finally:
        await client.aclose()
    calls = [s.state.calls for s in servers]
    assert sum(calls) == n
    expected_share = capacities[0] / sum(capacities)
    assert calls[0] / n == pytest.approx(expected_share, abs=0.1), calls
    for server in servers:  # the per-replica limit holds
        assert server.state.peak_in_flight <= 4
    assert [r["calls"] for r in (s.as_dict() for s in client.pool.status())] == calls


async def test_concurrency_caps_process_and_replica(tmp_path: Path, replicas: list[FakeJudgeServer]) -> None:
    for server in replicas:
        server.state.delay_s = 0.05
    client = client_for(tmp_path, replicas, concurrency=5, replica_concurrency=2)
    try:
        await asyncio.gather(*(client.complete(messages(i), seed=0, **FAST) for i in range(30)))
    finally:
        await client.aclose()
    peaks = [s.state.peak_in_flight for s in replicas]
    assert max(peaks) <= 2 and sum(peaks) >= 5, peaks  # never 3 on one replica; 5 in flight over all


async def test_wrong_model_or_build_is_refused_and_shown_in_healthz(
    tmp_path: Path, replicas: list[FakeJudgeServer]
) -> None:
    good, wrong_model, other_build = replicas
    wrong_model.state.model = "some-other-model"
    other_build.state.backend_version = "fake-2"
    settings = make_settings(f"sqlite:///{tmp_path / 'r.db'}", urls(replicas), MODEL)
    async for svc in start_service(settings):
        health = await svc.http.get("/healthz", headers=svc.auth("read"))  # the URLs only with a key
        assert health.status_code == 200, health.text
        judge = health.json()["judge"]
        assert judge["ok"] is True and judge["backend_version"] == "fake-1"
        states = [(r["index"], r["state"]) for r in judge["replicas"]]
        assert states == [(0, "ok"), (1, "refused"), (2, "refused")]
        assert "some-other-model" in judge["replicas"][1]["reason"]
        assert "not the pinned model 'fake-judge'" in judge["replicas"][1]["reason"]
        assert "backend version fake-2" in judge["replicas"][2]["reason"]
        assert [r["url"] for r in judge["replicas"]] == [s.base_url for s in replicas]
        reply = await svc.http.post("/judge/pairwise", json=pairwise_body(pair_items(4)), headers=svc.auth("submit"))
        assert reply.status_code == 200 and reply.json()["counts"] == {"done": 8, "failed": 0, "pending": 0}
        assert (good.state.calls, wrong_model.state.calls, other_build.state.calls) == (8, 0, 0)
    # No usable replica at all: 503 naming every replica's reason.
    good.state.model = other_build.state.model = "yet-another-model"
    async for svc in start_service(settings):
        health = await svc.http.get("/healthz")
        assert health.status_code == 503
        assert {r["state"] for r in health.json()["judge"]["replicas"]} == {"refused"}
        assert "yet-another-model" in health.json()["judge"]["error"]


async def test_replica_reporting_another_dtype_is_refused(tmp_path: Path, replicas: list[FakeJudgeServer]) -> None:
    _silent, same, other = replicas  # the first reports no dtype: the configured one stands in
    same.state.dtype, other.state.dtype = "float32", "bfloat16"
    client = client_for(tmp_path, replicas, model_dtype="float32")
    try:
        info = await client.check()
        fingerprint = await client.fingerprint()
    finally:
        await client.aclose()
    assert [r.state for r in client.pool.replicas] == ["ok", "ok", "refused"]
    assert [r.info.dtype_source if r.info else None for r in client.pool.replicas] == [
        "configured",
        "server",
        "server",
    ]
    assert "dtype bfloat16" in (client.pool.replicas[2].reason or "") and "dtype float32" in (
        client.pool.replicas[2].reason or ""
    )
    assert info.dtype == fingerprint.dtype == "float32"


async def test_failing_replica_is_ejected_and_run_completes_on_the_others(
    database_url: str, replicas: list[FakeJudgeServer]
) -> None:
    failing = replicas[0]
    for server in replicas:
        server.state.delay_s = 0.02
    settings = make_settings(
        database_url, urls(replicas), MODEL, concurrency=6, replica_concurrency=2, replica_cooldown_s=60.0
    )
    async for svc in start_service(settings):
        body = pairwise_body(pair_items(40), **{"async": True})
        reply = await svc.http.post("/judge/pairwise", json=body, headers=svc.auth("submit"))
        assert reply.status_code == 202, reply.text
        run_id = reply.json()["run_id"]
        while failing.state.calls < 4:  # noqa: ASYNC110 - waiting for the fake's own counter
            await asyncio.sleep(0.01)
        failing.state.mode = "error500"
        calls_when_broken = failing.state.calls
        await svc.ctx.executor.wait_run(run_id)
        run = (await svc.http.get(f"/runs/{run_id}", headers=svc.auth("read"))).json()
        assert run["status"] == "done" and run["counts"] == {"done": 80, "failed": 0, "pending": 0}
        # Only the calls already routed to it when it broke met the failure; then it was out.
        assert failing.state.calls - calls_when_broken <= settings.replica_concurrency
        assert replicas[1].state.calls > 0 and replicas[2].state.calls > 0
        health = (await svc.http.get("/healthz")).json()
        ejected = health["judge"]["replicas"][0]
        assert ejected["state"] == "ejected" and ejected["ejected_until"] and "InternalServerError" in ejected["reason"]
        assert [r["state"] for r in health["judge"]["replicas"][1:]] == ["ok", "ok"]
        async with svc.ctx.sessions() as session:
            judgments = list((await session.execute(select(Judgment))).scalars())
        assert len(judgments) == 80 and len({j.fingerprint_id for j in judgments}) == 1
        retried = [j for j in judgments if j.attempts > 1]
        assert 1 <= len(retried) <= settings.replica_concurrency


async def test_ejected_replica_is_readmitted_by_the_model_check_after_cooldown(
    tmp_path: Path, replicas: list[FakeJudgeServer]
) -> None:
    flaky, steady = replicas[:2]
    client = client_for(tmp_path, [flaky, steady], replica_cooldown_s=0.3)
    try:
        await client.check()
        flaky.state.faults = ["error500"]
        await asyncio.gather(*(client.complete(messages(i), seed=0, **FAST) for i in range(2)))
        assert client.pool.replicas[0].state == "ejected"
        before = flaky.state.calls
        for i in range(4):  # while it cools down, everything goes to the other replica
            await client.complete(messages(i), seed=0, **FAST)
        assert flaky.state.calls == before
        await asyncio.sleep(0.35)
        flaky.state.model = "swapped-model"  # came back serving something else: refused, not used
        for i in range(4):
            await client.complete(messages(i), seed=0, **FAST)
        assert flaky.state.calls == before and client.pool.replicas[0].state == "refused"
        flaky.state.model = MODEL
        await client.check(force=True)  # fixed: the check admits it again
        for i in range(4):
            await client.complete(messages(i), seed=0, **FAST)
        assert client.pool.replicas[0].state == "ok" and flaky.state.calls == before + 2
    finally:
        await client.aclose()


async def test_fingerprint_is_the_same_whichever_replica_serves(
    tmp_path: Path, replicas: list[FakeJudgeServer]
) -> None:
    hashes = []
    for servers in ([replicas[0]], [replicas[1]], replicas[:2], list(reversed(replicas))):
        client = client_for(tmp_path, servers)
        try:
            hashes.append((await client.fingerprint()).hash)
        finally:
            await client.aclose()
    assert len(set(hashes)) == 1


async def test_tokenize_goes_to_a_healthy_replica(tmp_path: Path, replicas: list[FakeJudgeServer]) -> None:
    dead = FakeJudgeServer()  # never started: its port refuses connections
    client = JudgeClient(
        make_settings(f"sqlite:///{tmp_path / 't.db'}", f"{dead.base_url},{replicas[0].base_url}", MODEL)
    )
    try:
        await client.check()
        assert [r.state for r in client.pool.replicas] == ["ejected", "ok"]
        text = "x" * 400
        assert await client.count_tokens([{"role": "user", "content": text}]) == 100
    finally:
        await client.aclose()


async def test_all_replicas_down_fail_judgments_with_reasons(tmp_path: Path, replicas: list[FakeJudgeServer]) -> None:
    servers = replicas[:2]
    for server in servers:
        server.state.delay_s, server.state.capacity = 0.2, 1
    settings = make_settings(
        f"sqlite:///{tmp_path / 'd.db'}", urls(servers), MODEL, concurrency=2, replica_concurrency=1
    )
    async for svc in start_service(settings):
        body = pairwise_body(pair_items(6), **{"async": True})
        reply = await svc.http.post("/judge/pairwise", json=body, headers=svc.auth("submit"))
        run_id = reply.json()["run_id"]
        while sum(s.state.calls for s in servers) < 2:  # noqa: ASYNC110 - waiting for the fakes' counters
            await asyncio.sleep(0.01)
        await asyncio.gather(*(asyncio.to_thread(s.stop) for s in servers))
        await svc.ctx.executor.wait_run(run_id)
        run = (await svc.http.get(f"/runs/{run_id}", headers=svc.auth("read"))).json()
        counts = run["counts"]
        assert run["status"] == "done" and counts["pending"] == 0 and counts["done"] + counts["failed"] == 12
        assert counts["failed"] >= 8, counts
        async with svc.ctx.sessions() as session:
            failed = list((await session.execute(select(Judgment).where(Judgment.status == "failed"))).scalars())
        for judgment in failed:
            reason = judgment.failure_reason or ""
            assert "unreachable" in reason or "APIConnectionError" in reason, reason
            assert judgment.attempts == settings.retry_attempts
        health = await svc.http.get("/healthz")
        assert health.status_code == 503
        assert [r["state"] for r in health.json()["judge"]["replicas"]] == ["ejected", "ejected"]


async def test_all_replicas_failing_reports_the_last_error(tmp_path: Path, replicas: list[FakeJudgeServer]) -> None:
    servers = replicas[:2]
    for server in servers:
        server.state.mode = "error500"
    client = client_for(tmp_path, servers)
    try:
        with pytest.raises(JudgeCallError) as caught:
            await client.complete(messages(0), seed=0, **FAST)
    finally:
        await client.aclose()
    assert "HTTP 500" in caught.value.reason and caught.value.raw == "upstream exploded"
    assert caught.value.attempts == 3 and sum(s.state.calls for s in servers) == 3

"""Judge faults, injected with the fake OpenAI-compatible server: retried, then stored as failed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from judge_service.store.models import Judgment
from tests.conftest import Service, make_settings, pair_items, pairwise_body, start_service
from tests.fake_judge import FakeJudgeServer


@pytest.fixture
async def sqlite_service(tmp_path: Path, fake_judge: FakeJudgeServer) -> AsyncIterator[Service]:
    settings = make_settings(f"sqlite:///{tmp_path / 'faults.db'}", fake_judge.base_url, "fake-judge", concurrency=1)
    async for svc in start_service(settings):
        yield svc


def shorten_timeout(svc: Service, seconds: float) -> None:
    for replica in svc.ctx.client.pool.replicas:
        replica.openai = replica.openai.with_options(timeout=seconds)


async def judge_one(svc: Service) -> dict[str, Any]:
    body = pairwise_body(pair_items(1), options={"swap": False})
    reply = await svc.http.post("/judge/pairwise", json=body, headers=svc.auth("submit"))
    assert reply.status_code == 200, reply.text
    result: dict[str, Any] = reply.json()
    return result


async def stored(svc: Service) -> list[Judgment]:
    async with svc.ctx.sessions() as session:
        return list((await session.execute(select(Judgment))).scalars())


@pytest.mark.parametrize("fault", ["error500", "error429", "timeout"])
async def test_transient_fault_is_retried_then_succeeds(
    sqlite_service: Service, fake_judge: FakeJudgeServer, fault: str
) -> None:
    fake_judge.state.faults = [fault, fault]
    if fault == "timeout":
        shorten_timeout(sqlite_service, 0.5)
    body = await judge_one(sqlite_service)
    assert body["counts"] == {"done": 1, "failed": 0, "pending": 0}
    assert fake_judge.state.calls == 3
    [judgment] = await stored(sqlite_service)
    assert judgment.status == "done" and judgment.attempts == 3


async def test_persistent_500_is_stored_failed_with_raw_text(
    sqlite_service: Service, fake_judge: FakeJudgeServer
) -> None:
    fake_judge.state.mode = "error500"
    body = await judge_one(sqlite_service)
    item = body["items"][0]
    assert body["counts"]["failed"] == 1 and item["outcome"] is None and item["score"] is None
    [failed] = item["failed"]
    assert failed["status"] == "failed" and "HTTP 500" in failed["failure_reason"]
    assert failed["raw_reply"] == "upstream exploded"
    assert fake_judge.state.calls == sqlite_service.settings.retry_attempts
    [judgment] = await stored(sqlite_service)
    assert judgment.status == "failed" and judgment.s_ft is None and judgment.winner is None


async def test_persistent_timeout_is_stored_failed(sqlite_service: Service, fake_judge: FakeJudgeServer) -> None:
    fake_judge.state.mode = "timeout"
    shorten_timeout(sqlite_service, 0.3)
    body = await judge_one(sqlite_service)
    [failed] = body["items"][0]["failed"]
    assert "Timeout" in failed["failure_reason"]


async def test_invalid_json_is_retried_then_stored_failed(sqlite_service: Service, fake_judge: FakeJudgeServer) -> None:
    fake_judge.state.mode = "invalid_json"
    body = await judge_one(sqlite_service)
    [failed] = body["items"][0]["failed"]
    assert failed["failure_reason"].startswith("invalid reply: reply is not valid JSON")
    assert failed["raw_reply"] == "this is {not json"
    assert fake_judge.state.calls == sqlite_service.settings.invalid_reply_attempts
    # Failed judgments count nowhere as scores and are retried only on request.
    calls = fake_judge.state.calls
    fake_judge.state.mode = "marker"
    again = await sqlite_service.http.post(
        "/judge/pairwise",
        json=pairwise_body(pair_items(1), options={"swap": False}),
        headers=sqlite_service.auth("submit"),
    )
    assert again.json()["counts"]["failed"] == 1 and fake_judge.state.calls == calls
    retried = await sqlite_service.http.post(
        "/judge/pairwise",
        json=pairwise_body(pair_items(1), options={"swap": False, "retry_failed": True}),
        headers=sqlite_service.auth("submit"),
    )
    assert retried.json()["counts"] == {"done": 1, "failed": 0, "pending": 0}


async def test_invalid_json_once_then_valid(sqlite_service: Service, fake_judge: FakeJudgeServer) -> None:
    fake_judge.state.faults = ["invalid_json"]
    body = await judge_one(sqlite_service)
    assert body["counts"]["done"] == 1 and body["items"][0]["outcome"] == "win"


async def test_wrong_model_is_503_and_unhealthy(sqlite_service: Service, fake_judge: FakeJudgeServer) -> None:
    fake_judge.state.model = "some-other-model"
    reply = await sqlite_service.http.post(
        "/judge/pairwise", json=pairwise_body(pair_items(1)), headers=sqlite_service.auth("submit")
    )
    assert reply.status_code == 503
    assert "not the pinned model 'fake-judge'" in reply.json()["detail"][0]["msg"]
    health = await sqlite_service.http.get("/healthz")
    assert health.status_code == 503
    assert health.json()["judge"]["ok"] is False and "some-other-model" in health.json()["judge"]["error"]
    assert await stored(sqlite_service) == []


async def test_unreachable_judge_is_503(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'down.db'}", "http://127.0.0.1:9/v1", "fake-judge")
    async for svc in start_service(settings):
        reply = await svc.http.post("/judge/pairwise", json=pairwise_body(pair_items(1)), headers=svc.auth("submit"))
        assert reply.status_code == 503 and "unreachable" in reply.json()["detail"][0]["msg"]
        assert (await svc.http.get("/healthz")).json()["judge"]["ok"] is False


async def test_async_pair_too_long_fails_with_the_reason(sqlite_service: Service, fake_judge: FakeJudgeServer) -> None:
    """Accepted without counting tokens; the batch counts them and fails the pair visibly."""
    items = pair_items(2)
    items[1]["base_output"] = "word " * 3500  # about 4,400 tokens to the fake's tokenizer
    body = pairwise_body(items, **{"async": True})
    reply = await sqlite_service.http.post("/judge/pairwise", json=body, headers=sqlite_service.auth("submit"))
    assert reply.status_code == 202
    await sqlite_service.ctx.executor.wait_run(reply.json()["run_id"])
    run = (await sqlite_service.http.get(f"/runs/{reply.json()['run_id']}", headers=sqlite_service.auth("read"))).json()
    assert run["counts"] == {"done": 2, "failed": 2, "pending": 0}
    long_item = next(i for i in run["items"] if i["id"] == "p1")
    assert len(long_item["failed"]) == 2 and all(
        "exceeds the judge context of 4096 tokens" in f["failure_reason"] for f in long_item["failed"]
    )
    assert fake_judge.state.calls == 2  # the long pair never reached the judge

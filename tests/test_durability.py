"""Durability pieces on their own: lost-connection retries, the spool, close-once, live run status, settings."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from judge_service.contract.judging import PairwiseRequest
from judge_service.engine.judge import JudgmentResult
from judge_service.engine.verdict import FtVerdict
from judge_service.jobs.batch import replay_spool, store_verdict
from judge_service.jobs.closing import close_run
from judge_service.jobs.durable import Spool, is_lost_connection, result_from_json, result_to_json, with_db_retry
from judge_service.jobs.results import live_status
from judge_service.jobs.submit import submit
from judge_service.service import ConfigError, build_service, check_settings, close_service
from judge_service.store import repo
from judge_service.store.models import Judgment, Run, WorkBatch, utcnow
from tests.conftest import make_settings, pair_items, pairwise_body
from tests.fake_judge import FakeJudgeServer


def verdict_result(winner: str = "ft") -> JudgmentResult:
    verdict = FtVerdict(winner, 1.0 if winner == "ft" else 0.0, {"accuracy": (2, 5)}, "FT is right", (), (), winner)  # type: ignore[arg-type]
    return JudgmentResult(
        status="done",
        messages=[{"role": "user", "content": "x"}],
        messages_hash="h",
        verdict=verdict,
        winner_slot="B",
        raw='{"winner": "B"}',
        prompt_tokens=10,
        completion_tokens=5,
        latency_ms=12.5,
        attempts=1,
    )


def test_lost_connections_are_told_apart_from_bugs() -> None:
    assert is_lost_connection(OperationalError("SELECT 1", {}, Exception("server closed the connection")))
    assert is_lost_connection(ConnectionError("unexpected connection_lost() call"))
    assert is_lost_connection(ConnectionRefusedError(111, "Connection refused"))
    assert not is_lost_connection(IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not is_lost_connection(ValueError("a bug"))


async def test_writes_are_retried_through_a_lost_connection_then_give_up() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionResetError("connection reset by peer")
        return "stored"

    assert await with_db_retry(flaky, window_s=30) == "stored" and calls == 3

    async def down() -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    stopping = asyncio.Event()
    stopping.set()  # a stopping process tries once, then hands the verdict to the spool
    with pytest.raises(ConnectionRefusedError):
        await with_db_retry(down, window_s=300, stopping=stopping)


def test_spool_records_round_trip() -> None:
    result = verdict_result()
    judgment_id, back = result_from_json(result_to_json(7, result))
    assert judgment_id == 7 and back == result


async def test_spooled_verdict_is_replayed_once_and_never_overwrites(
    database_url: str, fake_judge: FakeJudgeServer, tmp_path: Path
) -> None:
    settings = make_settings(database_url, fake_judge.base_url, "fake-judge", spool_dir=tmp_path / "spool")
    service = await build_service(settings, "api")
    try:
        request = PairwiseRequest.model_validate(pairwise_body(pair_items(1), options={"swap": False}))
        submitted = await submit(service.jobs, request, "k", None)
        async with service.sessions() as session:
            [judgment_id] = (await session.execute(select(Judgment.id))).scalars().all()
        # A dead process left its verdict on disk (its own file, no longer locked).
        dead = Spool(tmp_path / "spool")
        dead.append(judgment_id, verdict_result("ft"))
        dead.close()
        assert service.jobs.spool.pending() == 1
        assert await replay_spool(service.jobs) == 1
        assert service.jobs.spool.pending() == 0
        async with service.sessions() as session:
            stored = await session.get(Judgment, judgment_id)
            run = await session.get(Run, submitted.run_id)
            assert stored is not None and stored.status == "done" and stored.winner == "ft"
            assert run is not None and run.status == "done"  # the replay stored the last verdict: it closed the run
        # A second verdict for the same judgment (a re-judge after a lease ran out) is not stored.
        assert await store_verdict(service.jobs, judgment_id, verdict_result("base")) is False
        async with service.sessions() as session:
            again = await session.get(Judgment, judgment_id)
            assert again is not None and again.winner == "ft"
    finally:
        await close_service(service)


async def test_a_run_closes_exactly_once(database_url: str, fake_judge: FakeJudgeServer) -> None:
    settings = make_settings(database_url, fake_judge.base_url, "fake-judge")
    service = await build_service(settings, "api")
    try:
        request = PairwiseRequest.model_validate(pairwise_body(pair_items(2), **{"async": True}))
        submitted = await submit(service.jobs, request, "k", None)
        async with service.sessions() as session:
            # Not started: nothing holds it, so it is "queued", not "running".
            run = await session.get(Run, submitted.run_id)
            assert run is not None and await live_status(session, run) == "queued"
            ids = (await session.execute(select(Judgment.id))).scalars().all()
        assert await close_run(service.jobs, submitted.run_id) is False  # work left
        for judgment_id in ids:
            assert await store_verdict(service.jobs, judgment_id, verdict_result())
        outcomes = await asyncio.gather(*(close_run(service.jobs, submitted.run_id) for _ in range(6)))
        assert sorted(outcomes) == [False] * 5 + [True]
        async with service.sessions() as session:
            assert await repo.run_counts(session, submitted.run_id) == {"pending": 0, "done": 4, "failed": 0}
    finally:
        await close_service(service)


async def test_a_held_run_is_running_until_its_lease_runs_out(database_url: str, fake_judge: FakeJudgeServer) -> None:
    settings = make_settings(database_url, fake_judge.base_url, "fake-judge")
    service = await build_service(settings, "api")
    try:
        request = PairwiseRequest.model_validate(pairwise_body(pair_items(1), **{"async": True}))
        submitted = await submit(service.jobs, request, "k", None)
        async with service.sessions() as session, session.begin():
            await session.execute(update(Judgment).values(status="running", lease_until=utcnow() + _s(30)))
        async with service.sessions() as session:
            run = await session.get(Run, submitted.run_id)
            assert run is not None and await live_status(session, run) == "running"
        async with service.sessions() as session, session.begin():
            await session.execute(update(Judgment).values(lease_until=utcnow() - _s(1)))
        async with service.sessions() as session:
            run = await session.get(Run, submitted.run_id)
            assert run is not None and await live_status(session, run) == "queued"
            assert (await session.execute(select(WorkBatch.status))).scalars().all() == ["queued"]
    finally:
        await close_service(service)


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def test_queue_executor_refuses_sqlite(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'x.db'}", "http://127.0.0.1:9/v1", "m", executor="queue")
    with pytest.raises(ConfigError, match="JUDGE_EXECUTOR=queue needs PostgreSQL"):
        check_settings(settings)

"""Two processes (as two replicas would) on one run: every judgment judged and stored exactly once."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from judge_service.contract.judging import PairwiseRequest
from judge_service.jobs.batch import execute_batch
from judge_service.jobs.submit import submit
from judge_service.service import build_service, close_service
from judge_service.store import repo
from judge_service.store.models import Judgment, JudgmentScore, Run, WorkBatch
from tests.conftest import make_settings, pair_items, pairwise_body
from tests.fake_judge import FakeJudgeServer


async def test_two_processes_share_one_run(database_url: str, fake_judge: FakeJudgeServer) -> None:
    settings = make_settings(database_url, fake_judge.base_url, "fake-judge", batch_size=4)
    first, second = await build_service(settings, "api"), await build_service(settings, "api", migrate=False)
    try:
        request = PairwiseRequest.model_validate(pairwise_body(pair_items(10), **{"async": True}))
        # Stored and queued in `first` (not started: nothing runs in the background here).
        submitted = await submit(first.jobs, request, "key1", None)
        async with first.sessions() as session:
            batches = list((await session.execute(select(WorkBatch.id))).scalars())
        assert len(batches) == 5  # 20 judgments in batches of 4
        # Both processes race over every batch; the loser of each race skips it.
        outcomes = await asyncio.gather(
            *(execute_batch(first.jobs, b) for b in batches), *(execute_batch(second.jobs, b) for b in batches)
        )
        assert sorted(outcomes) == ["done"] * 5 + ["skipped"] * 5
        assert fake_judge.state.calls == 20  # each judgment judged once across both processes
        async with first.sessions() as session:
            run = await session.get(Run, submitted.run_id)
            assert run is not None and run.status == "done" and run.error is None
            assert await repo.run_counts(session, run.id) == {"pending": 0, "done": 20, "failed": 0}
            assert (await session.execute(select(func.count()).select_from(JudgmentScore))).scalar_one() == 100
            statuses = set((await session.execute(select(Judgment.status))).scalars())
            assert statuses == {"done"}
    finally:
        await close_service(first)
        await close_service(second)

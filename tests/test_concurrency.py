"""Two executors (as two replicas would) on one run: every judgment judged and stored exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import func, select

from judge_service.api.app import build_context, close_context
from judge_service.api.schemas import PairwiseRequest
from judge_service.jobs.submit import submit
from judge_service.store import repo
from judge_service.store.models import Judgment, JudgmentScore, Run
from tests.conftest import make_settings, pair_items, pairwise_body
from tests.fake_judge import FakeJudgeServer


async def test_two_processes_share_one_run(database_url: str, fake_judge: FakeJudgeServer, tmp_path: Path) -> None:
    settings = make_settings(database_url, fake_judge.base_url, "fake-judge")
    first, second = await build_context(settings), await build_context(settings, migrate=False)
    try:
        request = PairwiseRequest.model_validate(pairwise_body(pair_items(10), **{"async": True}))
        submitted = await submit(first, request, "key1", None)
        # Both "replicas" pick the run up, as resume_all on two starting processes would.
        await asyncio.gather(first.executor.wait(submitted.run_id), second.executor.wait(submitted.run_id))
        assert fake_judge.state.calls == 20  # each judgment judged once across both processes
        async with first.sessions() as session:
            run = await session.get(Run, submitted.run_id)
            assert run is not None and run.status == "done" and run.error is None
            assert await repo.run_counts(session, run.id) == {"pending": 0, "done": 20, "failed": 0}
            assert (await session.execute(select(func.count()).select_from(JudgmentScore))).scalar_one() == 100
            statuses = set((await session.execute(select(Judgment.status))).scalars())
            assert statuses == {"done"}
    finally:
        await close_context(first)
        await close_context(second)

"""A run interrupted by a stop is finished by the next process, through the reaper, with no resume step."""

from __future__ import annotations

from judge_service.contract.judging import PairwiseRequest
from judge_service.jobs.submit import submit
from judge_service.service import build_service, close_service
from judge_service.store import repo
from judge_service.store.models import Run
from tests.conftest import make_settings, pair_items, pairwise_body, start_service
from tests.fake_judge import FakeJudgeServer


async def test_pending_run_resumes_after_restart(database_url: str, fake_judge: FakeJudgeServer) -> None:
    settings = make_settings(database_url, fake_judge.base_url, "fake-judge", reaper_interval_s=0.2)
    request = PairwiseRequest.model_validate(pairwise_body(pair_items(3), **{"async": True}))
    # Stored and acknowledged by a process that stops before it judges anything.
    first = await build_service(settings, "api")
    submitted = await submit(first.jobs, request, "key1", None)
    await close_service(first)
    assert fake_judge.state.calls == 0
    async for svc in start_service(settings):
        await svc.ctx.executor.wait_run(submitted.run_id)
        async with svc.ctx.sessions() as session:
            run = await session.get(Run, submitted.run_id)
            assert run is not None and run.status == "done"
            assert await repo.run_counts(session, run.id) == {"pending": 0, "done": 6, "failed": 0}
    assert fake_judge.state.calls == 6


async def test_resumed_run_waits_for_judge_then_refuses_another_judge(
    database_url: str, fake_judge: FakeJudgeServer
) -> None:
    settings = make_settings(database_url, fake_judge.base_url, "fake-judge")
    request = PairwiseRequest.model_validate(pairwise_body(pair_items(1), **{"async": True}))
    first = await build_service(settings, "api")
    submitted = await submit(first.jobs, request, "key1", None)
    await close_service(first)
    # Same model id, but different decoding parameters: a different judge fingerprint.
    changed = make_settings(database_url, fake_judge.base_url, "fake-judge", temperature=0.7, reaper_interval_s=0.2)
    async for svc in start_service(changed):
        await svc.ctx.executor.wait_run(submitted.run_id)
        async with svc.ctx.sessions() as session:
            run = await session.get(Run, submitted.run_id)
            assert (
                run is not None
                and run.status == "failed"
                and "differs from the one this run was pinned to" in (run.error or "")
            )
            assert (await repo.run_counts(session, run.id))["pending"] == 2
    assert fake_judge.state.calls == 0

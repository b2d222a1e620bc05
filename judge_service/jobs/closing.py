"""Closing runs exactly once, whichever process stores the last verdict (or the reaper, for a run left complete).

The close is one conditional UPDATE: the run is still open and none of its judgments is pending or
running. Its row count says who won; the winner runs the close hook (re-judge drift alerts) in the
same transaction, so a close and its alerts are stored together or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from judge_service.jobs.context import JobContext
from judge_service.jobs.drift import evaluate_rejudge
from judge_service.jobs.durable import is_retryable_db_error, with_db_retry
from judge_service.store.models import Judgment, Run, RunJudgment, utcnow

log = logging.getLogger(__name__)
OPEN = ("pending", "running")


def _nothing_left(run_id: str) -> object:
    return ~exists(
        select(RunJudgment.judgment_id)
        .join(Judgment, Judgment.id == RunJudgment.judgment_id)
        .where(RunJudgment.run_id == run_id, Judgment.status.in_(OPEN))
    )


async def _close_once(session: AsyncSession, ctx: JobContext, run_id: str, hook: bool, error: str | None) -> bool:
    closed = await session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status.in_(OPEN), _nothing_left(run_id))  # type: ignore[arg-type]
        .values(status="done", finished_at=utcnow(), error=error)
        .execution_options(synchronize_session=False)
    )
    if getattr(closed, "rowcount", 0) != 1:
        return False
    if hook:
        run = (await session.execute(select(Run).where(Run.id == run_id))).scalar_one()
        await evaluate_rejudge(session, run, ctx.settings.rejudge_min_agreement)
    return True


async def close_run(ctx: JobContext, run_id: str) -> bool:
    """Close the run if it is complete; True for the one caller that closed it."""

    async def attempt(hook: bool, error: str | None) -> bool:
        async with ctx.sessions() as session, session.begin():
            return await _close_once(session, ctx, run_id, hook, error)

    window = ctx.settings.db_retry_window_s
    try:
        closed = await with_db_retry(
            lambda: attempt(True, None), window_s=window, stopping=ctx.stopping, what=f"closing run {run_id}"
        )
    except Exception as exc:
        if is_retryable_db_error(exc):
            raise
        # A bug in the hook must not keep the run open forever: close it and say what failed.
        log.exception("close hook of run %s failed; closing it without the hook", run_id)
        message = f"close hook failed: {exc.__class__.__name__}: {exc}"
        closed = await with_db_retry(
            lambda: attempt(False, message), window_s=window, stopping=ctx.stopping, what=f"closing run {run_id}"
        )
    if closed:
        log.info("run %s done", run_id)
        ctx.executor.notify_closed(run_id)
    return closed


async def close_runs(ctx: JobContext, run_ids: Iterable[str]) -> list[str]:
    """Close each complete run; returns those this caller closed."""
    return [run_id for run_id in sorted(set(run_ids)) if await close_run(ctx, run_id)]


async def fail_run(ctx: JobContext, run_id: str, error: str) -> bool:
    """Mark an open run failed (its pending judgments stay pending, e.g. for another judge)."""

    async def attempt() -> bool:
        async with ctx.sessions() as session, session.begin():
            failed = await session.execute(
                update(Run)
                .where(Run.id == run_id, Run.status.in_(OPEN))
                .values(status="failed", error=error, finished_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            return getattr(failed, "rowcount", 0) == 1

    failed = await with_db_retry(attempt, window_s=ctx.settings.db_retry_window_s, stopping=ctx.stopping)
    if failed:
        log.warning("run %s failed: %s", run_id, error)
        ctx.executor.notify_closed(run_id)
    return failed


async def runs_of(session: AsyncSession, judgment_ids: Iterable[int]) -> set[str]:
    """Every open run that asked for any of these judgments (a judgment may serve several runs)."""
    ids = list(judgment_ids)
    runs: set[str] = set()
    for start in range(0, len(ids), 5000):
        rows = await session.execute(
            select(RunJudgment.run_id)
            .join(Run, Run.id == RunJudgment.run_id)
            .where(RunJudgment.judgment_id.in_(ids[start : start + 5000]), Run.status.in_(OPEN))
            .distinct()
        )
        runs.update(rows.scalars())
    return runs


async def run_closed(ctx: JobContext, run_id: str) -> bool:
    """True once the run is done or failed (or does not exist)."""
    async with ctx.sessions() as session:
        status = (await session.execute(select(Run.status).where(Run.id == run_id))).scalar_one_or_none()
    return status is None or status in ("done", "failed")


async def wait_closed(ctx: JobContext, run_id: str, event: asyncio.Event | None, poll_s: float) -> None:
    """Poll the run until it closes; `event` wakes the wait early when this process closed it."""
    while True:
        try:
            if await run_closed(ctx, run_id):
                return
        except Exception as exc:  # noqa: BLE001 - a lost database delays the answer, it does not fail it
            log.warning("waiting for run %s: %r", run_id, exc)
        if event is None:
            await asyncio.sleep(poll_s)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), poll_s)

"""The reaper: finds work that nothing is doing any more and queues it again, and closes complete runs.

It runs every `JUDGE_REAPER_INTERVAL_S` (a procrastinate periodic task in queue mode, a loop in
every API process in inprocess mode). A batch is lost when its lease ran out (its process died
or hung), or when it waits as queued with no process holding it and no job in the queue for it.
Judgments of an open run that no live batch covers (pending, or running under an expired lease)
get a new batch. A run whose work was lost is therefore finished within about
`JUDGE_LEASE_S + JUDGE_REAPER_INTERVAL_S` of the loss, without any restart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import String, and_, column, exists, or_, select, table, update
from sqlalchemy.ext.asyncio import AsyncSession

from judge_service.jobs.closing import OPEN, close_runs
from judge_service.jobs.context import JobContext
from judge_service.jobs.runs import add_batches
from judge_service.store.models import Judgment, Run, RunJudgment, WorkBatch, utcnow

log = logging.getLogger(__name__)
# procrastinate's job table, referenced only to ask whether a batch still has a job in the queue.
QUEUE_JOBS = table("procrastinate_jobs", column("queueing_lock"), column("status"))


@dataclass(frozen=True)
class Reaped:
    """What one pass did."""

    requeued: int = 0
    orphans: int = 0
    closed: int = 0


def lost_batches(now: datetime, grace: timedelta, queue: bool) -> object:
    """SQL condition for a batch that nothing works on and nothing will pick up."""
    expired = and_(WorkBatch.lease_until.is_not(None), WorkBatch.lease_until < now)
    # Queued with no process holding it: in the job queue (queue mode), or handed back on a stop.
    unheld = and_(WorkBatch.status == "queued", WorkBatch.lease_until.is_(None), WorkBatch.updated_at < now - grace)
    if queue:
        job = exists(
            select(QUEUE_JOBS.c.queueing_lock).where(
                QUEUE_JOBS.c.queueing_lock == WorkBatch.id,
                # an enum in PostgreSQL: compare its text
                QUEUE_JOBS.c.status.cast(String).in_(("todo", "doing")),
            )
        )
        unheld = and_(unheld, ~job)
    return and_(WorkBatch.status.in_(("queued", "running")), or_(expired, unheld))


async def _requeue_lost(ctx: JobContext, queue: bool) -> list[str]:
    now = utcnow()
    grace = timedelta(seconds=ctx.settings.lease_s)
    lost = lost_batches(now, grace, queue)
    async with ctx.sessions() as session, session.begin():
        ids = list((await session.execute(select(WorkBatch.id).where(lost).limit(1000))).scalars())  # type: ignore[arg-type]
        if not ids:
            return []
        owner, lease = ctx.executor.new_batch_claim(now)
        # Conditional: of two reapers racing, one takes each batch.
        taken = await session.execute(
            update(WorkBatch)
            .where(WorkBatch.id.in_(ids), lost)  # type: ignore[arg-type]
            .values(status="queued", owner=owner, lease_until=lease, attempts=WorkBatch.attempts + 1, updated_at=now)
            .returning(WorkBatch.id)
            .execution_options(synchronize_session=False)
        )
        return list(taken.scalars())


def _uncovered(now: datetime) -> object:
    return or_(Judgment.status == "pending", and_(Judgment.status == "running", Judgment.lease_until < now))


async def _cover_orphans(ctx: JobContext) -> list[str]:
    """New batches for open runs that have judgments left but no live batch."""
    now = utcnow()
    live = exists(select(WorkBatch.id).where(WorkBatch.run_id == Run.id, WorkBatch.status.in_(("queued", "running"))))
    async with ctx.sessions() as session, session.begin():
        runs = list((await session.execute(select(Run.id).where(Run.status.in_(OPEN), ~live))).scalars())
        batch_ids: list[str] = []
        for run_id in runs:
            orphans = await _orphans_of(session, run_id, now)
            if orphans:
                owner, lease = ctx.executor.new_batch_claim(now)
                log.warning("run %s: %d judgment(s) had no live batch; queueing them again", run_id, len(orphans))
                batch_ids += await add_batches(session, run_id, orphans, ctx.settings.batch_size, owner, lease)
        return batch_ids


async def _orphans_of(session: AsyncSession, run_id: str, now: datetime) -> list[int]:
    rows = await session.execute(
        select(Judgment.id)
        .join(RunJudgment, RunJudgment.judgment_id == Judgment.id)
        .where(RunJudgment.run_id == run_id, _uncovered(now))  # type: ignore[arg-type]
        .order_by(Judgment.pair_id, Judgment.repeat, Judgment.order)
    )
    return [int(i) for i in rows.scalars()]


async def _complete_runs(ctx: JobContext) -> list[str]:
    left = exists(
        select(RunJudgment.judgment_id)
        .join(Judgment, Judgment.id == RunJudgment.judgment_id)
        .where(RunJudgment.run_id == Run.id, Judgment.status.in_(OPEN))
    )
    async with ctx.sessions() as session:
        return list((await session.execute(select(Run.id).where(Run.status.in_(OPEN), ~left))).scalars())


async def reap(ctx: JobContext, *, queue: bool) -> Reaped:
    """One pass: queue lost batches again, cover orphaned judgments, close runs with nothing left."""
    requeued = await _requeue_lost(ctx, queue)
    orphans = await _cover_orphans(ctx)
    if requeued:
        log.warning("re-queued %d lost batch(es)", len(requeued))
    if requeued or orphans:
        await ctx.executor.enqueue(requeued + orphans)
    closed = await close_runs(ctx, await _complete_runs(ctx))
    return Reaped(len(requeued), len(orphans), len(closed))

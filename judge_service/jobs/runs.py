"""Creating a run: its pending judgments, its result set and its work batches, in the caller's transaction.

The one place that decides which judgments a run asks for and which result set their verdicts
land in; submission and re-judging both come through `create_run`.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from judge_service.engine.keys import judgment_key, seed_for
from judge_service.jobs.closing import close_run
from judge_service.jobs.context import JobContext
from judge_service.rubrics.render import Order
from judge_service.store import repo
from judge_service.store.models import Judgment, Run, RunJudgment, WorkBatch, utcnow
from judge_service.store.results import SetKey, result_set_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JudgingPlan:
    """What to judge each pair with: the pinned rubric and judge, mode, orders, repeats, purpose."""

    rubric_hash: str
    fingerprint_hash: str
    rubric_version_id: int
    fingerprint_id: int
    mode: str
    orders: tuple[Order, ...]
    repeats: int
    base_seed: int
    purpose: str = "judge"
    scope: str = ""


def judgment_rows(pair_ids: list[int], plan: JudgingPlan) -> list[dict[str, Any]]:
    """Pending judgment rows for every pair x repeat x order, keyed by `judgment_key`."""
    return [
        {
            "key": judgment_key(
                pair_id=pair_id,
                rubric_hash=plan.rubric_hash,
                fingerprint_hash=plan.fingerprint_hash,
                mode=plan.mode,
                order=order,
                repeat=repeat,
                purpose=plan.purpose,
                scope=plan.scope,
            ),
            "pair_id": pair_id,
            "rubric_version_id": plan.rubric_version_id,
            "fingerprint_id": plan.fingerprint_id,
            "purpose": plan.purpose,
            "mode": plan.mode,
            "order": order,
            "repeat": repeat,
            "seed": seed_for(plan.base_seed, repeat),
            "status": "pending",
        }
        for pair_id in pair_ids
        for repeat in range(plan.repeats)
        for order in plan.orders
    ]


def set_key(
    experiment_id: int, rubric_version_id: int, fingerprint_id: int, mode: str, purpose: str, run_id: str | None
) -> SetKey:
    """The result set a judgment's verdict belongs to: re-judges are one set per run, never mixed."""
    return SetKey(
        experiment_id,
        rubric_version_id=rubric_version_id,
        fingerprint_id=fingerprint_id,
        mode=mode,
        purpose=purpose,
        scope=(run_id or "") if purpose == "rejudge" else "",
    )


@dataclass
class RunRequest:
    """Everything `create_run` needs besides the session."""

    experiment_id: int
    pair_ids: list[int]
    plan: JudgingPlan
    options: dict[str, Any]
    batch_size: int
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    retry_failed: bool = False
    idempotency_key: str | None = None
    request_hash: str | None = None
    batch_owner: str | None = None
    batch_lease: datetime | None = None


@dataclass(frozen=True)
class NewRun:
    """A stored run and the batches that now wait to be judged (none: nothing left to judge)."""

    run_id: str
    batch_ids: list[str]


async def create_run(session: AsyncSession, request: RunRequest) -> NewRun:
    """Store the run, its judgments (existing keys are reused), its result set and its work batches."""
    plan = request.plan
    assert plan.scope in ("", request.run_id), "a scoped plan is scoped to its own run"
    session.add(
        Run(
            id=request.run_id,
            experiment_id=request.experiment_id,
            rubric_version_id=plan.rubric_version_id,
            fingerprint_id=plan.fingerprint_id,
            purpose=plan.purpose,
            mode=plan.mode,
            options=request.options,
            pair_ids=request.pair_ids,
            idempotency_key=request.idempotency_key,
            request_hash=request.request_hash,
        )
    )
    await session.flush()
    await repo.ensure_judgments(session, request.run_id, judgment_rows(request.pair_ids, plan), request.retry_failed)
    key = set_key(
        request.experiment_id, plan.rubric_version_id, plan.fingerprint_id, plan.mode, plan.purpose, request.run_id
    )
    await result_set_id(session, key)
    # Only judgments nobody holds: a pending row already claimed by another run's batch stays with it.
    todo = await session.execute(
        select(Judgment.id)
        .join(RunJudgment, RunJudgment.judgment_id == Judgment.id)
        .where(RunJudgment.run_id == request.run_id, Judgment.status == "pending")
        .order_by(Judgment.pair_id, Judgment.repeat, Judgment.order)
    )
    batch_ids = await add_batches(
        session, request.run_id, list(todo.scalars()), request.batch_size, request.batch_owner, request.batch_lease
    )
    return NewRun(request.run_id, batch_ids)


async def add_batches(
    session: AsyncSession,
    run_id: str,
    judgment_ids: list[int],
    batch_size: int,
    owner: str | None,
    lease_until: datetime | None,
) -> list[str]:
    """Cut judgments (in pair order, so a pair's orders share a batch) into queued work batches."""
    now = utcnow()
    rows: list[dict[str, Any]] = [
        {
            "id": str(uuid.uuid4()),
            "run_id": run_id,
            "judgment_ids": judgment_ids[start : start + batch_size],
            "status": "queued",
            "owner": owner,
            "lease_until": lease_until,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        for start in range(0, len(judgment_ids), batch_size)
    ]
    if repo.can_copy(session) and rows:
        columns = list(rows[0])
        records = [tuple(json.dumps(r[c]) if c == "judgment_ids" else r[c] for c in columns) for r in rows]
        await repo.copy_rows(session, "work_batches", columns, records)
        return [str(r["id"]) for r in rows]
    # Core rows with RETURNING: SQLAlchemy sends them a thousand per statement.
    table = cast(Table, WorkBatch.__table__)
    stmt = insert(table).returning(table.c.id)
    for start in range(0, len(rows), 2000):
        (await session.execute(stmt, rows[start : start + 2000])).all()
    return [str(r["id"]) for r in rows]


async def start_run(ctx: JobContext, new_run: NewRun) -> None:
    """After the run's transaction committed: hand its batches to the executor, or close it at once.

    A failure here loses nothing: the batches are stored, and the reaper queues them after a lease.
    """
    try:
        if new_run.batch_ids:
            await ctx.executor.enqueue(new_run.batch_ids)
        else:
            await close_run(ctx, new_run.run_id)
    except Exception:
        log.exception("run %s is stored but could not be started now; the reaper will start it", new_run.run_id)

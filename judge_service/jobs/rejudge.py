"""Re-judge a sample of stored pairs with the pinned judge and the original rubric version.

Re-judge judgments carry `purpose=rejudge` and their run id in the key, so they never mix into
the original win rate; each run is its own result set. When a run closes, `jobs/drift.py`
compares it with the original verdicts on the same sample, and drift raises an alert.
"""

from __future__ import annotations

import math
import uuid

import numpy as np
from sqlalchemy import select

from judge_service.engine.client import JudgeUnavailableError
from judge_service.jobs.context import JobContext
from judge_service.jobs.runs import JudgingPlan, RunRequest, create_run, start_run
from judge_service.jobs.submit import SubmitError
from judge_service.rubrics.render import ORDERS
from judge_service.store import repo
from judge_service.store.aggregate import find_result_set
from judge_service.store.models import Experiment, Judgment, Pair, PairResult, RubricVersionRow, utcnow


def sample_pairs(pair_ids: list[int], size: int | None, fraction: float | None, seed: int) -> list[int]:
    """A seeded sample without replacement: `size` pairs, else `fraction` of them, else all."""
    n = len(pair_ids)
    k = n if size is None and fraction is None else min(n, size if size is not None else math.ceil((fraction or 0) * n))
    rng = np.random.default_rng(seed)
    chosen = rng.choice(n, size=k, replace=False) if k < n else np.arange(n)
    return sorted(pair_ids[i] for i in chosen)


async def start_rejudge(
    ctx: JobContext,
    experiment: Experiment,
    *,
    rubric: str | None = None,
    sample_size: int | None = None,
    sample_fraction: float | None = None,
    schedule_id: int | None = None,
) -> str:
    """Create a re-judge run over a sample of the experiment's judged pairs and start it; returns its id."""
    async with ctx.sessions() as session:
        original = await find_result_set(session, experiment.id, rubric=rubric)
        if original is None:
            raise SubmitError(404, ["experiment"], f"experiment {experiment.name!r} has no judge results to re-judge")
        judged = await session.execute(
            select(PairResult.pair_id)
            .where(PairResult.result_set_id == original.id, PairResult.score.is_not(None))
            .order_by(PairResult.pair_id)
        )
        candidates = [int(p) for p in judged.scalars()]
        # Judge in the orders the original verdicts used: a one-order original re-judged in both
        # orders would "drift" by position bias alone.
        used = await session.execute(
            select(Judgment.order)
            .join(Pair, Pair.id == Judgment.pair_id)
            .where(
                Pair.experiment_id == experiment.id,
                Judgment.rubric_version_id == original.rubric_version_id,
                Judgment.fingerprint_id == original.fingerprint_id,
                Judgment.mode == original.mode,
                Judgment.purpose == "judge",
            )
            .distinct()
        )
        used_orders = set(used.scalars())
        orders = tuple(o for o in ORDERS if o in used_orders) or ORDERS
        rubric_row = await session.get(RubricVersionRow, original.rubric_version_id)
        assert rubric_row is not None
    run_id = str(uuid.uuid4())
    sample = sample_pairs(candidates, sample_size, sample_fraction, seed=uuid.UUID(run_id).int % (2**32))
    try:
        fingerprint = await ctx.client.fingerprint()
    except JudgeUnavailableError as exc:
        raise SubmitError(503, ["judge"], str(exc)) from exc
    owner, lease = ctx.executor.new_batch_claim(utcnow())
    async with ctx.sessions() as session, session.begin():
        fp_row = await repo.record_fingerprint(session, fingerprint)
        new_run = await create_run(
            session,
            RunRequest(
                experiment_id=experiment.id,
                pair_ids=sample,
                plan=JudgingPlan(
                    rubric_hash=rubric_row.content_hash,
                    fingerprint_hash=fingerprint.hash,
                    rubric_version_id=rubric_row.id,
                    fingerprint_id=fp_row.id,
                    mode=original.mode,
                    orders=orders,
                    repeats=1,
                    base_seed=ctx.settings.seed,
                    purpose="rejudge",
                    scope=run_id,
                ),
                options={"original_result_set": original.id, "schedule_id": schedule_id, "sample": len(sample)},
                batch_size=ctx.settings.batch_size,
                run_id=run_id,
                batch_owner=owner,
                batch_lease=lease,
            ),
        )
    await start_run(ctx, new_run)
    return run_id

"""Build the per-item answer of a run (and of a single pair) from stored judgments."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from judge_service.contract.judging import ItemResult, RunCounts, RunResult, Verdict
from judge_service.stats.pairs import DEFAULT_TIE_MARGIN, JudgmentPoint, summarize_pair, tie_margin_of
from judge_service.store import repo
from judge_service.store.models import (
    Experiment,
    JudgeFingerprint,
    Judgment,
    Pair,
    RubricVersionRow,
    Run,
    RunJudgment,
    utcnow,
)


def verdict_of(judgment: Judgment) -> Verdict:
    """API view of one stored judgment."""
    failed = judgment.status == "failed"
    return Verdict(
        order="base_first" if judgment.order == "base_first" else "ft_first",
        repeat=judgment.repeat,
        seed=judgment.seed,
        status="pending" if judgment.status == "running" else judgment.status,
        winner=judgment.winner,
        winner_slot=judgment.winner_slot,
        s_ft=judgment.s_ft,
        scores={s.dimension: {"base": s.base_score, "ft": s.ft_score} for s in judgment.scores},
        rationale=judgment.rationale,
        tags_base=list(judgment.tags_base or []),
        tags_ft=list(judgment.tags_ft or []),
        failure_reason=judgment.failure_reason,
        raw_reply=judgment.raw_reply if failed else None,
    )


def item_result(external_id: str, judgments: Iterable[Judgment], tie_margin: float = DEFAULT_TIE_MARGIN) -> ItemResult:
    """Aggregate one pair's judgments into its outcome (docs/statistics.md, "Pair score and outcome").

    A pair with an order that has no valid judgment (failed or still pending) has no score and no outcome.
    """
    judgments = list(judgments)
    valid = [j for j in judgments if j.status == "done" and j.s_ft is not None]
    summary = summarize_pair(
        (
            JudgmentPoint(j.order, float(j.s_ft or 0.0), {s.dimension: (s.base_score, s.ft_score) for s in j.scores})
            for j in valid
        ),
        asked_orders={j.order for j in judgments},
        tie_margin=tie_margin,
    )
    tags: dict[str, list[str]] = {"base": [], "ft": []}
    for j in valid:
        tags["base"].extend(t for t in j.tags_base or [] if t not in tags["base"])
        tags["ft"].extend(t for t in j.tags_ft or [] if t not in tags["ft"])
    return ItemResult(
        id=external_id,
        outcome=summary.outcome,
        score=summary.score,
        inconsistent=summary.inconsistent,
        dimensions={k: {"base": b, "ft": f, "diff": f - b} for k, (b, f) in summary.dimensions.items()},
        rationales=[j.rationale for j in valid if j.rationale],
        failure_tags=tags,
        verdicts=[verdict_of(j) for j in judgments if j.status != "failed"],
        failed=[verdict_of(j) for j in judgments if j.status == "failed"],
    )


async def live_status(session: AsyncSession, run: Run) -> str:
    """done or failed as stored; otherwise running only while some process holds a live claim on it.

    A run whose work nobody holds is "queued" (waiting for a worker, or for the reaper to notice
    that its worker died), never "running".
    """
    if run.status not in ("pending", "running"):
        return run.status
    working = await session.execute(
        select(func.count())
        .select_from(Judgment)
        .join(RunJudgment, RunJudgment.judgment_id == Judgment.id)
        .where(RunJudgment.run_id == run.id, Judgment.status == "running", Judgment.lease_until > utcnow())
    )
    return "running" if working.scalar_one() else "queued"


async def run_result(
    session: AsyncSession,
    run: Run,
    offset: int = 0,
    limit: int | None = None,
    tie_margin: float = DEFAULT_TIE_MARGIN,
) -> RunResult:
    """Status, counts and, once the run is done, its per-item results (paged by offset/limit).

    Outcomes use the experiment's tie margin (metadata `tie_margin`), else `tie_margin`.
    """
    experiment = await session.get(Experiment, run.experiment_id)
    rubric = await session.get(RubricVersionRow, run.rubric_version_id)
    fingerprint = await session.get(JudgeFingerprint, run.fingerprint_id)
    assert experiment is not None and rubric is not None and fingerprint is not None
    counts = await repo.run_counts(session, run.id)
    result = RunResult(
        run_id=run.id,
        status=await live_status(session, run),
        experiment=experiment.name,
        rubric=f"{rubric.name}@v{rubric.version}",
        judge={
            "model": fingerprint.model,
            "revision": fingerprint.revision,
            "decoding": fingerprint.decoding,
            "backend_version": fingerprint.backend_version,
            "dtype": fingerprint.dtype,
            "fingerprint": fingerprint.fingerprint_hash,
        },
        counts=RunCounts(**counts),
        error=run.error,
        created_at=repo.as_utc_iso(run.created_at),
        finished_at=repo.as_utc_iso(run.finished_at),
        items_total=len(run.pair_ids),
        offset=offset,
    )
    if run.status != "done":
        return result
    pair_ids = [int(p) for p in run.pair_ids][offset : None if limit is None else offset + limit]
    external = dict((await session.execute(select(Pair.id, Pair.external_id).where(Pair.id.in_(pair_ids)))).all())
    by_pair: dict[int, list[Judgment]] = {p: [] for p in pair_ids}
    for judgment in await repo.run_judgments(session, run.id, pair_ids):
        by_pair[judgment.pair_id].append(judgment)
    margin = tie_margin_of(experiment.meta, tie_margin)
    result.items = [item_result(external[p], by_pair[p], margin) for p in pair_ids]
    return result

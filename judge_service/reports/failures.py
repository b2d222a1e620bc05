"""Failure cases: the pairs FT lost most clearly, and failure-tag counts per side."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from judge_service.overlap.checks import NoOverlapCheckError, with_overlap_exclusion
from judge_service.reports.errors import ReportError
from judge_service.reports.winrate import describe_set
from judge_service.rubrics.models import FAILURE_TAGS
from judge_service.stats.pairs import DEFAULT_TIE_MARGIN, outcome_of
from judge_service.store.aggregate import (
    PairFilter,
    find_result_set,
    prepare_session,
    scoped_to_set,
    set_conditions,
)
from judge_service.store.models import Experiment, Judgment, Pair, PairDimensionResult, PairResult
from judge_service.store.results import TAG_BITS


async def failure_report(
    session: AsyncSession,
    experiment: Experiment,
    *,
    rubric: str | None = None,
    judge: str | None = None,
    flt: PairFilter | None = None,
    limit: int = 20,
    kind: str = "losses",
    tie_margin: float = DEFAULT_TIE_MARGIN,
) -> dict[str, Any]:
    """Lowest pair scores first, ties broken by the largest per-dimension deficit of FT.

    kind="incomplete": instead the pairs without a score because an order they were asked in has
    no valid judgment (docs/statistics.md), with the order means they do have and their failures.
    """
    await prepare_session(session)
    flt = flt or PairFilter()
    result_set = await find_result_set(session, experiment.id, rubric=rubric, judge=judge)
    if result_set is None:
        raise ReportError(404, f"experiment {experiment.name!r} has no judge results matching the filters")
    try:
        flt, excluded = await with_overlap_exclusion(session, experiment, flt, result_set.id)
    except NoOverlapCheckError as exc:
        raise ReportError(409, str(exc), ["query", "exclude"]) from exc
    tag_columns = [
        func.sum(case((PairResult.tags_base_mask.op("&")(bit) != 0, 1), else_=0)) for bit in TAG_BITS.values()
    ] + [func.sum(case((PairResult.tags_ft_mask.op("&")(bit) != 0, 1), else_=0)) for bit in TAG_BITS.values()]
    counts = (await session.execute(scoped_to_set(select(*tag_columns), result_set.id, flt, None))).one()
    k = len(FAILURE_TAGS)
    tag_counts = {
        "base": {t: int(counts[i] or 0) for i, t in enumerate(FAILURE_TAGS)},
        "ft": {t: int(counts[k + i] or 0) for i, t in enumerate(FAILURE_TAGS)},
    }
    if kind == "incomplete":
        return {
            "experiment": experiment.name,
            **await describe_set(session, result_set),
            "kind": kind,
            "excluded": excluded or {"overlap": None},
            "tag_counts": tag_counts,
            "cases": await _incomplete_cases(session, result_set.id, flt, limit),
        }
    deficit = func.min(PairDimensionResult.ft_mean - PairDimensionResult.base_mean).label("deficit")
    worst_select: Select[Any] = select(PairResult.pair_id, PairResult.score, deficit)  # type: ignore[assignment]
    worst = (
        scoped_to_set(
            worst_select.outerjoin(
                PairDimensionResult,
                and_(
                    PairDimensionResult.result_set_id == PairResult.result_set_id,
                    PairDimensionResult.pair_id == PairResult.pair_id,
                ),
            ).where(PairResult.score < 0.5 - tie_margin),
            result_set.id,
            flt,
            None,
        )
        .group_by(PairResult.pair_id, PairResult.score)
        .order_by(PairResult.score.asc(), deficit.asc(), PairResult.pair_id)
        .limit(limit)
    )
    rows = (await session.execute(worst)).all()
    pair_ids = [int(r[0]) for r in rows]
    pairs = {p.id: p for p in (await session.execute(select(Pair).where(Pair.id.in_(pair_ids)))).scalars()}
    dims = (
        await session.execute(
            select(PairDimensionResult).where(
                PairDimensionResult.result_set_id == result_set.id, PairDimensionResult.pair_id.in_(pair_ids)
            )
        )
    ).scalars()
    by_pair_dims: dict[int, dict[str, dict[str, float | None]]] = {}
    for d in dims:
        by_pair_dims.setdefault(d.pair_id, {})[d.dimension] = {"base": d.base_mean, "ft": d.ft_mean}
    judgments = (
        await session.execute(
            select(Judgment)
            .where(
                Judgment.pair_id.in_(pair_ids),
                Judgment.rubric_version_id == result_set.rubric_version_id,
                Judgment.fingerprint_id == result_set.fingerprint_id,
                Judgment.mode == result_set.mode,
                Judgment.purpose == result_set.purpose,
                Judgment.status == "done",
            )
            .order_by(Judgment.order, Judgment.repeat)
        )
    ).scalars()
    by_pair_judgments: dict[int, list[Judgment]] = {}
    for j in judgments:
        by_pair_judgments.setdefault(j.pair_id, []).append(j)
    cases = []
    for pair_id, score, worst_deficit in rows:
        pair = pairs[int(pair_id)]
        dimensions = by_pair_dims.get(pair.id, {})
        worst_dim = min(
            (d for d, v in dimensions.items() if v["base"] is not None and v["ft"] is not None),
            key=lambda d: (dimensions[d]["ft"] or 0) - (dimensions[d]["base"] or 0),
            default=None,
        )
        cases.append(
            {
                "id": pair.external_id,
                "score": float(score),
                "outcome": outcome_of(float(score), tie_margin),
                "worst_dimension": worst_dim,
                "worst_deficit": float(worst_deficit) if worst_deficit is not None else None,
                "dimensions": dimensions,
                "prompt": pair.prompt,
                "base_output": pair.base_output,
                "ft_output": pair.ft_output,
                "reference": pair.reference,
                "tags": pair.tags,
                "judgments": [
                    {
                        "order": j.order,
                        "repeat": j.repeat,
                        "winner": j.winner,
                        "rationale": j.rationale,
                        "tags_base": j.tags_base,
                        "tags_ft": j.tags_ft,
                    }
                    for j in by_pair_judgments.get(pair.id, [])
                ],
            }
        )
    return {
        "experiment": experiment.name,
        **await describe_set(session, result_set),
        "kind": kind,
        "tie_margin": tie_margin,
        "excluded": excluded or {"overlap": None},
        "tag_counts": tag_counts,
        "cases": cases,
    }


async def _incomplete_cases(session: AsyncSession, set_id: int, flt: PairFilter, limit: int) -> list[dict[str, Any]]:
    stmt = (
        select(
            Pair.external_id, PairResult.s_base_first, PairResult.s_ft_first, PairResult.n_valid, PairResult.n_failed
        )
        .select_from(PairResult)
        .join(Pair, Pair.id == PairResult.pair_id)
        .where(PairResult.score.is_(None), *set_conditions(set_id, flt))
    )
    rows = (await session.execute(stmt.order_by(Pair.external_id).limit(limit))).all()
    return [
        {
            "id": external_id,
            "order_scores": {k: v for k, v in (("base_first", bf), ("ft_first", ff)) if v is not None},
            "n_valid": int(n_valid),
            "n_failed": int(n_failed),
        }
        for external_id, bf, ff, n_valid, n_failed in rows
    ]

"""Keep pair results current: the per-pair aggregates that reports read instead of raw judgments."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from judge_service.rubrics.models import FAILURE_TAGS
from judge_service.stats.agreement import verdict_of_score
from judge_service.stats.pairs import JudgmentPoint, summarize_pair
from judge_service.store.models import Judgment, Label, Pair, PairDimensionResult, PairResult, ResultSet


def as_aware(value: datetime) -> datetime:
    """A UTC-aware datetime (naive ones are UTC by convention here)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


TAG_BITS = {tag: 1 << i for i, tag in enumerate(FAILURE_TAGS)}


@dataclass(frozen=True)
class SetKey:
    """Identity of a result set."""

    experiment_id: int
    source: str = "judge"
    rubric_version_id: int = 0
    fingerprint_id: int = 0
    mode: str = "reasoned"
    purpose: str = "judge"
    scope: str = ""


def tag_mask(tags: Iterable[str]) -> int:
    """Failure tags as a bit mask, so SQL can count them per side without JSON functions."""
    mask = 0
    for tag in tags:
        mask |= TAG_BITS.get(tag, 0)
    return mask


async def result_set_id(session: AsyncSession, key: SetKey) -> int:
    """Get or create the result set for `key`."""
    from judge_service.store.repo import insert_ignore  # repo imports this module's users

    values = key.__dict__
    await insert_ignore(session, ResultSet, [values], list(values))
    stmt = select(ResultSet.id).filter_by(**values)
    return int((await session.execute(stmt)).scalar_one())


async def _lock_pair(session: AsyncSession, pair_id: int) -> Pair:
    # Two judgments of one pair may finish at once; the row lock serializes their refreshes
    # (PostgreSQL). SQLite serializes all writers anyway and ignores FOR UPDATE.
    pair = (await session.execute(select(Pair).where(Pair.id == pair_id).with_for_update())).scalar_one()
    return pair


async def refresh_judge_pair(session: AsyncSession, set_id: int, key: SetKey, pair_id: int) -> None:
    """Recompute one pair's result from its judgments in the set."""
    pair = await _lock_pair(session, pair_id)
    stmt = (
        select(Judgment)
        .where(
            Judgment.pair_id == pair_id,
            Judgment.rubric_version_id == key.rubric_version_id,
            Judgment.fingerprint_id == key.fingerprint_id,
            Judgment.mode == key.mode,
            Judgment.purpose == key.purpose,
        )
        .options(selectinload(Judgment.scores))
    )
    if key.scope:
        stmt = stmt.where(Judgment.run_id == key.scope)
    judgments = list((await session.execute(stmt)).scalars())
    valid = [j for j in judgments if j.status == "done" and j.s_ft is not None]
    summary = summarize_pair(
        JudgmentPoint(j.order, float(j.s_ft or 0.0), {s.dimension: (s.base_score, s.ft_score) for s in j.scores})
        for j in valid
    )
    base_first, ft_first = summary.order_scores.get("base_first"), summary.order_scores.get("ft_first")
    agree = None
    if base_first is not None and ft_first is not None:
        agree = verdict_of_score(base_first) == verdict_of_score(ft_first)
    # SQLite hands back naive datetimes (stored in UTC) next to the aware ones just set.
    done_at = [as_aware(j.completed_at) for j in judgments if j.completed_at is not None]
    row = PairResult(
        result_set_id=set_id,
        pair_id=pair_id,
        score=summary.score,
        n_valid=len(valid),
        n_failed=sum(j.status == "failed" for j in judgments),
        s_base_first=base_first,
        s_ft_first=ft_first,
        inconsistent=summary.inconsistent,
        orders_agree=agree,
        a_picks=sum(j.winner_slot == "A" for j in valid),
        decisive=sum(j.winner_slot in ("A", "B") for j in valid),
        tags_base_mask=tag_mask(t for j in valid for t in j.tags_base or []),
        tags_ft_mask=tag_mask(t for j in valid for t in j.tags_ft or []),
        base_len=len(pair.base_output),
        ft_len=len(pair.ft_output),
        judged_at=max(done_at) if done_at else None,
    )
    dims: dict[str, list[tuple[int, int]]] = {}
    for j in valid:
        for s in j.scores:
            dims.setdefault(s.dimension, []).append((s.base_score, s.ft_score))
    dim_rows = [
        PairDimensionResult(
            result_set_id=set_id,
            pair_id=pair_id,
            dimension=d,
            base_mean=float(np.mean([b for b, _ in v])),
            ft_mean=float(np.mean([f for _, f in v])),
            score=float(np.mean([1.0 if f > b else 0.0 if f < b else 0.5 for b, f in v])),
            n=len(v),
        )
        for d, v in dims.items()
    ]
    await _replace(session, set_id, pair_id, row, dim_rows)


async def refresh_label_pair(session: AsyncSession, set_id: int, experiment_id: int, source: str, pair_id: int) -> None:
    """Recompute one pair's result from an imported label source (labels averaged like repeats)."""
    pair = await _lock_pair(session, pair_id)
    labels = list(
        (
            await session.execute(
                select(Label).where(
                    Label.pair_id == pair_id, Label.source == source, Label.experiment_id == experiment_id
                )
            )
        ).scalars()
    )
    overall = [lab.s_ft for lab in labels if not lab.dimension]
    latest: datetime | None = max((as_aware(lab.created_at) for lab in labels), default=None)
    row = PairResult(
        result_set_id=set_id,
        pair_id=pair_id,
        score=float(np.mean(overall)) if overall else None,
        n_valid=len(overall),
        base_len=len(pair.base_output),
        ft_len=len(pair.ft_output),
        judged_at=latest,
    )
    dims: dict[str, list[float]] = {}
    for lab in labels:
        if lab.dimension:
            dims.setdefault(lab.dimension, []).append(lab.s_ft)
    dim_rows = [
        PairDimensionResult(result_set_id=set_id, pair_id=pair_id, dimension=d, score=float(np.mean(v)), n=len(v))
        for d, v in dims.items()
    ]
    await _replace(session, set_id, pair_id, row, dim_rows)


async def _replace(
    session: AsyncSession, set_id: int, pair_id: int, row: PairResult, dim_rows: list[PairDimensionResult]
) -> None:
    await session.execute(delete(PairResult).where(PairResult.result_set_id == set_id, PairResult.pair_id == pair_id))
    await session.execute(
        delete(PairDimensionResult).where(
            PairDimensionResult.result_set_id == set_id, PairDimensionResult.pair_id == pair_id
        )
    )
    session.add(row)
    session.add_all(dim_rows)
    await session.flush()

"""Keep pair results current: the per-pair aggregates that reports read instead of raw judgments."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Float, Integer, case, cast, delete, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from judge_service.rubrics.models import FAILURE_TAGS
from judge_service.stats.agreement import verdict_of_score
from judge_service.stats.length import HALF_BINS, length_bin, length_diff
from judge_service.stats.pairs import JudgmentPoint, dimension_score, summarize_pair
from judge_service.store.models import (
    Base,
    DimensionRollup,
    Judgment,
    Label,
    Pair,
    PairDimensionResult,
    PairResult,
    PairResultRollup,
    ResultSet,
)


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


def repeat_counts(valid: list[Judgment]) -> tuple[int, int]:
    """(verdicts in order groups with 2+ valid repeats, how many of them equal their group's modal verdict)."""
    groups: dict[str, list[str]] = {}
    for j in valid:
        groups.setdefault(j.order, []).append(str(j.winner))
    total = matched = 0
    for verdicts in groups.values():
        if len(verdicts) >= 2:
            total += len(verdicts)
            matched += Counter(verdicts).most_common(1)[0][1]
    return total, matched


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
    # Every order with a judgment row was asked for: failed or pending ones leave the pair incomplete.
    summary = summarize_pair(
        (
            JudgmentPoint(j.order, float(j.s_ft or 0.0), {s.dimension: (s.base_score, s.ft_score) for s in j.scores})
            for j in valid
        ),
        asked_orders={j.order for j in judgments},
    )
    base_first, ft_first = summary.order_scores.get("base_first"), summary.order_scores.get("ft_first")
    agree = None
    if base_first is not None and ft_first is not None:
        agree = verdict_of_score(base_first) == verdict_of_score(ft_first)
    repeat_verdicts, repeat_matched = repeat_counts(valid)
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
        repeat_verdicts=repeat_verdicts,
        repeat_matched=repeat_matched,
        judged_at=max(done_at) if done_at else None,
    )
    dims: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for j in valid if summary.complete else []:  # an incomplete pair counts in no statistic
        for s in j.scores:
            dims.setdefault(s.dimension, {}).setdefault(j.order, []).append((s.base_score, s.ft_score))
    dim_rows = [
        PairDimensionResult(
            result_set_id=set_id,
            pair_id=pair_id,
            dimension=d,
            base_mean=summary.dimensions[d][0],
            ft_mean=summary.dimensions[d][1],
            score=dimension_score(per_order),
            n=sum(len(v) for v in per_order.values()),
        )
        for d, per_order in dims.items()
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


def length_diff_sql() -> ColumnElement[float]:
    """A pair result's normalised length difference (stats/length.py `length_diff`) in SQL."""
    pr = PairResult
    total = pr.ft_len + pr.base_len
    return case((total == 0, 0.0), else_=cast(pr.ft_len - pr.base_len, Float) / cast(total, Float))


def length_bin_sql(dialect: str) -> ColumnElement[int]:
    """The length bin (stats/length.py `length_bin`) in SQL: floor, since CAST rounds on PostgreSQL."""
    shifted = (length_diff_sql() + 1.0) * HALF_BINS + 0.5  # >= 0.5, so truncation is floor on SQLite
    if dialect == "postgresql":
        return cast(func.floor(shifted), Integer)
    return cast(shifted, Integer)


def _result_cell(row: PairResult, sign: int) -> dict[str, Any]:
    d = length_diff(row.base_len or 0, row.ft_len or 0)
    a, m = row.a_picks or 0, row.decisive or 0
    return {
        "result_set_id": row.result_set_id,
        "score": -1.0 if row.score is None else row.score,
        "inconsistent": bool(row.inconsistent),
        "orders_agree": -1 if row.orders_agree is None else int(row.orders_agree),
        "length_cmp": (row.ft_len > row.base_len) - (row.ft_len < row.base_len),
        "length_bin": length_bin(d),
        "pairs": sign,
        "n_failed": sign * (row.n_failed or 0),
        "a_picks": sign * a,
        "decisive": sign * m,
        "base_len": sign * (row.base_len or 0),
        "ft_len": sign * (row.ft_len or 0),
        "repeat_verdicts": sign * (row.repeat_verdicts or 0),
        "repeat_matched": sign * (row.repeat_matched or 0),
        "length_diff": sign * d,
        "decisive_pairs": sign * (m > 0),
        "a_picks_sq": sign * a * a,
        "decisive_sq": sign * m * m,
        "a_picks_decisive": sign * a * m,
    }


def _dimension_cell(row: PairDimensionResult, sign: int) -> dict[str, Any]:
    return {
        "result_set_id": row.result_set_id,
        "dimension": row.dimension,
        "base_mean": -1.0 if row.base_mean is None else row.base_mean,
        "ft_mean": -1.0 if row.ft_mean is None else row.ft_mean,
        "score": row.score,
        "pairs": sign,
    }


async def _add_cells(session: AsyncSession, model: type[Base], keys: list[str], cells: list[dict[str, Any]]) -> None:
    """Upsert rollup cells, adding the counts to what is there (negative counts take a pair out)."""
    if not cells:
        return
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    table = model.__table__
    # One global lock order over cells: concurrent refreshes then never wait on each other in a cycle.
    for cell in sorted(cells, key=lambda c: tuple(str(c[k]) for k in keys)):
        stmt = insert(model).values(cell)
        totals = {c: table.c[c] + stmt.excluded[c] for c in cell if c not in keys}
        await session.execute(stmt.on_conflict_do_update(index_elements=keys, set_=totals))


RESULT_KEYS = ["result_set_id", "score", "inconsistent", "orders_agree", "length_cmp", "length_bin"]
ROLLUP_SUMS = [
    "pairs",
    "n_failed",
    "a_picks",
    "decisive",
    "base_len",
    "ft_len",
    "length_diff",
    "decisive_pairs",
    "a_picks_sq",
    "decisive_sq",
    "a_picks_decisive",
    "repeat_verdicts",
    "repeat_matched",
]
DIMENSION_KEYS = ["result_set_id", "dimension", "base_mean", "ft_mean", "score"]


async def _replace(
    session: AsyncSession, set_id: int, pair_id: int, row: PairResult, dim_rows: list[PairDimensionResult]
) -> None:
    old = await session.get(PairResult, (set_id, pair_id))
    old_dims = list(
        (
            await session.execute(
                select(PairDimensionResult).where(
                    PairDimensionResult.result_set_id == set_id, PairDimensionResult.pair_id == pair_id
                )
            )
        ).scalars()
    )
    result_cells = ([_result_cell(old, -1)] if old is not None else []) + [_result_cell(row, 1)]
    dimension_cells = [_dimension_cell(d, -1) for d in old_dims] + [_dimension_cell(d, 1) for d in dim_rows]
    await _add_cells(session, PairResultRollup, RESULT_KEYS, result_cells)
    await _add_cells(session, DimensionRollup, DIMENSION_KEYS, dimension_cells)
    if old is not None:
        await session.delete(old)
    for d in old_dims:
        await session.delete(d)
    await session.flush()
    session.add(row)
    session.add_all(dim_rows)
    await session.flush()


async def rebuild_rollups(session: AsyncSession, set_id: int) -> None:
    """Recompute a result set's rollups from its pair results (after bulk loads, or to repair)."""
    await session.execute(delete(PairResultRollup).where(PairResultRollup.result_set_id == set_id))
    await session.execute(delete(DimensionRollup).where(DimensionRollup.result_set_id == set_id))
    pr = PairResult
    length_cmp = case((pr.ft_len > pr.base_len, 1), (pr.ft_len < pr.base_len, -1), else_=0)
    agree = case((pr.orders_agree.is_(None), -1), (pr.orders_agree.is_(True), 1), else_=0)
    score = func.coalesce(pr.score, -1.0)
    bin_ = length_bin_sql(session.get_bind().dialect.name)
    keys = (pr.result_set_id, score, pr.inconsistent, agree, length_cmp, bin_)
    a, m = func.coalesce(pr.a_picks, 0), func.coalesce(pr.decisive, 0)
    await session.execute(
        insert(PairResultRollup).from_select(
            [*RESULT_KEYS, *ROLLUP_SUMS],
            select(
                *keys,
                func.count(),
                func.coalesce(func.sum(pr.n_failed), 0),
                func.coalesce(func.sum(a), 0),
                func.coalesce(func.sum(m), 0),
                func.coalesce(func.sum(pr.base_len), 0),
                func.coalesce(func.sum(pr.ft_len), 0),
                func.sum(length_diff_sql()),
                func.sum(case((m > 0, 1), else_=0)),
                func.sum(a * a),
                func.sum(m * m),
                func.sum(a * m),
                func.coalesce(func.sum(pr.repeat_verdicts), 0),
                func.coalesce(func.sum(pr.repeat_matched), 0),
            )
            .where(pr.result_set_id == set_id)
            .group_by(*keys),
        )
    )
    d = PairDimensionResult
    dim_keys = (d.result_set_id, d.dimension, func.coalesce(d.base_mean, -1.0), func.coalesce(d.ft_mean, -1.0), d.score)
    await session.execute(
        insert(DimensionRollup).from_select(
            [*DIMENSION_KEYS, "pairs"],
            select(*dim_keys, func.count()).where(d.result_set_id == set_id).group_by(*dim_keys),
        )
    )


async def rescore_judge_sets(session: AsyncSession, experiment_id: int | None = None) -> int:
    """Recompute every judge pair result (and, through it, the rollups) from its judgments by the current rule.

    Pair results written before the order-mean rule (docs/statistics.md, "Pair score and outcome")
    scored a pair by the mean of all its judgments, even with one order failed. Returns the pairs rescored.
    """
    stmt = select(ResultSet).where(ResultSet.source == "judge")
    if experiment_id is not None:
        stmt = stmt.where(ResultSet.experiment_id == experiment_id)
    done = 0
    for result_set in list((await session.execute(stmt)).scalars()):
        key = SetKey(
            experiment_id=result_set.experiment_id,
            source=result_set.source,
            rubric_version_id=result_set.rubric_version_id,
            fingerprint_id=result_set.fingerprint_id,
            mode=result_set.mode,
            purpose=result_set.purpose,
            scope=result_set.scope,
        )
        pair_ids = (
            await session.execute(select(PairResult.pair_id).where(PairResult.result_set_id == result_set.id))
        ).scalars()
        for pair_id in list(pair_ids):
            await refresh_judge_pair(session, result_set.id, key, pair_id)
            done += 1
    return done

"""SQL aggregation for reports: histograms and sums over pair results, never raw judgments in Python."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from judge_service.rubrics.registry import parse_ref
from judge_service.stats.pairs import DEFAULT_TIE_MARGIN
from judge_service.store.models import (
    DimensionRollup,
    JudgeFingerprint,
    OverlapMatch,
    Pair,
    PairDimensionResult,
    PairResult,
    PairResultRollup,
    ResultSet,
    RubricVersionRow,
)
from judge_service.store.results import length_bin_sql, length_diff_sql

SliceValue = str | None


@dataclass(frozen=True)
class PairFilter:
    """Which pairs of a result set a report covers."""

    tags: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    since: datetime | None = None
    until: datetime | None = None
    # exclude=overlap: leave out the pairs flagged by the experiment's latest overlap check, bound
    # to that check's id by the report (overlap/checks.py) before any query runs.
    exclude_overlap: bool = False
    overlap_check_id: int | None = None

    @property
    def needs_pairs(self) -> bool:
        """True when the filter reads the pairs table."""
        return bool(self.tags or self.metadata)

    @property
    def filtered(self) -> bool:
        """True when the filter leaves out any pair of the set (so the rollups cannot answer)."""
        return bool(self.needs_pairs or self.since or self.until or self.exclude_overlap)


@dataclass
class DimensionData:
    """One dimension's pair-level aggregates: histogram of FT-Base differences and sums."""

    diff_values: list[float] = field(default_factory=list)
    diff_counts: list[int] = field(default_factory=list)
    n: int = 0
    base_sum: float = 0.0
    ft_sum: float = 0.0
    score_sum: float = 0.0
    n_means: int = 0


@dataclass
class SliceData:
    """Everything a win-rate block needs, aggregated in SQL."""

    score_values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    score_counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    sums: dict[str, float] = field(default_factory=dict)
    dimensions: dict[str, DimensionData] = field(default_factory=dict)
    # Length-controlled win rate input: one row per (length bin, pair score) cell of valid pairs,
    # columns mean normalised length difference, score, pair count.
    length_cells: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))


async def prepare_session(session: AsyncSession) -> None:
    """Per-transaction tuning for report queries."""
    if session.get_bind().dialect.name == "postgresql":
        # Compiling these short aggregate queries with JIT costs more than it saves.
        await session.execute(text("SET LOCAL jit = off"))


async def find_result_set(
    session: AsyncSession,
    experiment_id: int,
    *,
    source: str = "judge",
    rubric: str | None = None,
    judge: str | None = None,
    mode: str | None = None,
    purpose: str = "judge",
) -> ResultSet | None:
    """The newest result set matching the given rubric (`name` or `name@vN`), judge fingerprint prefix and mode."""
    stmt = select(ResultSet).where(
        ResultSet.experiment_id == experiment_id, ResultSet.source == source, ResultSet.purpose == purpose
    )
    if rubric:
        name, version = parse_ref(rubric)  # RubricError for a malformed reference (a 422 at the API)
        if version is not None and version > 2**31 - 1:
            return None  # no such version; PostgreSQL would refuse the integer
        rubric_ids = select(RubricVersionRow.id).where(RubricVersionRow.name == name)
        if version is not None:
            rubric_ids = rubric_ids.where(RubricVersionRow.version == version)
        stmt = stmt.where(ResultSet.rubric_version_id.in_(rubric_ids))
    if judge:
        judge_ids = select(JudgeFingerprint.id).where(
            JudgeFingerprint.fingerprint_hash.startswith(judge, autoescape=True)
        )
        stmt = stmt.where(ResultSet.fingerprint_id.in_(judge_ids))
    if mode:
        stmt = stmt.where(ResultSet.mode == mode)
    # Reasoned verdicts unless a mode is asked for, then the newest rubric version, then the
    # newest judge used with it.
    reasoned_first = case((ResultSet.mode == "reasoned", 0), else_=1)
    stmt = stmt.order_by(
        reasoned_first, ResultSet.rubric_version_id.desc(), ResultSet.fingerprint_id.desc(), ResultSet.id.desc()
    )
    return (await session.execute(stmt.limit(1))).scalars().first()


def slice_expression(key: str) -> ColumnElement[Any]:
    """A pair's value for a tag key, else for a metadata key, as text."""
    return func.coalesce(Pair.tags[key].as_string(), Pair.meta[key].as_string())


def set_conditions(set_id: int, flt: PairFilter) -> list[ColumnElement[bool]]:
    """WHERE conditions for the pair results of a set under a filter (tag/metadata ones need the pairs joined)."""
    conditions: list[ColumnElement[bool]] = [PairResult.result_set_id == set_id]
    for key, value in flt.tags.items():
        conditions.append(Pair.tags[key].as_string() == value)
    for key, value in flt.metadata.items():
        conditions.append(Pair.meta[key].as_string() == value)
    if flt.since is not None:
        conditions.append(PairResult.judged_at >= flt.since)
    if flt.until is not None:
        conditions.append(PairResult.judged_at < flt.until)
    if flt.exclude_overlap:
        if flt.overlap_check_id is None:
            raise ValueError("exclude_overlap needs the overlap check's id (overlap.checks.with_overlap_exclusion)")
        flagged = select(OverlapMatch.pair_id).where(OverlapMatch.check_id == flt.overlap_check_id)
        conditions.append(PairResult.pair_id.not_in(flagged))
    return conditions


def scoped_to_set(stmt: Select[Any], set_id: int, flt: PairFilter, group_by: str | None) -> Select[Any]:
    if flt.needs_pairs or group_by:
        stmt = stmt.join(Pair, Pair.id == PairResult.pair_id)
    return stmt.where(*set_conditions(set_id, flt))


async def aggregate(
    session: AsyncSession,
    set_id: int,
    flt: PairFilter,
    group_by: str | None = None,
    use_rollups: bool = True,
    tie_margin: float = DEFAULT_TIE_MARGIN,
) -> dict[SliceValue, SliceData]:
    """Histograms and sums for the whole set (key None) or per slice value of `group_by`.

    Unfiltered, ungrouped reports read the incrementally kept rollups (a few hundred rows
    whatever the experiment's size); anything filtered aggregates the pair results. Pairs without
    a score (incomplete) count in `pairs` only. `tie_margin` decides which pairs are decisive
    for the length sums (docs/statistics.md).
    """
    unfiltered = not (flt.filtered or group_by)
    if unfiltered and use_rollups:
        return {None: await _from_rollups(session, set_id, tie_margin)}
    # Without group_by everything is one slice (None); GROUP BY a constant is not portable SQL.
    keys: list[ColumnElement[Any]] = [slice_expression(group_by).label("slice")] if group_by else []
    k = len(keys)

    def slice_of(row: Any) -> SliceValue:
        return str(row[0]) if k and row[0] is not None else ("(none)" if k else None)

    out: dict[SliceValue, SliceData] = defaultdict(SliceData)
    hist = scoped_to_set(
        select(*keys, PairResult.score, func.count()).where(PairResult.score.is_not(None)), set_id, flt, group_by
    ).group_by(*keys, PairResult.score)
    grouped: dict[SliceValue, list[tuple[float, int]]] = defaultdict(list)
    for row in (await session.execute(hist)).all():
        grouped[slice_of(row)].append((float(row[k]), int(row[k + 1])))
    for value, rows in grouped.items():
        out[value].score_values = np.array([s for s, _ in rows], dtype=float)
        out[value].score_counts = np.array([c for _, c in rows], dtype=np.int64)

    win, loss = PairResult.score > 0.5 + tie_margin, PairResult.score < 0.5 - tie_margin
    decisive = or_(win, loss)
    longer_won = case(
        (
            or_(
                and_(PairResult.ft_len > PairResult.base_len, win),
                and_(PairResult.ft_len < PairResult.base_len, loss),
            ),
            1,
        ),
        else_=0,
    )
    length_decisive = case((and_(decisive, PairResult.ft_len != PairResult.base_len), 1), else_=0)
    columns = {
        "pairs": func.count(),
        "valid_pairs": func.count(PairResult.score),
        "failed_judgments": func.sum(PairResult.n_failed),
        "inconsistent": func.sum(case((PairResult.inconsistent, 1), else_=0)),
        "both_orders": func.count(PairResult.orders_agree),
        "orders_agree": func.sum(case((PairResult.orders_agree.is_(True), 1), else_=0)),
        "a_picks": func.sum(PairResult.a_picks),
        "decisive_verdicts": func.sum(PairResult.decisive),
        "base_len": func.sum(PairResult.base_len),
        "ft_len": func.sum(PairResult.ft_len),
        "longer_won": func.sum(longer_won),
        "length_decisive": func.sum(length_decisive),
        "repeat_verdicts": func.sum(PairResult.repeat_verdicts),
        "repeat_matched": func.sum(PairResult.repeat_matched),
        "decisive_pairs": func.sum(case((PairResult.decisive > 0, 1), else_=0)),
        "a_picks_sq": func.sum(PairResult.a_picks * PairResult.a_picks),
        "decisive_sq": func.sum(PairResult.decisive * PairResult.decisive),
        "a_picks_decisive": func.sum(PairResult.a_picks * PairResult.decisive),
    }
    sums = scoped_to_set(select(*keys, *columns.values()), set_id, flt, group_by).group_by(*keys)
    for row in (await session.execute(sums)).all():
        out[slice_of(row)].sums = {name: float(v or 0) for name, v in zip(columns, row[k:], strict=True)}

    bin_ = length_bin_sql(session.get_bind().dialect.name).label("length_bin")
    length_stmt = (
        scoped_to_set(
            select(*keys, bin_, PairResult.score, func.count(), func.sum(length_diff_sql())).where(
                PairResult.score.is_not(None)
            ),
            set_id,
            flt,
            group_by,
        )
        .group_by(*keys, bin_, PairResult.score)
        .order_by(*keys, bin_, PairResult.score)
    )
    cells: dict[SliceValue, list[tuple[float, float, int]]] = defaultdict(list)
    for row in (await session.execute(length_stmt)).all():
        _, score, count, d_sum = row[k:]
        cells[slice_of(row)].append((float(d_sum or 0.0) / int(count), float(score), int(count)))
    for value, rows_ in cells.items():
        out[value].length_cells = np.array(rows_, dtype=float)

    diff = (PairDimensionResult.ft_mean - PairDimensionResult.base_mean).label("diff")
    dim_stmt = select(
        *keys,
        PairDimensionResult.dimension,
        diff,
        func.count(),
        func.sum(PairDimensionResult.base_mean),
        func.sum(PairDimensionResult.ft_mean),
        func.sum(PairDimensionResult.score),
        func.count(PairDimensionResult.base_mean),
    ).where(PairDimensionResult.result_set_id == set_id)
    if flt.filtered or group_by:
        dim_stmt = dim_stmt.join(
            PairResult,
            and_(
                PairResult.result_set_id == PairDimensionResult.result_set_id,
                PairResult.pair_id == PairDimensionResult.pair_id,
            ),
        )
        dim_stmt = scoped_to_set(dim_stmt, set_id, flt, group_by)
    dim_stmt = dim_stmt.group_by(*keys, PairDimensionResult.dimension, diff)
    for row in (await session.execute(dim_stmt)).all():
        dimension, d, count, base_sum, ft_sum, score_sum, n_means = row[k:]
        data = out[slice_of(row)].dimensions.setdefault(dimension, DimensionData())
        if d is not None:
            data.diff_values.append(float(d))
            data.diff_counts.append(int(count))
        data.n += int(count)
        data.base_sum += float(base_sum or 0)
        data.ft_sum += float(ft_sum or 0)
        data.score_sum += float(score_sum or 0)
        data.n_means += int(n_means)
    return dict(out)


async def _from_rollups(session: AsyncSession, set_id: int, tie_margin: float) -> SliceData:
    out = SliceData()
    # Plain rows, not ORM objects: with length bins a set has hundreds of rollup rows, and identity-mapping
    # them costs more than the report's statistics.
    rows = (
        await session.execute(
            select(*PairResultRollup.__table__.columns).where(
                PairResultRollup.result_set_id == set_id, PairResultRollup.pairs != 0
            )
        )
    ).all()
    hist: dict[float, int] = defaultdict(int)
    sums: dict[str, float] = defaultdict(float)
    cells: dict[tuple[int, float], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for r in rows:
        valid = r.score >= 0
        if valid:
            hist[r.score] += r.pairs
            cell = cells[(r.length_bin, r.score)]
            cell[0] += r.length_diff
            cell[1] += r.pairs
        sums["pairs"] += r.pairs
        sums["valid_pairs"] += r.pairs if valid else 0
        sums["failed_judgments"] += r.n_failed
        sums["inconsistent"] += r.pairs if r.inconsistent else 0
        sums["both_orders"] += r.pairs if r.orders_agree >= 0 else 0
        sums["orders_agree"] += r.pairs if r.orders_agree == 1 else 0
        sums["a_picks"] += r.a_picks
        sums["decisive_verdicts"] += r.decisive
        sums["base_len"] += r.base_len
        sums["ft_len"] += r.ft_len
        sums["repeat_verdicts"] += r.repeat_verdicts
        sums["repeat_matched"] += r.repeat_matched
        decisive = valid and (r.score > 0.5 + tie_margin or r.score < 0.5 - tie_margin) and r.length_cmp != 0
        sums["length_decisive"] += r.pairs if decisive else 0
        sums["longer_won"] += r.pairs if decisive and (r.length_cmp > 0) == (r.score > 0.5) else 0
        for name in ("decisive_pairs", "a_picks_sq", "decisive_sq", "a_picks_decisive"):
            sums[name] += getattr(r, name)
    length_rows = [(d_sum / n, score, n) for (_, score), (d_sum, n) in sorted(cells.items()) if n > 0]
    if length_rows:
        out.length_cells = np.array(length_rows, dtype=float)
    if hist:
        values = sorted(hist)
        out.score_values = np.array(values, dtype=float)
        out.score_counts = np.array([hist[v] for v in values], dtype=np.int64)
    out.sums = dict(sums)
    dims = (
        await session.execute(
            select(DimensionRollup).where(DimensionRollup.result_set_id == set_id, DimensionRollup.pairs != 0)
        )
    ).scalars()
    diffs: dict[str, dict[float, int]] = defaultdict(lambda: defaultdict(int))
    for d in dims:
        data = out.dimensions.setdefault(d.dimension, DimensionData())
        data.n += d.pairs
        data.score_sum += d.score * d.pairs
        if d.base_mean >= 0 and d.ft_mean >= 0:
            data.n_means += d.pairs
            data.base_sum += d.base_mean * d.pairs
            data.ft_sum += d.ft_mean * d.pairs
            diffs[d.dimension][d.ft_mean - d.base_mean] += d.pairs
    for name, hist_d in diffs.items():
        values = sorted(hist_d)
        out.dimensions[name].diff_values = values
        out.dimensions[name].diff_counts = [hist_d[v] for v in values]
    return out

"""The win-rate report: SQL aggregates in, DESIGN.md statistics out."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from judge_service.reports.errors import ReportError
from judge_service.reports.offload import LIMITS, run_cpu
from judge_service.stats.winrate import bootstrap_mean_ci, win_rate_from_histogram
from judge_service.store.aggregate import PairFilter, SliceData, aggregate, find_result_set, prepare_session
from judge_service.store.models import Experiment, JudgeFingerprint, ResultSet, RubricVersionRow


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def _clean(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def block(data: SliceData, n_resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """One report block (overall or one slice) from its aggregates."""
    wr = win_rate_from_histogram(data.score_values, data.score_counts, n_resamples, seed)
    sums = data.sums
    pairs = int(sums.get("pairs", 0))
    out: dict[str, Any] = {
        "n_pairs": wr.n,
        "wins": wr.wins,
        "ties": wr.ties,
        "losses": wr.losses,
        "inconsistent": int(sums.get("inconsistent", 0)),
        "failed_judgments": int(sums.get("failed_judgments", 0)),
        "pairs_without_valid": pairs - int(sums.get("valid_pairs", 0)),
        "win_rate": _clean(wr.win_rate),
        "discrete_win_rate": _clean(wr.discrete_win_rate),
        "standard_error": _clean(wr.standard_error),
        "ci_low": _clean(wr.ci_low),
        "ci_high": _clean(wr.ci_high),
        "wilson_low": wr.wilson_low,
        "wilson_high": wr.wilson_high,
        "sign_test_p": wr.sign_test_p,
        "position_consistency": _ratio(sums.get("orders_agree", 0), sums.get("both_orders", 0)),
        "position_a_rate": _ratio(sums.get("a_picks", 0), sums.get("decisive_verdicts", 0)),
        "length": {
            "mean_base_chars": _ratio(sums.get("base_len", 0), pairs),
            "mean_ft_chars": _ratio(sums.get("ft_len", 0), pairs),
            "longer_won_rate": _ratio(sums.get("longer_won", 0), sums.get("length_decisive", 0)),
            "n_decisive_with_length_diff": int(sums.get("length_decisive", 0)),
        },
        "per_dimension": [],
    }
    for name, dim in sorted(data.dimensions.items()):
        entry: dict[str, Any] = {
            "dimension": name,
            "n": dim.n,
            "base_mean": _ratio(dim.base_sum, dim.n_means),
            "ft_mean": _ratio(dim.ft_sum, dim.n_means),
            "diff": None,
            "diff_ci_low": None,
            "diff_ci_high": None,
            "win_rate": _clean(100 * dim.score_sum / dim.n) if dim.n else None,
        }
        if dim.diff_counts:
            values, counts = np.array(dim.diff_values), np.array(dim.diff_counts, dtype=np.int64)
            entry["diff"] = float(counts @ values / counts.sum())
            low, high = bootstrap_mean_ci(values, counts, n_resamples, seed)
            entry["diff_ci_low"], entry["diff_ci_high"] = low, high
        out["per_dimension"].append(entry)
    return out


async def describe_set(session: AsyncSession, result_set: ResultSet) -> dict[str, Any]:
    """Rubric, judge fingerprint, source and mode of a result set."""
    rubric = await session.get(RubricVersionRow, result_set.rubric_version_id) if result_set.rubric_version_id else None
    judge = await session.get(JudgeFingerprint, result_set.fingerprint_id) if result_set.fingerprint_id else None
    return {
        "source": result_set.source,
        "rubric": f"{rubric.name}@v{rubric.version}" if rubric else None,
        "judge_fingerprint": judge.fingerprint_hash if judge else None,
        "judge_model": judge.model if judge else None,
        "mode": result_set.mode,
        "purpose": result_set.purpose,
    }


async def win_rate_report(
    session: AsyncSession,
    experiment: Experiment,
    *,
    source: str = "judge",
    rubric: str | None = None,
    judge: str | None = None,
    mode: str | None = None,
    flt: PairFilter | None = None,
    group_by: str | None = None,
    n_resamples: int = 2000,
) -> dict[str, Any]:
    """Win rate of FT over Base for one experiment and result set, overall and per slice."""
    await prepare_session(session)
    flt = flt or PairFilter()
    result_set = await find_result_set(session, experiment.id, source=source, rubric=rubric, judge=judge, mode=mode)
    if result_set is None:
        raise ReportError(
            404, f"experiment {experiment.name!r} has no results from source {source!r} matching the filters"
        )
    data = await aggregate(session, result_set.id, flt, group_by)
    report: dict[str, Any] = {
        "experiment": experiment.name,
        "base_model": experiment.base_model,
        "ft_model": experiment.ft_model,
        **await describe_set(session, result_set),
        "filters": {
            "tags": flt.tags,
            "metadata": flt.metadata,
            "since": flt.since.isoformat() if flt.since else None,
            "until": flt.until.isoformat() if flt.until else None,
        },
        "group_by": group_by,
    }
    if group_by:
        if len(data) > LIMITS.max_slices:
            raise ReportError(
                422,
                f"group_by {group_by!r} has {len(data)} values; the limit is {LIMITS.max_slices} "
                "(JUDGE_MAX_REPORT_SLICES): slice by a coarser key or filter first",
                ["query", "group_by"],
            )
        everything = await aggregate(session, result_set.id, flt, None)
        report["overall"], report["slices"] = await run_cpu(
            _blocks, everything.get(None, SliceData()), data, n_resamples
        )
    else:
        report["overall"] = await run_cpu(block, data.get(None, SliceData()), n_resamples)
        report["slices"] = []
    return report


def _blocks(
    overall: SliceData, slices: dict[str | None, SliceData], n_resamples: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The overall block and one per slice value (CPU work: bootstrap CIs), in slice-value order."""
    ordered = sorted(slices.items(), key=lambda kv: str(kv[0]))
    return block(overall, n_resamples), [{"value": value, **block(d, n_resamples)} for value, d in ordered]

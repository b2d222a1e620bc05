"""The win-rate report: SQL aggregates in, the statistics of docs/statistics.md out, with warnings and a conclusion."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from judge_service.overlap.checks import NoOverlapCheckError, with_overlap_exclusion
from judge_service.reports.errors import ReportError
from judge_service.reports.generation import generation_check, generation_warnings, summarize
from judge_service.reports.offload import LIMITS, run_cpu
from judge_service.reports.warnings import (
    Thresholds,
    decide,
    dimension_verdict,
    judge_label_kappa,
    judge_warnings,
    label_agreement_warning,
    warning,
)
from judge_service.stats.length import length_controlled_win_rate
from judge_service.stats.pairs import DEFAULT_TIE_MARGIN, tie_margin_of
from judge_service.stats.position import slot_a_share
from judge_service.stats.winrate import bootstrap_mean_ci, win_rate_from_histogram
from judge_service.store.aggregate import PairFilter, SliceData, aggregate, find_result_set, prepare_session
from judge_service.store.models import Experiment, JudgeFingerprint, ResultSet, RubricVersionRow


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def _clean(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def position_and_length(data: SliceData) -> dict[str, Any]:
    """Slot-A share clustered by pair and the length-controlled win rate (docs/statistics.md)."""
    sums = data.sums
    share = slot_a_share(
        sums.get("a_picks", 0),
        sums.get("decisive_verdicts", 0),
        sums.get("a_picks_sq", 0),
        sums.get("decisive_sq", 0),
        sums.get("a_picks_decisive", 0),
        int(sums.get("decisive_pairs", 0)),
    )
    cells = data.length_cells
    lc = length_controlled_win_rate(cells[:, 0], cells[:, 1], cells[:, 2])
    return {
        "position_a_rate": share.rate,
        "position_a_ci_low": share.ci_low,
        "position_a_ci_high": share.ci_high,
        "position_a_pairs": share.n_pairs,
        "length_controlled": lc.as_dict(),
    }


def block(
    data: SliceData,
    n_resamples: int = 2000,
    seed: int = 0,
    *,
    tie_margin: float = DEFAULT_TIE_MARGIN,
    limits: Thresholds | None = None,
    judged: bool = True,
    extra_warnings: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One report block (overall or one slice) from its aggregates, with its warnings and conclusion.

    Every number is defined in docs/statistics.md.
    """
    limits = limits or Thresholds()
    wr = win_rate_from_histogram(data.score_values, data.score_counts, tie_margin)
    sums = data.sums
    pairs = int(sums.get("pairs", 0))
    repeat_verdicts = sums.get("repeat_verdicts", 0)
    out: dict[str, Any] = {
        "conclusion": None,
        "warnings": [],
        "n_pairs": wr.n,
        "n_complete_pairs": wr.n,
        "incomplete_pairs": pairs - int(sums.get("valid_pairs", 0)),
        "tie_margin": tie_margin,
        "wins": wr.wins,
        "ties": wr.ties,
        "losses": wr.losses,
        "inconsistent": int(sums.get("inconsistent", 0)),
        "failed_judgments": int(sums.get("failed_judgments", 0)),
        "win_rate": wr.win_rate,
        "discrete_win_rate": wr.discrete_win_rate,
        "standard_error": wr.standard_error,
        "ci_low": wr.ci_low,
        "ci_high": wr.ci_high,
        "decisive": asdict(wr.decisive),
        "position_consistency": _ratio(sums.get("orders_agree", 0), sums.get("both_orders", 0)),
        "pairs_with_both_orders": int(sums.get("both_orders", 0)),
        **position_and_length(data),
        "repeat_agreement": _ratio(sums.get("repeat_matched", 0), repeat_verdicts),
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
            "n_decisive": 0,
            "base_mean": _ratio(dim.base_sum, dim.n_means),
            "ft_mean": _ratio(dim.ft_sum, dim.n_means),
            "diff": None,
            "diff_ci_low": None,
            "diff_ci_high": None,
            "win_rate": _clean(100 * dim.score_sum / dim.n) if dim.n else None,
        }
        if dim.diff_counts:
            values, counts = np.array(dim.diff_values), np.array(dim.diff_counts, dtype=np.int64)
            entry["n_decisive"] = int(counts[values != 0].sum())
            entry["diff"] = float(counts @ values / counts.sum())
            if counts.sum() >= 2:  # one pair has no spread to resample: the CI is undefined, not [diff, diff]
                low, high = bootstrap_mean_ci(values, counts, n_resamples, seed)
                entry["diff_ci_low"], entry["diff_ci_high"] = low, high
        out["per_dimension"].append(entry)
    out["warnings"] = judge_warnings(out, limits, judged=judged) + list(extra_warnings or [])
    out["conclusion"] = decide(out)
    for entry in out["per_dimension"]:
        dimension_verdict(entry, out, limits)
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
    tie_margin: float | None = None,
    default_tie_margin: float = DEFAULT_TIE_MARGIN,
    min_decisive_pairs: int = 10,
) -> dict[str, Any]:
    """Win rate of FT over Base for one experiment and result set, overall and per slice.

    Tie margin: `tie_margin` if given, else the experiment's (metadata `tie_margin`), else
    `default_tie_margin` (the JUDGE_TIE_MARGIN setting).
    """
    await prepare_session(session)
    flt = flt or PairFilter()
    margin = tie_margin if tie_margin is not None else tie_margin_of(experiment.meta, default_tie_margin)
    limits = Thresholds(min_decisive_pairs=min_decisive_pairs)
    result_set = await find_result_set(session, experiment.id, source=source, rubric=rubric, judge=judge, mode=mode)
    if result_set is None:
        raise ReportError(
            404, f"experiment {experiment.name!r} has no results from source {source!r} matching the filters"
        )
    try:
        flt, excluded = await with_overlap_exclusion(session, experiment, flt, result_set.id)
    except NoOverlapCheckError as exc:
        raise ReportError(409, str(exc), ["query", "exclude"]) from exc
    judged = source == "judge"
    overall_extra: list[dict[str, Any]] = []
    if excluded and excluded["overlap"]["unchecked_pairs"]:
        overlap = excluded["overlap"]
        overall_extra.append(
            warning(
                "overlap_unchecked",
                f"{overlap['unchecked_pairs']} pairs were added after overlap check {overlap['check_id']}: "
                "their prompts were never compared with the training data; run the check again",
                overlap["unchecked_pairs"],
                0,
                False,
            )
        )
    if judged:
        kappa, n_labelled = await judge_label_kappa(session, experiment.id, result_set.id)
        label = label_agreement_warning(kappa, n_labelled, limits)
        overall_extra += [label] if label else []

    # Keyword options for `block`: plain values, so the statistics can run in a report worker process.
    options: dict[str, Any] = {"tie_margin": margin, "limits": limits, "judged": judged}

    data = await aggregate(session, result_set.id, flt, group_by, tie_margin=margin)
    everything = await aggregate(session, result_set.id, flt, None, tie_margin=margin) if group_by else data
    n_pairs = int(everything.get(None, SliceData()).sums.get("pairs", 0))
    if experiment.has_pair_generation:
        generation = await generation_check(session, result_set.id, flt)
    else:  # no pair of the experiment was sent with settings: every pair is unknown, no query needed
        generation = summarize([(None, n_pairs)] if n_pairs else [])
    generation["experiment"] = {"base": experiment.base_generation, "ft": experiment.ft_generation}
    overall_extra = generation_warnings(generation) + overall_extra
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
            "exclude": ["overlap"] if flt.exclude_overlap else [],
        },
        "excluded": excluded or {"overlap": None},
        "generation": generation,
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
        report["overall"], report["slices"] = await run_cpu(
            _blocks, everything.get(None, SliceData()), data, n_resamples, overall_extra, options
        )
    else:
        report["overall"] = await run_cpu(
            block, data.get(None, SliceData()), n_resamples, extra_warnings=overall_extra, **options
        )
        report["slices"] = []
    report["conclusion"] = report["overall"]["conclusion"]
    report["tie_margin"] = margin
    return report


def _blocks(
    overall: SliceData,
    slices: dict[str | None, SliceData],
    n_resamples: int,
    overall_extra: list[dict[str, Any]],
    options: dict[str, Any],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The overall block and one per slice value (CPU work: bootstrap CIs), in slice-value order."""
    ordered = sorted(slices.items(), key=lambda kv: str(kv[0]))
    first = block(overall, n_resamples, extra_warnings=overall_extra, **options)
    return first, [{"value": value, **block(d, n_resamples, **options)} for value, d in ordered]

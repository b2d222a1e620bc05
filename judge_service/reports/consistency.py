"""Consistency report: position consistency and bias, agreement across repeats, score spread, flips."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from judge_service.reports.errors import ReportError
from judge_service.reports.winrate import describe_set
from judge_service.stats.agreement import fleiss_kappa
from judge_service.stats.position import slot_a_share
from judge_service.store.aggregate import PairFilter, aggregate, find_result_set, prepare_session
from judge_service.store.models import Experiment, Judgment, JudgmentScore, Pair


def repeat_agreement(groups: dict[tuple[int, str], list[str]]) -> tuple[float | None, int]:
    """Share of verdicts equal to their (pair, order) group's modal verdict, over groups with 2+ repeats."""
    matched = total = 0
    for verdicts in groups.values():
        if len(verdicts) >= 2:
            matched += Counter(verdicts).most_common(1)[0][1]
            total += len(verdicts)
    return (matched / total if total else None), total


def repeat_kappa(groups: dict[tuple[int, str], list[str]]) -> tuple[float | None, int, int]:
    """Fleiss' κ across repeats: items are (pair, order) groups, raters are repeats (most common count)."""
    sizes = Counter(len(v) for v in groups.values() if len(v) >= 2)
    if not sizes:
        return None, 0, 0
    k = sizes.most_common(1)[0][0]
    items = [v for v in groups.values() if len(v) == k]
    return fleiss_kappa(items), len(items), k


async def consistency_report(
    session: AsyncSession,
    experiment: Experiment,
    *,
    rubric: str | None = None,
    judge: str | None = None,
    mode: str | None = None,
    top: int = 10,
) -> dict[str, Any]:
    """How far the judge agrees with itself: across answer orders and across repeats of one order."""
    await prepare_session(session)
    result_set = await find_result_set(session, experiment.id, rubric=rubric, judge=judge, mode=mode)
    if result_set is None:
        raise ReportError(404, f"experiment {experiment.name!r} has no judge results matching the filters")
    sums = (await aggregate(session, result_set.id, PairFilter())).get(None)
    totals = sums.sums if sums else {}
    in_set = (
        Judgment.rubric_version_id == result_set.rubric_version_id,
        Judgment.fingerprint_id == result_set.fingerprint_id,
        Judgment.mode == result_set.mode,
        Judgment.purpose == "judge",
        Judgment.status == "done",
        Pair.experiment_id == experiment.id,
    )
    rows = (
        await session.execute(
            select(Judgment.id, Judgment.pair_id, Pair.external_id, Judgment.order, Judgment.repeat, Judgment.winner)
            .join(Pair, Pair.id == Judgment.pair_id)
            .where(*in_set)
            .order_by(Judgment.pair_id, Judgment.order, Judgment.repeat)
        )
    ).all()
    groups: dict[tuple[int, str], list[str]] = defaultdict(list)
    by_pair: dict[int, list[tuple[str, int, str]]] = defaultdict(list)
    names: dict[int, str] = {}
    for _, pair_id, external_id, order, repeat, winner in rows:
        groups[(pair_id, order)].append(str(winner))
        by_pair[pair_id].append((order, repeat, str(winner)))
        names[pair_id] = external_id
    agreement, n_repeat_verdicts = repeat_agreement(groups)
    kappa, kappa_items, kappa_raters = repeat_kappa(groups)

    spread: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"base": [], "ft": []})
    score_rows = await session.execute(
        select(Judgment.pair_id, JudgmentScore.dimension, JudgmentScore.base_score, JudgmentScore.ft_score)
        .join(Judgment, Judgment.id == JudgmentScore.judgment_id)
        .join(Pair, Pair.id == Judgment.pair_id)
        .where(*in_set)
    )
    per_pair: dict[tuple[int, str], tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for pair_id, dimension, base, ft in score_rows.all():
        per_pair[(pair_id, dimension)][0].append(base)
        per_pair[(pair_id, dimension)][1].append(ft)
    for (_, dimension), (base_scores, ft_scores) in per_pair.items():
        if len(base_scores) >= 2:
            spread[dimension]["base"].append(float(np.std(base_scores)))
            spread[dimension]["ft"].append(float(np.std(ft_scores)))
    flips: list[dict[str, Any]] = []
    for pair_id, verdicts in by_pair.items():
        counts = Counter(v for _, _, v in verdicts)
        modal = counts.most_common(1)[0][1]
        if len(counts) > 1:
            flips.append(
                {
                    "id": names[pair_id],
                    "judgments": len(verdicts),
                    "flip_share": 1 - modal / len(verdicts),
                    "verdicts": [{"order": o, "repeat": r, "winner": w} for o, r, w in verdicts],
                }
            )
    flips.sort(key=lambda f: (-f["flip_share"], -f["judgments"], f["id"]))
    decisive = int(totals.get("decisive_verdicts", 0))
    share = slot_a_share(
        totals.get("a_picks", 0),
        decisive,
        totals.get("a_picks_sq", 0),
        totals.get("decisive_sq", 0),
        totals.get("a_picks_decisive", 0),
        int(totals.get("decisive_pairs", 0)),
    )
    both = totals.get("both_orders", 0)
    return {
        "experiment": experiment.name,
        **await describe_set(session, result_set),
        "pairs": int(totals.get("pairs", 0)),
        "position_consistency": (totals.get("orders_agree", 0) / both) if both else None,
        "pairs_with_both_orders": int(both),
        "inconsistent_pairs": int(totals.get("inconsistent", 0)),
        "position_bias": {
            "slot_a_rate": share.rate,
            "ci_low": share.ci_low,
            "ci_high": share.ci_high,
            "decisive_verdicts": decisive,
            "pairs": share.n_pairs,  # the CI is clustered by pair (docs/statistics.md, "Position bias")
        },
        "repeat_agreement": agreement,
        "repeat_verdicts": n_repeat_verdicts,
        "repeat_fleiss_kappa": kappa,
        "repeat_kappa_items": kappa_items,
        "repeats_per_item": kappa_raters,
        "score_spread": {
            d: {"base": float(np.mean(v["base"])), "ft": float(np.mean(v["ft"])), "pairs": len(v["ft"])}
            for d, v in sorted(spread.items())
        },
        "most_flipped": flips[:top],
    }

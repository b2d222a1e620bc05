"""Warnings and the conclusion of a win-rate block: what the judgments can and cannot carry.

Rules and thresholds: docs/statistics.md, "Warnings" and "Conclusion". Other features add a
warning by appending a `warning(...)` dict to `block["warnings"]` before `decide` runs;
only blocking warnings change the conclusion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from judge_service.stats.agreement import pairwise_agreement, verdict_of_score
from judge_service.store.models import Label, PairResult

Conclusion = Literal["ft_better", "base_better", "no_significant_difference", "not_enough_evidence"]
CONCLUSIONS: tuple[Conclusion, ...] = ("ft_better", "base_better", "no_significant_difference", "not_enough_evidence")

# What a conclusion means in words; the dashboard, the CLI and exports show these and nothing else as the verdict.
CONCLUSION_TEXT: dict[str, str] = {
    "ft_better": "FT is better than Base",
    "base_better": "Base is better than FT",
    "no_significant_difference": "No significant difference between FT and Base",
    "not_enough_evidence": "Not enough evidence to tell FT and Base apart",
}


@dataclass(frozen=True)
class Thresholds:
    """Documented limits (docs/statistics.md, "Warnings")."""

    min_decisive_pairs: int = 10
    min_position_consistency: float = 0.6  # MT-Bench: GPT-4 agrees with itself across orders ~65% (Zheng et al. 2023)
    position_band: tuple[float, float] = (0.35, 0.65)  # slot-A share outside this band, CI excluding 0.5: blocking
    min_repeat_agreement: float = 0.6
    min_label_kappa: float = 0.4  # Cohen's κ below 0.4: at most "fair" agreement (Landis & Koch 1977)
    max_longer_won: float = 0.7
    min_length_pairs: int = 10


def warning(code: str, message: str, value: float | None, threshold: float | None, blocking: bool) -> dict[str, Any]:
    """One warning in the report's shape."""
    return {
        "code": code,
        "message": message,
        "value": None if value is None else float(value),
        "threshold": None if threshold is None else float(threshold),
        "blocking": blocking,
    }


def judge_warnings(
    block: dict[str, Any],
    limits: Thresholds,
    *,
    judged: bool = True,
) -> list[dict[str, Any]]:
    """Warnings for one block (overall or a slice) from its numbers.

    `judged`: the block comes from the service's judge (orders, repeats); imported labels have
    neither, so the position and repeat checks do not apply to them.
    """
    out: list[dict[str, Any]] = []
    decisive_n = int(block["decisive"]["n"])
    if decisive_n < limits.min_decisive_pairs:
        out.append(
            warning(
                "few_pairs",
                f"only {decisive_n} complete pairs were decided (win or loss beyond the tie margin); "
                f"a conclusion needs at least {limits.min_decisive_pairs}",
                decisive_n,
                limits.min_decisive_pairs,
                True,
            )
        )
    if judged:
        out.extend(_position_warnings(block, limits))
    incomplete = int(block.get("incomplete_pairs") or 0)
    if incomplete:
        out.append(
            warning(
                "incomplete_pairs",
                f"{incomplete} pairs lack a valid judgment in an order they were asked in; "
                "they are left out of every statistic (list them with GET /reports/failures?kind=incomplete)",
                incomplete,
                0,
                False,
            )
        )
    failed = int(block.get("failed_judgments") or 0)
    if failed:
        out.append(warning("judge_failures", f"{failed} judgments failed (no valid verdict)", failed, 0, False))
    repeat = block.get("repeat_agreement")
    if judged and repeat is not None and repeat < limits.min_repeat_agreement:
        out.append(
            warning(
                "low_repeat_agreement",
                f"repeats of the same pair and order agree on {100 * repeat:.0f}% of verdicts "
                f"(below {100 * limits.min_repeat_agreement:.0f}%)",
                repeat,
                limits.min_repeat_agreement,
                False,
            )
        )
    length = block.get("length") or {}
    longer, n_len = length.get("longer_won_rate"), int(length.get("n_decisive_with_length_diff") or 0)
    if longer is not None and n_len >= limits.min_length_pairs and longer > limits.max_longer_won:
        out.append(
            warning(
                "length_bias",
                f"the longer answer won {100 * longer:.0f}% of {n_len} decided pairs whose answers differ in length",
                longer,
                limits.max_longer_won,
                False,
            )
        )
    return out


def label_agreement_warning(kappa: float | None, n_pairs: int, limits: Thresholds) -> dict[str, Any] | None:
    """low_label_agreement when the judge's Cohen's κ against human labels is below the limit."""
    if kappa is None or kappa >= limits.min_label_kappa:
        return None
    return warning(
        "low_label_agreement",
        f"the judge agrees with human labels at Cohen's κ = {kappa:.2f} on {n_pairs} pairs "
        f"(below {limits.min_label_kappa})",
        kappa,
        limits.min_label_kappa,
        False,
    )


def _position_warnings(block: dict[str, Any], limits: Thresholds) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    consistency = block.get("position_consistency")
    if consistency is not None and consistency < limits.min_position_consistency:
        out.append(
            warning(
                "low_position_consistency",
                f"the judge gives the same verdict in both answer orders for only {100 * consistency:.0f}% of pairs "
                f"(below {100 * limits.min_position_consistency:.0f}%)",
                consistency,
                limits.min_position_consistency,
                True,
            )
        )
    rate, low, high = block.get("position_a_rate"), block.get("position_a_ci_low"), block.get("position_a_ci_high")
    if rate is not None and low is not None and high is not None and (low > 0.5 or high < 0.5):
        lo_band, hi_band = limits.position_band
        blocking = not lo_band <= rate <= hi_band
        out.append(
            warning(
                "position_bias",
                f"the judge picks the answer shown first in {100 * rate:.0f}% of decisive verdicts "
                f"(95% CI [{100 * low:.0f}%, {100 * high:.0f}%] excludes 50%)"
                + ("" if blocking else f"; within [{100 * lo_band:.0f}%, {100 * hi_band:.0f}%], so not blocking"),
                rate,
                hi_band if rate > 0.5 else lo_band,
                blocking,
            )
        )
    if int(block.get("n_pairs") or 0) and not int(block.get("pairs_with_both_orders") or 0):
        out.append(
            warning(
                "position_unchecked",
                "no pair was judged in both answer orders (swap off): position bias cannot be measured or cancelled",
                None,
                None,
                False,
            )
        )
    return out


def decide(block: dict[str, Any]) -> Conclusion:
    """The block's conclusion from its headline CI, its decisive pairs and its warnings (few_pairs included)."""
    if any(w["blocking"] for w in block["warnings"]):
        return "not_enough_evidence"
    low, high = block.get("ci_low"), block.get("ci_high")
    if low is None or high is None:
        return "not_enough_evidence"
    if low > 50:
        return "ft_better"
    if high < 50:
        return "base_better"
    return "no_significant_difference"


def dimension_verdict(entry: dict[str, Any], block: dict[str, Any], limits: Thresholds) -> None:
    """Conclusion and warnings of one dimension: its FT − Base difference CI against 0, its decided pairs.

    The block's blocking warnings (judge trust, too few decisive pairs overall) hold for every dimension.
    """
    inherited = [w for w in block["warnings"] if w["blocking"] and w["code"] != "few_pairs"]
    own: list[dict[str, Any]] = []
    n = int(entry.get("n_decisive") or 0)
    if n < limits.min_decisive_pairs:
        own.append(
            warning(
                "few_pairs",
                f"only {n} complete pairs score this dimension differently for FT and Base; "
                f"a conclusion needs at least {limits.min_decisive_pairs}",
                n,
                limits.min_decisive_pairs,
                True,
            )
        )
    entry["warnings"] = own + inherited
    low, high = entry.get("diff_ci_low"), entry.get("diff_ci_high")
    if entry["warnings"] or low is None or high is None:
        entry["conclusion"] = "not_enough_evidence"
    elif low > 0:
        entry["conclusion"] = "ft_better"
    elif high < 0:
        entry["conclusion"] = "base_better"
    else:
        entry["conclusion"] = "no_significant_difference"


async def judge_label_kappa(
    session: AsyncSession, experiment_id: int, result_set_id: int, source: str = "human"
) -> tuple[float | None, int]:
    """Cohen's κ of the judge's pair verdicts against `source` labels (averaged per pair), and the pairs compared.

    The same verdicts as GET /reports/agreement: a pair score above / below / at 0.5.
    """
    rows = (
        await session.execute(
            select(Label.pair_id, Label.s_ft).where(
                Label.experiment_id == experiment_id, Label.source == source, Label.dimension == ""
            )
        )
    ).all()
    if not rows:
        return None, 0
    labelled: dict[int, list[float]] = {}
    for pair_id, s in rows:
        labelled.setdefault(int(pair_id), []).append(float(s))
    judged = (
        await session.execute(
            select(PairResult.pair_id, PairResult.score).where(
                PairResult.result_set_id == result_set_id,
                PairResult.score.is_not(None),
                PairResult.pair_id.in_(list(labelled)),
            )
        )
    ).all()
    common = {int(p): float(s) for p, s in judged if s is not None}
    if not common:
        return None, 0
    pairs = sorted(common)
    result = pairwise_agreement(
        [verdict_of_score(common[p]) for p in pairs], [verdict_of_score(float(np.mean(labelled[p]))) for p in pairs]
    )
    return result.cohen_kappa, len(pairs)

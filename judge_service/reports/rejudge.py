"""Re-judge history: test–retest agreement, Cohen's κ and win-rate drift against the original verdicts."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from judge_service.stats.agreement import pairwise_agreement, verdict_of_score
from judge_service.stats.winrate import bootstrap_mean_ci, histogram, win_rate
from judge_service.store import repo
from judge_service.store.models import Alert, Experiment, JudgeFingerprint, PairResult, ResultSet, Run


def _finite(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def paired_change(old: np.ndarray, new: np.ndarray, n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Mean change (points) of re-judged minus original pair scores, with a paired percentile bootstrap CI.

    Paired: pairs are resampled with both their verdicts, so only the within-pair change varies
    (docs/statistics.md, "Drift alerts"). CI and SE are None for fewer than 2 pairs.
    """
    diffs = np.asarray(new, dtype=float) - np.asarray(old, dtype=float)
    n = int(diffs.size)
    out: dict[str, Any] = {"change": None, "ci_low": None, "ci_high": None, "standard_error": None, "n": n}
    if n:
        out["change"] = 100 * float(diffs.mean())
    if n >= 2:
        values, counts = histogram(diffs)
        low, high = bootstrap_mean_ci(values, counts, n_resamples, seed)
        out["ci_low"], out["ci_high"] = 100 * low, 100 * high
        out["standard_error"] = 100 * float(diffs.std(ddof=1) / np.sqrt(n))
    return out


async def rejudge_summary(session: AsyncSession, run: Run, min_agreement: float) -> dict[str, Any]:
    """One re-judge run against the original verdicts on the same pairs, with the alerts it raises."""
    original_id = int(run.options.get("original_result_set") or 0)
    original = await session.get(ResultSet, original_id)
    rejudged = (
        await session.execute(select(ResultSet).where(ResultSet.purpose == "rejudge", ResultSet.scope == run.id))
    ).scalar_one_or_none()
    before, after = aliased(PairResult), aliased(PairResult)
    pairs: list[tuple[float, float]] = []
    if original is not None and rejudged is not None:
        rows = await session.execute(
            select(before.score, after.score)
            .join(after, and_(after.pair_id == before.pair_id, after.result_set_id == rejudged.id))
            .where(before.result_set_id == original.id, before.score.is_not(None), after.score.is_not(None))
        )
        pairs = [(float(a or 0.0), float(b or 0.0)) for a, b in rows.all()]
    old = np.array([p[0] for p in pairs])
    new = np.array([p[1] for p in pairs])
    fp_old = await session.get(JudgeFingerprint, original.fingerprint_id) if original else None
    fp_new = await session.get(JudgeFingerprint, run.fingerprint_id)
    changed = fp_old is not None and fp_new is not None and fp_old.fingerprint_hash != fp_new.fingerprint_hash
    out: dict[str, Any] = {
        "run_id": run.id,
        "status": run.status,
        "created_at": repo.as_utc_iso(run.created_at),
        "finished_at": repo.as_utc_iso(run.finished_at),
        "schedule_id": run.options.get("schedule_id"),
        "sampled_pairs": len(run.pair_ids),
        "compared_pairs": len(pairs),
        "original_fingerprint": fp_old.fingerprint_hash if fp_old else None,
        "rejudge_fingerprint": fp_new.fingerprint_hash if fp_new else None,
        "fingerprint_changed": changed,
        "agreement": None,
        "agreement_without_ties": None,
        "cohen_kappa": None,
        "original": None,
        "rejudged": None,
        "win_rate_change": None,
        "alerts": [],
    }
    if changed:
        out["alerts"].append(
            ("fingerprint_changed", "the judge fingerprint differs from the original verdicts': drift by construction")
        )
    if not pairs:
        return out
    agreement = pairwise_agreement([verdict_of_score(x) for x in old], [verdict_of_score(x) for x in new])
    out["agreement"] = _finite(agreement.agreement)
    out["agreement_without_ties"] = agreement.agreement_without_ties
    out["cohen_kappa"] = agreement.cohen_kappa
    out["confusion"] = agreement.confusion
    before_wr, after_wr = win_rate(old), win_rate(new)
    out["original"] = {"win_rate": before_wr.win_rate, "ci_low": before_wr.ci_low, "ci_high": before_wr.ci_high}
    out["rejudged"] = {"win_rate": after_wr.win_rate, "ci_low": after_wr.ci_low, "ci_high": after_wr.ci_high}
    change = paired_change(old, new)
    out["win_rate_change"] = change
    # Drift = the PAIRED change CI (same pairs judged twice) excludes 0. Comparing the re-judged win rate
    # with the original's unpaired CI ignores that both verdicts share the pair, so it misses real
    # drift on a small sample and calls noise drift on a large one.
    if (
        change["ci_low"] is not None
        and change["ci_high"] is not None
        and not change["ci_low"] <= 0 <= change["ci_high"]
    ):
        out["alerts"].append(
            (
                "win_rate_drift",
                f"re-judged win rate changed by {change['change']:+.1f} points on the same {len(pairs)} pairs, "
                f"paired 95% CI [{change['ci_low']:.1f}, {change['ci_high']:.1f}] excludes 0",
            )
        )
    if out["agreement"] is not None and out["agreement"] < min_agreement:
        out["alerts"].append(
            ("low_agreement", f"test–retest agreement {out['agreement']:.2f} is below {min_agreement:.2f}")
        )
    return out


async def rejudge_report(session: AsyncSession, experiment: Experiment, min_agreement: float) -> dict[str, Any]:
    """Every re-judge run of an experiment over time, with stored alerts."""
    runs = (
        await session.execute(
            select(Run).where(Run.experiment_id == experiment.id, Run.purpose == "rejudge").order_by(Run.created_at)
        )
    ).scalars()
    history = []
    for run in runs:
        summary = await rejudge_summary(session, run, min_agreement)
        summary["alerts"] = [{"kind": k, "message": m} for k, m in summary["alerts"]] if run.status == "done" else []
        history.append(summary)
    stored = (
        await session.execute(select(Alert).where(Alert.experiment_id == experiment.id).order_by(Alert.created_at))
    ).scalars()
    return {
        "experiment": experiment.name,
        "min_agreement": min_agreement,
        "runs": history,
        "alerts": [
            {"run_id": a.run_id, "kind": a.kind, "message": a.message, "created_at": repo.as_utc_iso(a.created_at)}
            for a in stored
        ],
    }

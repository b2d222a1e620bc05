"""Reports across experiments or sources: checkpoints, Bradley–Terry, judge vs human agreement."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from judge_service.reports.errors import ReportError
from judge_service.reports.offload import LIMITS, run_cpu
from judge_service.reports.winrate import win_rate_report
from judge_service.stats.agreement import fleiss_kappa, pairwise_agreement, verdict_of_score
from judge_service.stats.bradley_terry import DEFAULT_PRIOR_TIES, Battle, bootstrap_bradley_terry, unbounded_models
from judge_service.stats.pairs import DEFAULT_TIE_MARGIN
from judge_service.store import repo
from judge_service.store.aggregate import PairFilter, aggregate, find_result_set, prepare_session
from judge_service.store.models import Experiment, Label, Pair, PairResult

HEADLINE = (
    "conclusion",
    "n_pairs",
    "wins",
    "ties",
    "losses",
    "win_rate",
    "ci_low",
    "ci_high",
    "standard_error",
    "decisive",
    "warnings",
)


async def series_experiments(session: AsyncSession, series: str) -> list[Experiment]:
    """Experiments whose metadata names this series, in checkpoint order (metadata 'step', then creation)."""
    stmt = select(Experiment).where(Experiment.meta["series"].as_string() == series)
    found = list((await session.execute(stmt)).scalars())

    def step(exp: Experiment) -> float:
        # Sorted here, not in SQL: a non-numeric step must not break the query on PostgreSQL.
        try:
            return float(exp.meta.get("step"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return float("inf")

    return sorted(found, key=lambda e: (step(e), e.id))


async def checkpoint_report(
    session: AsyncSession,
    series: str,
    rubric: str | None = None,
    mode: str = "reasoned",
    default_tie_margin: float = DEFAULT_TIE_MARGIN,
    min_decisive_pairs: int = 10,
) -> dict[str, Any]:
    """Win rate of each checkpoint of a series against its Base, in training order, in one judging mode."""
    points = []
    for exp in await series_experiments(session, series):
        try:
            report = await win_rate_report(
                session,
                exp,
                rubric=rubric,
                mode=mode,
                n_resamples=1000,
                default_tie_margin=default_tie_margin,
                min_decisive_pairs=min_decisive_pairs,
            )
        except ReportError:
            continue  # a checkpoint not judged yet has no point
        overall = report["overall"]
        points.append(
            {
                "experiment": exp.name,
                "ft_model": exp.ft_model,
                "base_model": exp.base_model,
                "checkpoint": exp.meta.get("checkpoint", exp.ft_model),
                "step": exp.meta.get("step"),
                "rubric": report["rubric"],
                "judge_fingerprint": report["judge_fingerprint"],
                **{k: overall[k] for k in HEADLINE},
            }
        )
    fingerprints = {p["judge_fingerprint"] for p in points}
    return {"series": series, "mode": mode, "mixed_judges": len(fingerprints) > 1, "points": points}


async def bradley_terry_report(
    session: AsyncSession,
    experiments: str | None,
    series: str | None,
    rubric: str | None = None,
    mode: str = "reasoned",
) -> dict[str, Any]:
    """Strengths of every model that appears in the experiments, from their pair scores."""
    await prepare_session(session)
    chosen: list[Experiment] = []
    if series:
        chosen.extend(await series_experiments(session, series))
    refs = [ref for ref in (experiments or "").split(",") if ref.strip()]
    if len(refs) > LIMITS.max_experiments:
        raise ReportError(
            422,
            f"{len(refs)} experiments; the limit is {LIMITS.max_experiments} (JUDGE_MAX_REPORT_EXPERIMENTS)",
            ["query", "experiments"],
        )
    for ref in refs:
        if ref.strip():
            exp = await repo.get_experiment(session, ref.strip())
            if exp is None:
                raise ReportError(404, f"no experiment {ref.strip()!r}", ["query", "experiments"])
            chosen.append(exp)
    if not chosen:
        raise ReportError(422, "name experiments (comma-separated) or a series", ["query", "experiments"])
    if len(set(chosen)) > LIMITS.max_experiments:
        raise ReportError(
            422,
            f"{len(set(chosen))} experiments; the limit is {LIMITS.max_experiments} (JUDGE_MAX_REPORT_EXPERIMENTS)",
            ["query", "experiments"],
        )
    battles: list[Battle] = []
    used = []
    for exp in dict.fromkeys(chosen):
        result_set = await find_result_set(session, exp.id, rubric=rubric, mode=mode)
        if result_set is None:
            continue
        data = (await aggregate(session, result_set.id, PairFilter())).get(None)
        if data is None:
            continue
        used.append(exp.name)
        battles.extend(
            Battle(exp.base_model, exp.ft_model, float(v), int(c))
            for v, c in zip(data.score_values, data.score_counts, strict=True)
        )
    try:
        ratings = await run_cpu(bootstrap_bradley_terry, battles, n_resamples=500)
        unbounded = unbounded_models(battles)
    except ValueError as exc:
        raise ReportError(422, f"cannot fit Bradley–Terry: {exc}", ["query", "experiments"]) from exc
    models = [
        # unbounded: without the prior this rating would be infinite (it never lost, or never won, enough to
        # be compared); its number then mostly reflects the prior, not the data.
        {"model": m, "strength": est, "ci_low": low, "ci_high": high, "unbounded": m in unbounded}
        for m, (est, low, high) in sorted(ratings.items(), key=lambda kv: -kv[1][0])
    ]
    return {
        "experiments": used,
        "pairs": sum(b.count for b in battles),
        "scale": "Elo (anchor 1000)",
        "prior": f"{DEFAULT_PRIOR_TIES:g} virtual tie per pair of models that met",
        "models": models,
    }


async def agreement_report(
    session: AsyncSession, experiment: Experiment, rubric: str | None = None, judge: str | None = None
) -> dict[str, Any]:
    """Judge vs each label source, and annotators of each source with each other."""
    rows = (
        await session.execute(
            select(Label.source, Label.annotator, Pair.external_id, Label.s_ft)
            .join(Pair, Pair.id == Label.pair_id)
            .where(Label.experiment_id == experiment.id, Label.dimension == "")
            .order_by(Label.id)
        )
    ).all()
    labels: dict[str, dict[str, dict[str, list[float]]]] = {}
    for source, annotator, pair, s in rows:
        labels.setdefault(source, {}).setdefault(annotator, {}).setdefault(pair, []).append(float(s))
    judge_set = await find_result_set(session, experiment.id, rubric=rubric, judge=judge)
    judge_verdicts: dict[str, str] = {}
    if judge_set is not None:
        judged = await session.execute(
            select(Pair.external_id, PairResult.score)
            .join(Pair, Pair.id == PairResult.pair_id)
            .where(PairResult.result_set_id == judge_set.id, PairResult.score.is_not(None))
            .where(Pair.id.in_(select(Label.pair_id).where(Label.experiment_id == experiment.id)))
        )
        judge_verdicts = {pair: verdict_of_score(float(score or 0.0)) for pair, score in judged.all()}
    # Pairwise comparisons grow with the square of the annotators (bounded by JUDGE_MAX_ANNOTATORS at
    # import): they run in a worker thread under the report time limit.
    annotators = sum(len(per_source) for per_source in labels.values())
    if annotators > LIMITS.max_annotators:  # stored before the limit existed, or the limit was lowered
        raise ReportError(
            422,
            f"{annotators} annotators; the agreement report compares at most {LIMITS.max_annotators} "
            "(JUDGE_MAX_ANNOTATORS)",
            ["query", "experiment"],
        )
    comparisons, fleiss = await run_cpu(_agreement_stats, labels, judge_verdicts)
    return {
        "experiment": experiment.name,
        "sources": sorted(labels),
        "judge_result_set": judge_set.id if judge_set else None,
        "comparisons": comparisons,
        "fleiss": fleiss,
    }


def _json(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in values.items()}


def _agreement_stats(
    labels: dict[str, dict[str, dict[str, list[float]]]], judge_verdicts: dict[str, str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Judge vs each source and annotators pairwise (CPU work); returns (comparisons, Fleiss rows)."""
    comparisons: list[dict[str, Any]] = []
    fleiss = []
    for source, annotators in sorted(labels.items()):
        merged: dict[str, list[float]] = {}
        for per_pair in annotators.values():
            for pair, values in per_pair.items():
                merged.setdefault(pair, []).extend(values)
        source_verdicts = {pair: verdict_of_score(float(np.mean(v))) for pair, v in merged.items()}
        if judge_verdicts:
            common = sorted(set(judge_verdicts) & set(source_verdicts))
            if common:
                result = pairwise_agreement([judge_verdicts[p] for p in common], [source_verdicts[p] for p in common])
                comparisons.append({"a": "judge", "b": source, **_json(result.as_dict())})
        per_annotator = {
            a: {p: verdict_of_score(float(np.mean(v))) for p, v in d.items()} for a, d in annotators.items()
        }
        for a, b in combinations(sorted(per_annotator), 2):
            common = sorted(set(per_annotator[a]) & set(per_annotator[b]))
            if common:
                result = pairwise_agreement(
                    [per_annotator[a][p] for p in common], [per_annotator[b][p] for p in common]
                )
                comparisons.append({"a": f"{source}:{a}", "b": f"{source}:{b}", **_json(result.as_dict())})
        if len(per_annotator) >= 3:
            items = sorted(set.intersection(*(set(v) for v in per_annotator.values())))
            if items:
                kappa = fleiss_kappa([[per_annotator[a][p] for a in sorted(per_annotator)] for p in items])
                fleiss.append(
                    {"source": source, "annotators": len(per_annotator), "n_items": len(items), "kappa": kappa}
                )
    return comparisons, fleiss

"""The human report of a labelling task: averaged sheet, human win rate, inter-rater and judge-human agreement.

Statistics come from `stats.agreement` (κ) and the win-rate report (source = the task's label source).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from judge_service.labeling.blind import OrientedLabel, orient
from judge_service.labeling.tasks import judge_set
from judge_service.reports.errors import ReportError
from judge_service.reports.winrate import win_rate_report
from judge_service.stats.agreement import VERDICTS, fleiss_kappa, pairwise_agreement, verdict_of_score
from judge_service.store.models import (
    Experiment,
    LabelingAssignment,
    LabelingTask,
    Pair,
    PairDimensionResult,
    PairResult,
)

OVERALL = "overall"
SCORES = tuple(str(s) for s in range(1, 6))
APART = 2  # raters this many points apart on one answer's dimension go to the disagreement list


def _finite(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _agreement(a: Sequence[str], b: Sequence[str], categories: Sequence[str]) -> dict[str, Any]:
    result = pairwise_agreement(a, b, categories)
    return {"n": result.n, "agreement": _finite(result.agreement), "kappa": result.cohen_kappa, "method": "cohen"}


def _fleiss(items: list[list[str]], categories: Sequence[str]) -> dict[str, Any]:
    unanimous = sum(len(set(item)) == 1 for item in items)
    return {
        "n": len(items),
        "agreement": unanimous / len(items) if items else None,  # share of items where every rater agrees
        "kappa": fleiss_kappa(items, categories) if items else None,
        "method": "fleiss",
    }


def inter_rater(items: list[list[str]], categories: Sequence[str]) -> dict[str, Any]:
    """κ over items rated by the same number of raters: Cohen's for 2 (slot 1 vs 2), Fleiss' for more."""
    if not items or len(items[0]) < 2:
        return {"n": len(items), "agreement": None, "kappa": None, "method": None}
    if len(items[0]) == 2:
        return _agreement([i[0] for i in items], [i[1] for i in items], categories)
    return _fleiss(items, categories)


async def _judge_verdicts(
    session: AsyncSession, experiment: Experiment, pair_ids: list[int]
) -> tuple[dict[int, str], dict[tuple[int, str], str], int | None]:
    result_set = await judge_set(session, experiment.id)
    if result_set is None or not pair_ids:
        return {}, {}, None
    overall = {
        int(p): verdict_of_score(float(s or 0.0))
        for p, s in (
            await session.execute(
                select(PairResult.pair_id, PairResult.score).where(
                    PairResult.result_set_id == result_set.id,
                    PairResult.pair_id.in_(pair_ids),
                    PairResult.score.is_not(None),
                )
            )
        ).all()
    }
    dims = {
        (int(p), str(d)): verdict_of_score(float(s))
        for p, d, s in (
            await session.execute(
                select(PairDimensionResult.pair_id, PairDimensionResult.dimension, PairDimensionResult.score).where(
                    PairDimensionResult.result_set_id == result_set.id, PairDimensionResult.pair_id.in_(pair_ids)
                )
            )
        ).all()
    }
    return overall, dims, result_set.id


async def task_results(
    session: AsyncSession, task: LabelingTask, experiment: Experiment, n_resamples: int = 2000
) -> dict[str, Any]:
    """Everything the results page shows for one task (judge verdicts included: `read` scope only)."""
    dims = list(task.dimensions)
    rows = await session.execute(
        select(LabelingAssignment, Pair.external_id)
        .join(Pair, Pair.id == LabelingAssignment.pair_id)
        .where(LabelingAssignment.task_id == task.id)
        .order_by(LabelingAssignment.pair_id, LabelingAssignment.rater)
    )
    labels: dict[int, dict[str, OrientedLabel]] = defaultdict(dict)
    names: dict[int, str] = {}
    assigned: dict[int, int] = defaultdict(int)
    comments: dict[int, dict[str, str]] = defaultdict(dict)
    for assignment, external_id in rows.all():
        names[assignment.pair_id] = str(external_id)
        assigned[assignment.pair_id] += 1
        if assignment.status == "done" and assignment.preference is not None:
            labels[assignment.pair_id][assignment.rater] = orient(
                assignment.scores, assignment.preference, assignment.answer_1_is_ft, dims
            )
            if assignment.comment:
                comments[assignment.pair_id][assignment.rater] = assignment.comment
    pair_ids = sorted(names)
    judge_overall, judge_dims, judge_set_id = await _judge_verdicts(session, experiment, pair_ids)

    pairs: list[dict[str, Any]] = []
    human: dict[str, dict[int, str]] = {OVERALL: {}, **{d: {} for d in dims}}
    verdict_items: dict[str, list[list[str]]] = {OVERALL: [], **{d: [] for d in dims}}
    score_items: dict[str, list[list[str]]] = {d: [] for d in dims}
    disagreements: list[dict[str, Any]] = []
    for pid in pair_ids:
        by_rater = labels.get(pid, {})
        raters = sorted(by_rater)
        entry: dict[str, Any] = {
            "id": names[pid],
            "raters": len(raters),
            "assigned": assigned[pid],
            "mean": {},
            "preference": {v: 0 for v in VERDICTS},
            "human": None,
            "judge": judge_overall.get(pid),
            "comments": comments.get(pid, {}),
        }
        reasons: list[dict[str, Any]] = []
        if raters:
            s_ft = {r: by_rater[r].s_ft() for r in raters}
            for r in raters:
                entry["preference"][by_rater[r].winner] += 1
            human[OVERALL][pid] = entry["human"] = verdict_of_score(float(np.mean([s_ft[r][""] for r in raters])))
            for d in dims:
                base = [by_rater[r].base[d] for r in raters]
                ft = [by_rater[r].ft[d] for r in raters]
                entry["mean"][d] = {"base": float(np.mean(base)), "ft": float(np.mean(ft))}
                human[d][pid] = verdict_of_score(float(np.mean([s_ft[r][d] for r in raters])))
                for side, scores in (("base", base), ("ft", ft)):
                    if max(scores) - min(scores) >= APART:
                        reasons.append(
                            {
                                "kind": "raters_apart",
                                "dimension": d,
                                "answer": side,
                                "scores": {r: s for r, s in zip(raters, scores, strict=True)},
                            }
                        )
            judge = judge_overall.get(pid)
            if judge is not None and judge != entry["human"]:
                reasons.append({"kind": "judge_vs_humans", "judge": judge, "humans": entry["human"]})
            if len(raters) == task.raters_per_pair:
                verdict_items[OVERALL].append([by_rater[r].winner for r in raters])
                for d in dims:
                    verdict_items[d].append([verdict_of_score(s_ft[r][d]) for r in raters])
                    for side in ("base", "ft"):
                        score_items[d].append([str(getattr(by_rater[r], side)[d]) for r in raters])
        if reasons:
            disagreements.append({"id": names[pid], "reasons": reasons, "mean": entry["mean"], "human": entry["human"]})
        pairs.append(entry)

    judge_vs_human: dict[str, Any] = {}
    for key in [OVERALL, *dims]:
        judged = judge_overall if key == OVERALL else {p: v for (p, d), v in judge_dims.items() if d == key}
        common = sorted(set(judged) & set(human[key]))
        judge_vs_human[key] = _agreement([judged[p] for p in common], [human[key][p] for p in common], VERDICTS)

    try:
        report = await win_rate_report(session, experiment, source=task.source, n_resamples=n_resamples)
        human_win_rate: dict[str, Any] | None = {
            k: v for k, v in report.items() if k in ("source", "mode", "overall", "conclusion", "warnings")
        }
    except ReportError:
        human_win_rate = None
    done = sum(len(v) for v in labels.values())
    return {
        "task": task.name,
        "task_id": task.id,
        "experiment": experiment.name,
        "source": task.source,
        "rubric": task.rubric,
        "dimensions": dims,
        "raters": list(task.raters),
        "raters_per_pair": task.raters_per_pair,
        "progress": {"assignments": sum(assigned.values()), "done": done, "pairs": len(pair_ids)},
        "pairs": pairs,
        "inter_rater": {
            "complete_pairs": len(verdict_items[OVERALL]),
            "verdicts": {k: inter_rater(v, VERDICTS) for k, v in verdict_items.items()},
            "scores": {k: inter_rater(v, SCORES) for k, v in score_items.items()},
        },
        "judge_result_set": judge_set_id,
        "judge_vs_human": judge_vs_human,
        "disagreements": disagreements,
        "human_win_rate": human_win_rate,
    }


async def latest_task(session: AsyncSession, experiment_id: int) -> LabelingTask | None:
    """The newest labelling task of an experiment."""
    stmt = (
        select(LabelingTask)
        .where(LabelingTask.experiment_id == experiment_id)
        .order_by(LabelingTask.created_at.desc(), LabelingTask.id.desc())
    )
    return (await session.execute(stmt.limit(1))).scalars().first()

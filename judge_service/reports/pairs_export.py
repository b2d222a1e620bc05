"""Export an experiment's pairs with the judge's results (outcome, per-dimension scores, rationales)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from judge_service.contract.experiments import ExperimentExport, ExportedPair
from judge_service.jobs.results import item_result
from judge_service.stats.pairs import tie_margin_of
from judge_service.store.aggregate import find_result_set
from judge_service.store.models import Experiment, Judgment, Pair, RubricVersionRow


async def export_page(
    session: AsyncSession,
    exp: Experiment,
    *,
    rubric: str | None,
    judge: str | None,
    mode: str | None,
    offset: int,
    limit: int,
    default_tie_margin: float,
) -> ExperimentExport:
    """One page of pairs (creation order) with results from the judge set the win-rate report reads.

    That set is the newest one matching rubric, judge fingerprint and mode (reasoned first); every
    pair of the experiment is listed, with a null outcome where it has no judgments in that set.
    """
    found = await find_result_set(session, exp.id, rubric=rubric, judge=judge, mode=mode)
    total = (await session.execute(select(func.count()).where(Pair.experiment_id == exp.id))).scalar_one()
    pairs = list(
        (
            await session.execute(
                select(Pair).where(Pair.experiment_id == exp.id).order_by(Pair.id).offset(offset).limit(limit)
            )
        ).scalars()
    )
    by_pair: dict[int, list[Judgment]] = {p.id: [] for p in pairs}
    rubric_name = None
    if found is not None and pairs:
        row = await session.get(RubricVersionRow, found.rubric_version_id)
        rubric_name = None if row is None else f"{row.name}@v{row.version}"
        judgments = await session.execute(
            select(Judgment)
            .where(
                Judgment.pair_id.in_(list(by_pair)),
                Judgment.purpose == "judge",
                Judgment.rubric_version_id == found.rubric_version_id,
                Judgment.fingerprint_id == found.fingerprint_id,
                Judgment.mode == found.mode,
            )
            .options(selectinload(Judgment.scores))
            .order_by(Judgment.id)
        )
        for judgment in judgments.scalars():
            by_pair[judgment.pair_id].append(judgment)
    margin = tie_margin_of(exp.meta, default_tie_margin)
    items = []
    for pair in pairs:
        result = item_result(pair.external_id, by_pair[pair.id], margin)
        items.append(
            ExportedPair(
                id=pair.external_id,
                prompt=pair.prompt,
                base_output=pair.base_output,
                ft_output=pair.ft_output,
                tags=pair.tags or {},
                outcome=result.outcome,
                score=result.score,
                inconsistent=result.inconsistent,
                judgments=sum(v.status == "done" for v in result.verdicts),
                failed=len(result.failed),
                dimensions=result.dimensions,
                rationales=result.rationales,
            )
        )
    return ExperimentExport(
        experiment=exp.name,
        rubric=rubric_name,
        mode=found.mode if found is not None else (mode or "reasoned"),
        total=int(total),
        offset=offset,
        items=items,
    )

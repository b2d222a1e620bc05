"""`GET /experiments`, `POST /experiments`, `GET /experiments/{id}/pairs/{pair_id}` and `/export`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import JSONResponse
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from judge_service.api.deps import Caller, Context, Session, require
from judge_service.contract.experiments import ExperimentCreate, ExperimentExport, ExperimentView
from judge_service.contract.resources import ExperimentSummary, PairDetail
from judge_service.contract.validation import INT64_MAX, ExperimentRef, Identifier, QueryValue, RubricRef
from judge_service.jobs.results import verdict_of
from judge_service.reports.pairs_export import export_page
from judge_service.rubrics.registry import RubricError
from judge_service.store import repo
from judge_service.store.aggregate import find_result_set
from judge_service.store.experiments import ExperimentConflictError, ensure_experiment, experiment_view
from judge_service.store.models import Experiment, JudgeFingerprint, Judgment, Pair, RubricVersionRow

router = APIRouter(tags=["experiments"])


@router.get("/experiments", response_model=list[ExperimentSummary])
async def list_experiments(session: Session, _: Annotated[Caller, Depends(require("read"))]) -> list[dict[str, Any]]:
    """All experiments with their pair and judgment counts."""
    pair_counts = dict(
        (await session.execute(select(Pair.experiment_id, func.count()).group_by(Pair.experiment_id))).all()
    )
    judgment_counts = dict(
        (
            await session.execute(
                select(Pair.experiment_id, func.count())
                .join(Judgment, Judgment.pair_id == Pair.id)
                .group_by(Pair.experiment_id)
            )
        ).all()
    )
    experiments = (await session.execute(select(Experiment).order_by(Experiment.id))).scalars()
    return [
        {
            "id": e.id,
            "name": e.name,
            "base_model": e.base_model,
            "ft_model": e.ft_model,
            "metadata": e.meta,
            "created_at": repo.as_utc_iso(e.created_at),
            "pairs": int(pair_counts.get(e.id, 0)),
            "judgments": int(judgment_counts.get(e.id, 0)),
        }
        for e in experiments
    ]


# `:path` so names and ids containing '/' can be fetched; the experiment part ends at the last
# "/pairs/" of the path (docs/api-limits.md).
@router.get("/experiments/{experiment:path}/pairs/{pair_id:path}", response_model=PairDetail)
async def get_pair(
    experiment: Annotated[ExperimentRef, Path(description="Experiment name or id (may contain '/').")],
    pair_id: Annotated[Identifier, Path(description="The pair's id in its experiment (may contain '/').")],
    session: Session,
    _: Annotated[Caller, Depends(require("read"))],
) -> dict[str, Any]:
    """A pair (by external id) with every judgment ever made of it."""
    exp = await repo.get_experiment(session, experiment)
    if exp is None:
        raise HTTPException(404, f"no experiment {experiment!r}")
    pair = (
        await session.execute(
            select(Pair)
            .where(Pair.experiment_id == exp.id, Pair.external_id == pair_id)
            .options(selectinload(Pair.judgments).selectinload(Judgment.scores))
        )
    ).scalar_one_or_none()
    if pair is None:
        raise HTTPException(404, f"no pair {pair_id!r} in experiment {exp.name!r}")
    # Only the versions and judges this pair's judgments name (not every row of both tables).
    rubric_ids = {j.rubric_version_id for j in pair.judgments}
    judge_ids = {j.fingerprint_id for j in pair.judgments}
    rubric_rows = await session.execute(select(RubricVersionRow).where(RubricVersionRow.id.in_(rubric_ids)))
    judge_rows = await session.execute(select(JudgeFingerprint).where(JudgeFingerprint.id.in_(judge_ids)))
    rubrics = {r.id: f"{r.name}@v{r.version}" for r in rubric_rows.scalars()}
    judges = {f.id: f.fingerprint_hash for f in judge_rows.scalars()}
    return {
        "experiment": exp.name,
        "id": pair.external_id,
        "prompt": pair.prompt,
        "base_output": pair.base_output,
        "ft_output": pair.ft_output,
        "reference": pair.reference,
        "tags": pair.tags,
        "metadata": pair.meta,
        "created_at": repo.as_utc_iso(pair.created_at),
        "judgments": [
            {
                **verdict_of(j).model_dump(),
                "raw_reply": j.raw_reply,
                "id": j.id,
                "rubric": rubrics.get(j.rubric_version_id),
                "judge_fingerprint": judges.get(j.fingerprint_id),
                "run_id": j.run_id,
                "purpose": j.purpose,
                "mode": j.mode,
                "messages_hash": j.messages_hash,
                "defences": j.defences,
                "prompt_tokens": j.prompt_tokens,
                "completion_tokens": j.completion_tokens,
                "latency_ms": j.latency_ms,
                "attempts": j.attempts,
                "created_at": repo.as_utc_iso(j.created_at),
                "completed_at": repo.as_utc_iso(j.completed_at),
            }
            for j in pair.judgments
        ],
    }


@router.post(
    "/experiments",
    response_model=ExperimentView,
    status_code=201,
    responses={200: {"model": ExperimentView, "description": "An identical experiment exists."}, 409: {}},
)
async def create_experiment(
    body: ExperimentCreate,
    ctx: Context,
    _: Annotated[Caller, Depends(require("submit"))],
) -> ExperimentView | JSONResponse:
    """Create an experiment without judging (e.g. to import labels); 200 if an identical one exists, 409 if not."""
    async with ctx.sessions() as session, session.begin():
        try:
            exp, created = await ensure_experiment(session, body.name, body.base_model, body.ft_model, body.metadata)
        except ExperimentConflictError as exc:
            raise HTTPException(409, [{"loc": ["body", exc.field], "msg": str(exc), "type": "conflict"}]) from exc
        view = experiment_view(exp, created)
    if created:
        return view
    return JSONResponse(view.model_dump(), status_code=200)


# Declared after `/pairs/{pair_id}` so a pair whose id is "export" is still found there.
@router.get("/experiments/{experiment:path}/export", response_model=ExperimentExport)
async def export_pairs(
    experiment: Annotated[ExperimentRef, Path(description="Experiment name or id (may contain '/').")],
    session: Session,
    ctx: Context,
    _: Annotated[Caller, Depends(require("read"))],
    rubric: Annotated[RubricRef | None, Query(description="name or name@vN; default the newest used.")] = None,
    judge: Annotated[QueryValue | None, Query(description="Judge fingerprint (prefix); default the newest.")] = None,
    mode: Annotated[Literal["reasoned", "fast"] | None, Query(description="Default: reasoned if judged so.")] = None,
    offset: Annotated[int, Query(ge=0, le=INT64_MAX, description="First pair to return.")] = 0,
    limit: Annotated[int, Query(ge=1, le=5000, description="Pairs per page.")] = 1000,
) -> ExperimentExport:
    """Pairs with the judge's outcome, per-dimension scores and rationales (the set the win-rate report reads)."""
    exp = await repo.get_experiment(session, experiment)
    if exp is None:
        raise HTTPException(
            404, [{"loc": ["path", "experiment"], "msg": f"no experiment {experiment!r}", "type": "not_found"}]
        )
    try:
        if (rubric or judge or mode) and await find_result_set(
            session, exp.id, rubric=rubric, judge=judge, mode=mode
        ) is None:
            # As the win-rate report: filters that match no judgments are an error, not an empty export.
            given = next(name for name, value in (("rubric", rubric), ("judge", judge), ("mode", mode)) if value)
            msg = f"experiment {exp.name!r} has no judgments matching rubric={rubric}, judge={judge}, mode={mode}"
            raise HTTPException(404, [{"loc": ["query", given], "msg": msg, "type": "not_found"}])
        return await export_page(
            session,
            exp,
            rubric=rubric,
            judge=judge,
            mode=mode,
            offset=offset,
            limit=limit,
            default_tie_margin=ctx.settings.tie_margin,
        )
    except RubricError as exc:
        raise HTTPException(422, [{"loc": ["query", "rubric"], "msg": str(exc), "type": "value_error"}]) from exc

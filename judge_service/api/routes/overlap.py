"""`POST` / `GET /experiments/{experiment}/overlap`: eval/train overlap checks (docs/fairness-checks.md)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path

from judge_service.api.deps import Caller, Context, Session, require
from judge_service.contract.overlap import OverlapCheckResult, OverlapRequest
from judge_service.contract.validation import ExperimentRef
from judge_service.overlap.checks import check_view, latest_check, run_check
from judge_service.overlap.detect import TrainFormatError, TrainTooLargeError
from judge_service.store import repo
from judge_service.store.models import Experiment

router = APIRouter(tags=["overlap"])
Ref = Annotated[ExperimentRef, Path(description="Experiment name or id (may contain '/').")]


def _not_found(ref: str) -> HTTPException:
    return HTTPException(404, [{"loc": ["path", "experiment"], "msg": f"no experiment {ref!r}", "type": "not_found"}])


@router.post("/experiments/{experiment:path}/overlap", response_model=OverlapCheckResult)
async def check_overlap(
    experiment: Ref, body: OverlapRequest, ctx: Context, _: Annotated[Caller, Depends(require("admin"))]
) -> OverlapCheckResult:
    """Compare the experiment's eval prompts with a training file (exact and near copies); store the check."""
    settings = ctx.settings
    if body.records is not None:
        if len(body.records) > settings.max_overlap_train_lines:
            limit = settings.max_overlap_train_lines
            msg = f"{len(body.records)} records; the limit is {limit} (JUDGE_MAX_OVERLAP_TRAIN_LINES)"
            raise HTTPException(413, [{"loc": ["body", "records"], "msg": msg, "type": "too_large"}])
        data = "\n".join(json.dumps(r, ensure_ascii=False) for r in body.records).encode()
        field = "records"
    else:
        data = (body.train_jsonl or "").encode()
        field = "train_jsonl"
    if len(data) > settings.max_overlap_train_bytes:
        msg = f"{len(data)} bytes; the limit is {settings.max_overlap_train_bytes} (JUDGE_MAX_OVERLAP_TRAIN_BYTES)"
        raise HTTPException(413, [{"loc": ["body", field], "msg": msg, "type": "too_large"}])
    async with ctx.sessions() as session, session.begin():
        exp: Experiment | None = await repo.get_experiment(session, experiment)
        if exp is None:
            raise _not_found(experiment)
        try:
            check = await run_check(
                session,
                exp,
                [data],
                train_name=body.train_name,
                threshold=body.threshold,
                shingle=body.shingle,
                max_lines=settings.max_overlap_train_lines,
            )
        except TrainFormatError as exc:
            loc: list[str | int] = ["body", field] + ([exc.line - 1] if field == "records" and exc.line else [])
            status = 413 if isinstance(exc, TrainTooLargeError) else 422
            raise HTTPException(status, [{"loc": loc, "msg": str(exc), "type": "train_format"}]) from exc
        return OverlapCheckResult.of(await check_view(session, check, exp))


@router.get("/experiments/{experiment:path}/overlap", response_model=OverlapCheckResult)
async def get_overlap(
    experiment: Ref, session: Session, _: Annotated[Caller, Depends(require("read"))]
) -> OverlapCheckResult:
    """The experiment's newest overlap check with its flagged pairs."""
    exp = await repo.get_experiment(session, experiment)
    if exp is None:
        raise _not_found(experiment)
    check = await latest_check(session, exp.id)
    if check is None:
        msg = f"experiment {exp.name!r} has no overlap check yet"
        raise HTTPException(404, [{"loc": ["path", "experiment"], "msg": msg, "type": "not_found"}])
    return OverlapCheckResult.of(await check_view(session, check, exp))

"""`POST /judge/pairwise` and `GET /runs/{id}`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query
from fastapi.responses import JSONResponse

from judge_service.api.deps import Caller, Context, Session, require
from judge_service.contract.judging import AcceptedRun, PairwiseRequest, RunResult
from judge_service.contract.validation import IDEMPOTENCY_KEY_LEN, INT64_MAX, RUN_ID_LEN, QueryValue
from judge_service.jobs.results import run_result
from judge_service.jobs.submit import submit
from judge_service.store.models import Run

router = APIRouter(tags=["judging"])


@router.post(
    "/judge/pairwise",
    response_model=RunResult,
    responses={202: {"model": AcceptedRun}, 409: {}, 413: {}, 422: {}, 503: {}},
)
async def judge_pairwise(
    body: PairwiseRequest,
    ctx: Context,
    caller: Annotated[Caller, Depends(require("submit"))],
    idempotency_key: Annotated[QueryValue | None, Header(max_length=IDEMPOTENCY_KEY_LEN)] = None,
) -> RunResult | JSONResponse:
    """Judge Base/FT pairs per rubric dimension in both orders; small batches answer synchronously."""
    submitted = await submit(ctx.jobs, body, f"key{caller.key_id}", idempotency_key)
    if not submitted.synchronous:
        accepted = AcceptedRun(
            run_id=submitted.run_id, status="accepted", status_url=f"/runs/{submitted.run_id}", items=len(body.items)
        )
        return JSONResponse(accepted.model_dump(), status_code=202)
    # Whoever stores the last verdict closes the run: this process, a peer or a queue worker.
    await ctx.executor.wait_run(submitted.run_id)
    async with ctx.sessions() as session:
        run = await session.get(Run, submitted.run_id)
        assert run is not None
        return await run_result(session, run, tie_margin=ctx.settings.tie_margin)


@router.get("/runs/{run_id}", response_model=RunResult)
async def get_run(
    run_id: Annotated[QueryValue, Path(max_length=RUN_ID_LEN)],
    session: Session,
    ctx: Context,
    _: Annotated[Caller, Depends(require("read"))],
    offset: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
    limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
) -> RunResult:
    """Status (queued, running, done, failed), counts done/failed/pending, and the per-item results once done."""
    run = await session.get(Run, run_id)
    if run is None:
        raise HTTPException(404, f"no run {run_id!r}")
    return await run_result(session, run, offset, limit, ctx.settings.tie_margin)

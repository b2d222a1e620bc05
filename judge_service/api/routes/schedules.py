"""`/schedules`: scheduled re-judging of stored pairs (stored in SQL; fired by APScheduler or the job queue)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from judge_service.api.deps import Caller, Context, Session, require
from judge_service.contract.resources import ScheduleFired, ScheduleView
from judge_service.contract.schedules import ScheduleSpec
from judge_service.contract.validation import INT64_MAX
from judge_service.jobs.scheduler import run_now, schedule_problem
from judge_service.rubrics.registry import RubricError
from judge_service.store import repo
from judge_service.store.models import Schedule, utcnow

router = APIRouter(prefix="/schedules", tags=["schedules"])
ScheduleId = Annotated[int, Path(ge=1, le=INT64_MAX, description="Schedule id.")]


def schedule_view(s: Schedule) -> dict[str, Any]:
    """A schedule as JSON."""
    return {
        "id": s.id,
        "name": s.name,
        "experiments": s.experiments,
        "rubric": s.rubric,
        "sample_size": s.sample_size,
        "sample_fraction": s.sample_fraction,
        "cron": s.cron,
        "interval_seconds": s.interval_seconds,
        "enabled": s.enabled,
        "created_at": repo.as_utc_iso(s.created_at),
        "last_fired_at": repo.as_utc_iso(s.last_fired_at),
        "disabled_reason": s.disabled_reason,
    }


def _refuse(field: str, message: str) -> HTTPException:
    return HTTPException(422, [{"loc": ["body", field], "msg": message, "type": "value_error"}])


@router.post("", status_code=201, response_model=ScheduleView)
async def create_schedule(
    spec: ScheduleSpec, ctx: Context, _: Annotated[Caller, Depends(require("admin"))]
) -> dict[str, Any]:
    """Store a schedule and start firing it (queue mode: the next schedule tick sees it)."""
    minimum = ctx.settings.schedule_min_interval_s
    if spec.interval_seconds is not None and spec.interval_seconds < minimum:
        raise _refuse("interval_seconds", f"must be at least {minimum} s (JUDGE_SCHEDULE_MIN_INTERVAL_S)")
    if spec.rubric is not None:
        try:
            ctx.registry.get(spec.rubric)
        except RubricError as exc:
            raise _refuse("rubric", str(exc)) from exc
    row = Schedule(**spec.model_dump(), created_at=utcnow())
    problem = schedule_problem(row)
    if problem is not None:
        raise _refuse("cron" if spec.cron else "interval_seconds", problem)
    async with ctx.sessions() as session, session.begin():
        for index, ref in enumerate(spec.experiments):
            if await repo.get_experiment(session, ref) is None:
                detail = [{"loc": ["body", "experiments", index], "msg": f"no experiment {ref!r}", "type": "not_found"}]
                raise HTTPException(422, detail)
        session.add(row)
        try:
            await session.flush()
        except IntegrityError as exc:
            detail = [{"loc": ["body", "name"], "msg": f"a schedule named {spec.name!r} exists", "type": "conflict"}]
            raise HTTPException(409, detail) from exc
    if ctx.scheduler is not None and row.enabled:
        ctx.scheduler.add(row)
    return schedule_view(row)


@router.get("", response_model=list[ScheduleView])
async def list_schedules(session: Session, _: Annotated[Caller, Depends(require("read"))]) -> list[dict[str, Any]]:
    """All schedules."""
    return [schedule_view(s) for s in (await session.execute(select(Schedule).order_by(Schedule.id))).scalars()]


@router.delete("/{schedule_id}", status_code=204)
async def delete_schedule(
    schedule_id: ScheduleId, ctx: Context, _: Annotated[Caller, Depends(require("admin"))]
) -> None:
    """Stop and delete a schedule (its past re-judge runs stay)."""
    async with ctx.sessions() as session, session.begin():
        row = await session.get(Schedule, schedule_id)
        if row is None:
            raise HTTPException(404, f"no schedule {schedule_id}")
        await session.delete(row)
    if ctx.scheduler is not None:
        ctx.scheduler.remove(schedule_id)


@router.post("/{schedule_id}/run", response_model=ScheduleFired)
async def run_schedule(
    schedule_id: ScheduleId, ctx: Context, _: Annotated[Caller, Depends(require("admin"))]
) -> dict[str, Any]:
    """Fire a schedule now; returns the re-judge run ids (poll GET /runs/{id})."""
    async with ctx.sessions() as session:
        if await session.get(Schedule, schedule_id) is None:
            raise HTTPException(404, f"no schedule {schedule_id}")
    return {"schedule_id": schedule_id, "run_ids": await run_now(ctx.jobs, schedule_id)}

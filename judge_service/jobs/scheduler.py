"""Scheduled re-judging of the schedules stored in SQL.

`inprocess`: APScheduler fires them inside every API process. `queue`: a procrastinate periodic
task asks `due_firings` which firings are due and defers one job per firing. Either way `fire`
claims the firing by inserting its (schedule, fire time) key, so exactly one process re-judges
per firing, and starts the re-judge runs through the one `create_run`.
"""

from __future__ import annotations

import logging
import math
import uuid
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from croniter import croniter
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from judge_service.contract.schedules import check_cron
from judge_service.contract.validation import MAX_INTERVAL_S
from judge_service.jobs.context import JobContext
from judge_service.jobs.rejudge import start_rejudge
from judge_service.jobs.submit import SubmitError
from judge_service.store import repo
from judge_service.store.models import Schedule, ScheduleFire, utcnow

log = logging.getLogger(__name__)
MISFIRE_GRACE_S = 300


def trigger_for(schedule: Schedule) -> CronTrigger | IntervalTrigger:
    """The APScheduler trigger of a stored schedule (cron in UTC, or a fixed interval)."""
    if schedule.cron:
        return CronTrigger.from_crontab(schedule.cron, timezone=UTC)
    if schedule.interval_seconds:
        # Anchored at creation, so every replica fires on the same ticks and claims the same keys.
        return IntervalTrigger(seconds=schedule.interval_seconds, start_date=_created(schedule), timezone=UTC)
    raise ValueError(f"schedule {schedule.name!r} has neither cron nor interval_seconds")


def _created(schedule: Schedule) -> datetime:
    # SQLite hands back naive UTC; a schedule not stored yet counts from now.
    created = schedule.created_at or datetime.now(UTC)
    return created.replace(tzinfo=UTC) if created.tzinfo is None else created


def firing_key(schedule: Schedule, now: datetime) -> str:
    """The firing a moment belongs to: the cron minute, or the interval tick since creation.

    Replicas that fire the same schedule a little apart derive the same key, so one claim wins.
    """
    if schedule.interval_seconds:
        return f"tick-{int((now - _created(schedule)).total_seconds() // schedule.interval_seconds)}"
    return now.astimezone(UTC).strftime("minute-%Y-%m-%dT%H:%M")


def schedule_problem(schedule: Schedule, now: datetime | None = None) -> str | None:
    """Why a stored schedule cannot be loaded (bad cron, interval out of bounds, ...), or None.

    Rows written past the API (by hand, or before validation existed) go through the same checks
    as `POST /schedules`, then the trigger computes its next firing, as APScheduler will at start.
    """
    now = now or datetime.now(UTC)
    try:
        if not isinstance(schedule.experiments, list) or not schedule.experiments:
            return "experiments must be a non-empty list"
        if schedule.cron:
            check_cron(schedule.cron)
            croniter(schedule.cron, now).get_prev(datetime)
        elif schedule.interval_seconds is not None and not 1 <= schedule.interval_seconds <= MAX_INTERVAL_S:
            return f"interval_seconds {schedule.interval_seconds} is outside 1..{MAX_INTERVAL_S}"
        trigger_for(schedule).get_next_fire_time(None, now)
        if schedule.interval_seconds:
            last_fire_time(schedule, now)
    except Exception as exc:  # noqa: BLE001 - whatever a bad row raises, it must not stop the service
        return f"{exc.__class__.__name__}: {exc}"
    return None


async def disable_unloadable(ctx: JobContext, schedules: list[Schedule]) -> list[Schedule]:
    """Disable (with the reason, logged) every schedule that cannot be loaded; returns the loadable ones."""
    loadable = []
    for schedule in schedules:
        problem = schedule_problem(schedule)
        if problem is None:
            loadable.append(schedule)
            continue
        log.error("schedule %s (%r) cannot be loaded and is disabled: %s", schedule.id, schedule.name, problem)
        async with ctx.sessions() as session, session.begin():
            await session.execute(
                update(Schedule).where(Schedule.id == schedule.id).values(enabled=False, disabled_reason=problem)
            )
    return loadable


class RejudgeScheduler:
    """Keeps APScheduler's jobs in step with the `schedules` table."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.scheduler = AsyncIOScheduler(timezone=UTC)

    async def start(self) -> None:
        """Load every enabled schedule and start firing."""
        async with self.ctx.sessions() as session:
            schedules = list((await session.execute(select(Schedule).where(Schedule.enabled))).scalars())
        for schedule in await disable_unloadable(self.ctx, schedules):
            self.add(schedule)
        self.scheduler.start()

    def shutdown(self) -> None:
        """Stop firing (runs already started go on until the process stops)."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def add(self, schedule: Schedule) -> None:
        """(Re)register one schedule."""
        self.scheduler.add_job(
            self._fire,
            trigger_for(schedule),
            args=[schedule.id],
            id=str(schedule.id),
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=300,
        )

    def remove(self, schedule_id: int) -> None:
        """Forget one schedule."""
        if self.scheduler.get_job(str(schedule_id)):
            self.scheduler.remove_job(str(schedule_id))

    async def _fire(self, schedule_id: int) -> list[str]:
        try:
            return await fire(self.ctx, schedule_id)
        except Exception:  # a lost database must not kill the scheduler: the next firing tries again
            log.exception("schedule %s could not fire", schedule_id)
            return []

    async def run_now(self, schedule_id: int) -> list[str]:
        """Fire a schedule immediately."""
        return await run_now(self.ctx, schedule_id)


async def fire(ctx: JobContext, schedule_id: int, fire_key: str | None = None) -> list[str]:
    """Claim this firing, then start one re-judge run per experiment; returns the run ids."""
    if fire_key is None:
        async with ctx.sessions() as session:
            schedule = await session.get(Schedule, schedule_id)
        if schedule is None:
            return []
        fire_key = firing_key(schedule, datetime.now(UTC))
    key = fire_key
    try:
        async with ctx.sessions() as session, session.begin():
            session.add(ScheduleFire(schedule_id=schedule_id, fire_key=key))
    except IntegrityError:
        log.info("schedule %s firing %s already claimed by another replica", schedule_id, key)
        return []
    async with ctx.sessions() as session:
        schedule = await session.get(Schedule, schedule_id)
    if schedule is None:
        return []
    run_ids = []
    for ref in schedule.experiments:
        async with ctx.sessions() as session:
            experiment = await repo.get_experiment(session, str(ref))
        if experiment is None:
            log.error("schedule %s: no experiment %r", schedule.name, ref)
            continue
        try:
            run_ids.append(
                await start_rejudge(
                    ctx,
                    experiment,
                    rubric=schedule.rubric,
                    sample_size=schedule.sample_size,
                    sample_fraction=schedule.sample_fraction,
                    schedule_id=schedule.id,
                )
            )
        except SubmitError as exc:
            log.error("schedule %s: cannot re-judge %s: %s", schedule.name, experiment.name, exc.message)
    # Plain UPDATEs: the schedule may have been deleted meanwhile, which is fine.
    async with ctx.sessions() as session, session.begin():
        await session.execute(
            update(ScheduleFire)
            .where(ScheduleFire.schedule_id == schedule_id, ScheduleFire.fire_key == key)
            .values(run_ids=run_ids)
        )
        await session.execute(update(Schedule).where(Schedule.id == schedule_id).values(last_fired_at=utcnow()))
    return run_ids


async def run_now(ctx: JobContext, schedule_id: int) -> list[str]:
    """Fire a schedule immediately (a manual firing has its own key)."""
    return await fire(ctx, schedule_id, f"manual-{uuid.uuid4().hex[:12]}")


def last_fire_time(schedule: Schedule, now: datetime) -> datetime | None:
    """The latest moment at or before `now` the schedule was due (None before its first tick)."""
    if schedule.cron:
        # APScheduler's cron and croniter agree on five-field crontab lines (UTC here).
        previous: datetime = croniter(schedule.cron, now.astimezone(UTC)).get_prev(datetime)
        return previous.replace(tzinfo=UTC)
    assert schedule.interval_seconds
    ticks = math.floor((now - _created(schedule)).total_seconds() / schedule.interval_seconds)
    return None if ticks < 1 else _created(schedule) + timedelta(seconds=ticks * schedule.interval_seconds)


async def due_firings(ctx: JobContext, now: datetime) -> list[tuple[int, str]]:
    """(schedule id, firing key) of every enabled schedule due now and not fired yet (queue mode)."""
    async with ctx.sessions() as session:
        schedules = list((await session.execute(select(Schedule).where(Schedule.enabled))).scalars())
    schedules = await disable_unloadable(ctx, schedules)
    async with ctx.sessions() as session:
        due: list[tuple[int, str]] = []
        for schedule in schedules:
            at = last_fire_time(schedule, now)
            if at is None or at < _created(schedule) or (now - at).total_seconds() > MISFIRE_GRACE_S:
                continue
            key = firing_key(schedule, at)
            if await session.get(ScheduleFire, (schedule.id, key)) is None:
                due.append((schedule.id, key))
        return due

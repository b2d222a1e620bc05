"""FastAPI application: start-up (migrations, rubric check, resume runs), error mapping, routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from judge_service.api.routes import dashboard, experiments, health, judge, labels, reports, rubrics, schedules
from judge_service.config import Settings, get_settings
from judge_service.engine.client import JudgeClient
from judge_service.jobs.context import ServiceContext
from judge_service.jobs.rejudge import evaluate_rejudge
from judge_service.jobs.runner import RunExecutor
from judge_service.jobs.scheduler import RejudgeScheduler
from judge_service.jobs.submit import SubmitError
from judge_service.reports.winrate import ReportError
from judge_service.rubrics.registry import RubricError, RubricRegistry
from judge_service.store import db, repo
from judge_service.store.models import ApiKey

log = logging.getLogger("judge_service")


async def build_context(settings: Settings, migrate: bool = True) -> ServiceContext:
    """Open the database (migrating it), load and check rubrics, connect the judge client."""
    if migrate:
        await db.upgrade_async(settings.database_url)
    engine = db.create_engine(settings.database_url)
    sessions = db.session_factory(engine)
    registry = RubricRegistry.load(settings.rubrics_dir, settings.prompts_dir)
    async with sessions() as session:
        for problem in registry.check_recorded(await repo.recorded_rubric_hashes(session)):
            log.error(problem)
    client = JudgeClient(settings)
    executor = RunExecutor(sessions, client, settings.store_messages)
    ctx = ServiceContext(settings, engine, sessions, registry, client, executor)

    async def on_run_done(run_id: str, counts: dict[str, int]) -> None:
        await evaluate_rejudge(ctx, run_id, counts)

    executor.on_run_done = on_run_done
    return ctx


async def close_context(ctx: ServiceContext) -> None:
    """Stop background work and close connections."""
    if ctx.scheduler is not None:
        ctx.scheduler.shutdown()
    await ctx.executor.shutdown()
    await ctx.client.aclose()
    await ctx.engine.dispose()


async def bootstrap_key(ctx: ServiceContext) -> str | None:
    """On first run (no keys at all) create an admin key, print it once, and return it."""
    async with ctx.sessions() as session, session.begin():
        if (await session.execute(select(func.count()).select_from(ApiKey))).scalar_one():
            return None
        key = await repo.create_api_key(session, "bootstrap-admin", ["submit", "read", "admin"])
    print(
        f"judge-service: created the first API key (scopes submit,read,admin); it is shown only once:\n{key}",
        flush=True,
    )
    if ctx.settings.bootstrap_key_file:
        ctx.settings.bootstrap_key_file.write_text(key + "\n")
    return key


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API application; its lifespan owns the service context."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = await build_context(settings)
        app.state.ctx = ctx
        await bootstrap_key(ctx)
        if settings.scheduler_enabled:
            ctx.scheduler = RejudgeScheduler(ctx)
            await ctx.scheduler.start()
        resumed = await ctx.executor.resume_all()
        if resumed:
            log.info("resuming %d interrupted run(s): %s", len(resumed), ", ".join(resumed))
        try:
            yield
        finally:
            await close_context(ctx)

    app = FastAPI(
        title="judge-service",
        description="LLM-as-a-judge for fine-tuned vs base models: pairwise, per rubric dimension, both orders.",
        version="0.1.0",
        lifespan=lifespan,
    )

    @app.exception_handler(SubmitError)
    async def _submit_error(_: Request, exc: SubmitError) -> JSONResponse:
        # Same shape as FastAPI's validation errors, so clients parse one format.
        return JSONResponse(
            {"detail": [{"loc": exc.loc, "msg": exc.message, "type": "submit_error"}]}, status_code=exc.status
        )

    @app.exception_handler(RubricError)
    async def _rubric_error(_: Request, exc: RubricError) -> JSONResponse:
        return JSONResponse({"detail": [{"loc": ["query", "rubric"], "msg": str(exc), "type": "rubric"}]}, 422)

    @app.exception_handler(ReportError)
    async def _report_error(_: Request, exc: ReportError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    for router in (
        judge.router,
        experiments.router,
        labels.router,
        rubrics.router,
        reports.router,
        schedules.router,
        health.router,
        dashboard.router,
    ):
        app.include_router(router)
    return app

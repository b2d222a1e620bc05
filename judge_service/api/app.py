"""FastAPI application: its lifespan builds the service (`judge_service/service.py`), error mapping, routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from judge_service.api import hardening
from judge_service.api.routes import (
    dashboard,
    experiments,
    health,
    judge,
    labeling,
    labels,
    overlap,
    reports,
    rubrics,
    schedules,
)
from judge_service.config import Settings, get_settings
from judge_service.jobs.submit import SubmitError
from judge_service.reports import offload
from judge_service.reports.errors import ReportError
from judge_service.rubrics.registry import RubricError
from judge_service.service import Service, build_service, close_service, start_service
from judge_service.store import repo
from judge_service.store.models import ApiKey

log = logging.getLogger("judge_service")


async def bootstrap_key(ctx: Service) -> str | None:
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
        ctx = await build_service(settings, "api")
        app.state.ctx = ctx
        try:
            await bootstrap_key(ctx)
            # Interrupted runs need no resume step: their batches' leases run out and the reaper
            # (here, or in the workers) queues them again.
            await start_service(ctx)
            offload.prewarm(("judge_service.reports.compare", "judge_service.reports.winrate"))
            yield
        finally:
            # The report worker processes (reports/offload.py) outlive one app: they end with the process.
            await close_service(ctx)

    app = FastAPI(
        title="judge-service",
        description="LLM-as-a-judge for fine-tuned vs base models: pairwise, per rubric dimension, both orders.",
        version="0.1.0",
        lifespan=lifespan,
    )

    hardening.install(app, settings.max_request_bytes)
    offload.configure(
        settings.report_timeout_s, settings.max_report_slices, settings.max_report_experiments, settings.max_annotators
    )

    @app.exception_handler(SubmitError)
    async def _submit_error(_: Request, exc: SubmitError) -> JSONResponse:
        # Same shape as FastAPI's validation errors, so clients parse one format.
        return JSONResponse(
            {"detail": hardening.json_safe([{"loc": exc.loc, "msg": exc.message, "type": "submit_error"}])},
            status_code=exc.status,
        )

    @app.exception_handler(RubricError)
    async def _rubric_error(_: Request, exc: RubricError) -> JSONResponse:
        detail = [{"loc": ["query", "rubric"], "msg": str(exc), "type": "rubric"}]
        return JSONResponse({"detail": hardening.json_safe(detail)}, 422)

    @app.exception_handler(ReportError)
    async def _report_error(_: Request, exc: ReportError) -> JSONResponse:
        # The documented error shape: a list of {loc, msg, type}, like FastAPI's own 422s.
        detail = [{"loc": exc.loc, "msg": exc.message, "type": "report"}]
        return JSONResponse({"detail": hardening.json_safe(detail)}, status_code=exc.status)

    for router in (
        judge.router,
        experiments.router,
        labels.router,
        overlap.router,
        labeling.router,
        rubrics.router,
        reports.router,
        schedules.router,
        health.router,
        dashboard.router,
    ):
        app.include_router(router)
    return app

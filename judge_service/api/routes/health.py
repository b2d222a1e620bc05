"""`GET /healthz`: database reachable, judge reachable and serving the pinned model."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from judge_service.api.deps import Context
from judge_service.engine.client import JudgeUnavailableError

router = APIRouter(tags=["health"])


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    """Prometheus metrics (re-judge runs and alerts), unauthenticated like /healthz."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz")
async def healthz(ctx: Context) -> JSONResponse:
    """200 when both are fine, 503 with the reasons otherwise."""
    body: dict[str, Any] = {"database": {"ok": True}, "judge": {"ok": True}}
    try:
        async with ctx.sessions() as session:
            await session.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        body["database"] = {"ok": False, "error": f"{exc.__class__.__name__}: {exc}"}
    try:
        info = await ctx.client.check(force=True)
        body["judge"] = {
            "ok": True,
            "model": info.model,
            "revision": ctx.settings.model_revision,
            "max_model_len": info.max_model_len,
            "backend_version": info.backend_version,
            "base_url": ctx.settings.base_url,
        }
    except JudgeUnavailableError as exc:
        body["judge"] = {
            "ok": False,
            "error": str(exc),
            "pinned_model": ctx.settings.model,
            "base_url": ctx.settings.base_url,
        }
    ok = body["database"]["ok"] and body["judge"]["ok"]
    body["status"] = "ok" if ok else "unavailable"
    return JSONResponse(body, status_code=200 if ok else 503)

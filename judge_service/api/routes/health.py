"""`GET /healthz`: database reachable, judge replicas reachable and serving the pinned model."""

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
    """200 when the database and at least one judge replica are fine, 503 with the reasons otherwise."""
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
            "dtype": info.dtype,
            "dtype_source": info.dtype_source,
            "base_url": ctx.settings.base_url,
        }
    except JudgeUnavailableError as exc:
        body["judge"] = {
            "ok": False,
            "error": str(exc),
            "pinned_model": ctx.settings.model,
            "base_url": ctx.settings.base_url,
        }
    # Per replica: state (ok / refused / ejected until ...), reason and calls in flight. Each entry is
    # keyed by index; `as_dict(with_url=False)` leaves the internal address out where it must not show.
    body["judge"]["replicas"] = [r.as_dict() for r in ctx.client.pool.status()]
    ok = body["database"]["ok"] and body["judge"]["ok"]
    body["status"] = "ok" if ok else "unavailable"
    return JSONResponse(body, status_code=200 if ok else 503)

"""`GET /healthz`: database reachable, judge replicas reachable and serving the pinned model; `/metrics`."""

from __future__ import annotations

import re
from typing import Any, Final

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import select, text

from judge_service import auth
from judge_service.api.deps import Context, MaybeCaller
from judge_service.contract.resources import HealthReport
from judge_service.engine.client import JudgeUnavailableError
from judge_service.store.models import Schedule

router = APIRouter(tags=["health"])
_URL: Final = re.compile(r"[a-z][a-z0-9+.-]*://[^\s'\"]+", re.IGNORECASE)


def redacted(message: str) -> str:
    """An error text with every URL (judge replicas, database DSNs) replaced by `<url>`."""
    return _URL.sub("<url>", message)


@router.get("/metrics", include_in_schema=False)
async def metrics(ctx: Context, caller: MaybeCaller) -> Response:
    """Prometheus metrics (re-judge runs and alerts); with JUDGE_METRICS_REQUIRE_KEY, a `read` key is needed."""
    if ctx.settings.metrics_require_key and (caller is None or not auth.has_scope(caller.scopes, "read")):
        raise HTTPException(
            401, "metrics need a key with the 'read' scope (JUDGE_METRICS_REQUIRE_KEY)", {"WWW-Authenticate": "Bearer"}
        )
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


# The body is built as a dict and sent as is (200 or 503); keys absent from it stay absent (exclude_unset).
@router.get(
    "/healthz",
    response_model=HealthReport,
    response_model_exclude_unset=True,
    responses={503: {"model": HealthReport, "description": "Database or judge unavailable."}},
)
async def healthz(ctx: Context, caller: MaybeCaller) -> JSONResponse:
    """200 when the database and at least one judge replica are fine, 503 with the reasons otherwise.

    Anyone may ask; internal addresses (judge URLs, also inside error texts) are shown only to a
    caller with a `read` key.
    """
    detailed = caller is not None and auth.has_scope(caller.scopes, "read")
    body: dict[str, Any] = {"database": {"ok": True}, "judge": {"ok": True}}
    disabled: list[dict[str, Any]] = []
    try:
        async with ctx.sessions() as session:
            await session.execute(text("SELECT 1"))
            rows = await session.execute(
                select(Schedule.id, Schedule.name, Schedule.disabled_reason).where(
                    Schedule.disabled_reason.is_not(None)
                )
            )
            disabled = [{"id": i, "name": n, "disabled_reason": r} for i, n, r in rows.all()]
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        error = f"{exc.__class__.__name__}: {exc}"
        body["database"] = {"ok": False, "error": error if detailed else redacted(error)}
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
        }
        if detailed:
            body["judge"]["base_url"] = ctx.settings.base_url
    except JudgeUnavailableError as exc:
        body["judge"] = {
            "ok": False,
            "error": str(exc) if detailed else redacted(str(exc)),
            "pinned_model": ctx.settings.model,
        }
        if detailed:
            body["judge"]["base_url"] = ctx.settings.base_url
    # Per replica: state (ok / refused / ejected until ...), reason and calls in flight, keyed by
    # index; the internal address only for a caller with a read key.
    replicas = [r.as_dict(with_url=detailed) for r in ctx.client.pool.status()]
    if not detailed:
        for replica in replicas:
            replica.update({k: redacted(v) for k, v in replica.items() if isinstance(v, str)})
    body["judge"]["replicas"] = replicas
    # Schedules the service disabled at start because they could not be loaded (they never stop it).
    body["schedules"] = {"disabled": len(disabled)}
    if detailed:
        body["schedules"]["disabled_schedules"] = disabled
    ok = body["database"]["ok"] and body["judge"]["ok"]
    body["status"] = "ok" if ok else "unavailable"
    return JSONResponse(body, status_code=200 if ok else 503)

"""`GET /rubrics` and `GET /rubrics/{name}/{version}`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException

from judge_service.api.deps import Caller, Context, require
from judge_service.contract.resources import RubricDetail, RubricSummary
from judge_service.engine.verdict import verdict_schema
from judge_service.rubrics.registry import RubricError

router = APIRouter(tags=["rubrics"])


@router.get("/rubrics", response_model=list[RubricSummary])
async def list_rubrics(ctx: Context, _: Annotated[Caller, Depends(require("read"))]) -> list[dict[str, Any]]:
    """Every rubric with its versions and their content hashes."""
    out = []
    for name in ctx.registry.names():
        versions = ctx.registry.versions(name)
        out.append(
            {
                "name": name,
                "newest": versions[-1].ref,
                "description": versions[-1].rubric.description,
                "versions": [
                    {"ref": v.ref, "version": v.rubric.version, "content_hash": v.content_hash} for v in versions
                ],
            }
        )
    return out


@router.get("/rubrics/{name}/{version}", response_model=RubricDetail)
async def get_rubric(
    name: str, version: str, ctx: Context, _: Annotated[Caller, Depends(require("read"))]
) -> dict[str, Any]:
    """One version (`v1`, `1` or `latest`): rubric, templates, hash and the verdict JSON schema."""
    ref = name if version == "latest" else f"{name}@v{version.removeprefix('v')}"
    try:
        found = ctx.registry.get(ref)
    except RubricError as exc:
        raise HTTPException(404, str(exc)) from exc
    return {
        "ref": found.ref,
        "content_hash": found.content_hash,
        "rubric": found.rubric.model_dump(),
        "rubric_text": found.rubric_text,
        "template": {"ref": found.template.ref, "system": found.template.system, "user": found.template.user},
        "verdict_schema": verdict_schema(found.rubric),
    }

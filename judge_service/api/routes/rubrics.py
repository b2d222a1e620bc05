"""`POST /rubrics`, `GET /rubrics` and `GET /rubrics/{name}/{version}`.

Built-in rubric files plus versions added at run time (stored in SQL, seen by every process).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response

from judge_service.api.deps import Caller, Context, require
from judge_service.contract.rubrics import (
    RubricAdded,
    RubricAddRequest,
    RubricDetail,
    RubricSummary,
    RubricVersionSummary,
    TemplateView,
)
from judge_service.engine.verdict import verdict_schema
from judge_service.rubrics.registry import RubricConflictError, RubricError, RubricInvalidError
from judge_service.store.rubric_store import add_rubric

router = APIRouter(tags=["rubrics"])


@router.post(
    "/rubrics",
    status_code=201,
    response_model=RubricAdded,
    responses={200: {"model": RubricAdded, "description": "The same text was already stored (idempotent)."}},
)
async def add(
    body: RubricAddRequest, response: Response, ctx: Context, caller: Annotated[Caller, Depends(require("admin"))]
) -> RubricAdded:
    """Add a new, immutable rubric version; judgments can use it at once, in every process.

    422 names the field of the rubric that is wrong; 409 (with a unified diff) when other text already
    holds this `name@vN`; the same text again is a 200.
    """
    try:
        async with ctx.sessions() as session, session.begin():
            added = await add_rubric(session, ctx.registry, body.rubric_text, added_by=caller.name)
    except RubricInvalidError as exc:
        detail = [{"loc": ["body", "rubric_text", *exc.loc], "msg": str(exc), "type": "rubric_invalid"}]
        raise HTTPException(422, detail) from exc
    except RubricConflictError as exc:
        detail = [{"loc": ["body", "rubric_text"], "msg": str(exc), "type": "conflict", "diff": exc.diff}]
        raise HTTPException(409, detail) from exc
    ctx.registry.remember(added.version)
    if not added.created:
        response.status_code = 200
    version = added.version
    return RubricAdded(
        ref=version.ref,
        name=version.rubric.name,
        version=version.rubric.version,
        content_hash=version.content_hash,
        origin=version.origin,
        created=added.created,
    )


@router.get("/rubrics", response_model=list[RubricSummary])
async def list_rubrics(ctx: Context, _: Annotated[Caller, Depends(require("read"))]) -> list[RubricSummary]:
    """Every rubric with its versions (built-in and added) and their content hashes."""
    await ctx.registry.refresh()
    out = []
    for name in ctx.registry.names():
        versions = ctx.registry.versions(name)
        out.append(
            RubricSummary(
                name=name,
                newest=versions[-1].ref,
                description=versions[-1].rubric.description,
                versions=[
                    RubricVersionSummary(
                        ref=v.ref, version=v.rubric.version, content_hash=v.content_hash, origin=v.origin
                    )
                    for v in versions
                ],
            )
        )
    return out


@router.get("/rubrics/{name}/{version}", response_model=RubricDetail)
async def get_rubric(
    name: str, version: str, ctx: Context, _: Annotated[Caller, Depends(require("read"))]
) -> RubricDetail:
    """One version (`v1`, `1` or `latest`): rubric, templates, hash and the verdict JSON schema."""
    ref = name if version == "latest" else f"{name}@v{version.removeprefix('v')}"
    try:
        found = await ctx.registry.resolve(ref)
    except RubricError as exc:
        raise HTTPException(404, str(exc)) from exc
    return RubricDetail(
        ref=found.ref,
        content_hash=found.content_hash,
        origin=found.origin,
        rubric=found.rubric.model_dump(),
        rubric_text=found.rubric_text,
        template=TemplateView(ref=found.template.ref, system=found.template.system, user=found.template.user),
        verdict_schema=verdict_schema(found.rubric),
    )

"""`POST /experiments/{id}/labels`: import human labels or another judge's verdicts."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path

from judge_service.api.deps import Caller, Context, require
from judge_service.contract.labels import LabelUpload
from judge_service.contract.resources import LabelImportSummary
from judge_service.contract.validation import ExperimentRef
from judge_service.labels.importer import LabelImportError, experiment_for_import, import_labels
from judge_service.labels.parse import LabelFormatError, parse

router = APIRouter(tags=["labels"])


# `:path`: experiment names may contain '/' (docs/api-limits.md).
@router.post("/experiments/{experiment:path}/labels", response_model=LabelImportSummary)
async def upload_labels(
    experiment: Annotated[ExperimentRef, Path(description="Experiment name or id (may contain '/').")],
    body: LabelUpload,
    ctx: Context,
    _: Annotated[Caller, Depends(require("submit"))],
) -> dict[str, Any]:
    """Import labels for stored pairs (lines with prompt and answers create missing pairs); idempotent."""
    limit = ctx.settings.max_labels_per_upload
    if len(body.records) > limit:
        msg = f"{len(body.records)} records; the limit is {limit} per upload (JUDGE_MAX_LABELS_PER_UPLOAD)"
        raise HTTPException(413, [{"loc": ["body", "records"], "msg": msg, "type": "too_large"}])
    text = json.dumps(body.records) if body.format == "alpaca_eval" else "\n".join(map(json.dumps, body.records))
    try:
        parsed = parse(text, body.format, ctx.settings.max_text_chars)
    except LabelFormatError as exc:
        where: list[str | int] = ["body", "records", exc.line - 1, exc.field]
        raise HTTPException(422, [{"loc": where, "msg": str(exc), "type": "label_format"}]) from exc
    async with ctx.sessions() as session, session.begin():
        try:
            exp = await experiment_for_import(session, experiment, parsed)
            summary = await import_labels(session, exp, body.source, parsed, ctx.settings.max_annotators)
        except LabelImportError as exc:
            if exc.loc == ["experiment"]:
                raise HTTPException(
                    404, [{"loc": ["path", "experiment"], "msg": exc.message, "type": "not_found"}]
                ) from exc
            loc: list[str | int] = exc.loc if exc.loc[0] == "path" else ["body", *exc.loc]
            raise HTTPException(422, [{"loc": loc, "msg": exc.message, "type": "label_import"}]) from exc
    return summary.as_dict()

"""`POST /experiments/{id}/labels`: import human labels or another judge's verdicts."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from judge_service.api.deps import Caller, Context, require
from judge_service.labels.importer import LabelImportError, experiment_for_import, import_labels
from judge_service.labels.parse import LabelFormatError, parse

router = APIRouter(tags=["labels"])


class LabelUpload(BaseModel):
    """External verdicts in one of the import formats (the records are the file's objects)."""

    source: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
    format: Literal["jsonl", "alpaca_eval"] = "jsonl"
    records: list[dict[str, Any]] = Field(min_length=1)


@router.post("/experiments/{experiment}/labels")
async def upload_labels(
    experiment: str, body: LabelUpload, ctx: Context, _: Annotated[Caller, Depends(require("submit"))]
) -> dict[str, Any]:
    """Import labels for stored pairs (lines with prompt and answers create missing pairs); idempotent."""
    text = json.dumps(body.records) if body.format == "alpaca_eval" else "\n".join(map(json.dumps, body.records))
    try:
        parsed = parse(text, body.format)
    except LabelFormatError as exc:
        loc = ["body", "records", exc.line - 1, exc.field]
        raise HTTPException(422, [{"loc": loc, "msg": str(exc), "type": "label_format"}]) from exc
    async with ctx.sessions() as session, session.begin():
        try:
            exp = await experiment_for_import(session, experiment, parsed)
            summary = await import_labels(session, exp, body.source, parsed)
        except LabelImportError as exc:
            status = 404 if exc.loc == ["experiment"] else 422
            raise HTTPException(
                status, [{"loc": ["body", *exc.loc], "msg": exc.message, "type": "label_import"}]
            ) from exc
    return summary.as_dict()

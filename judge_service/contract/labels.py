"""Label upload: external verdicts (human raters, AlpacaEval files) for an experiment's pairs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from judge_service.contract.validation import SourceName


class LabelUpload(BaseModel):
    """External verdicts in one of the import formats (the records are the file's objects)."""

    model_config = ConfigDict(extra="forbid")

    source: SourceName
    format: Literal["jsonl", "alpaca_eval"] = "jsonl"
    records: list[dict[str, Any]] = Field(min_length=1, description="At most JUDGE_MAX_LABELS_PER_UPLOAD.")

"""Eval/train overlap checks: `POST` and `GET /experiments/{experiment}/overlap` (docs/fairness-checks.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from judge_service.contract.validation import Identifier, JsonObject, Text

DEFAULT_THRESHOLD = 0.8  # judge_service/overlap/detect.py
DEFAULT_SHINGLE = 5


class OverlapRequest(BaseModel):
    """A training file to compare with the experiment's eval prompts: JSONL text or its records."""

    model_config = ConfigDict(extra="forbid")

    train_jsonl: Text | None = Field(
        default=None, description="The training file as JSONL text (at most JUDGE_MAX_OVERLAP_TRAIN_BYTES)."
    )
    records: list[JsonObject] | None = Field(
        default=None, description="Or its lines as JSON objects (at most JUDGE_MAX_OVERLAP_TRAIN_LINES)."
    )
    train_name: Identifier | None = Field(
        default=None, description="A name for the training file, stored with the check."
    )
    threshold: float = Field(
        default=DEFAULT_THRESHOLD,
        ge=0.5,
        le=1.0,
        description="Least Jaccard similarity of word shingles for a near match.",
    )
    shingle: int = Field(default=DEFAULT_SHINGLE, ge=1, le=16, description="Words per shingle.")

    @model_validator(mode="after")
    def _one_source(self) -> OverlapRequest:
        if (self.train_jsonl is None) == (self.records is None):
            raise ValueError("send exactly one of train_jsonl and records")
        return self


class OverlapMatchOut(BaseModel):
    """An eval pair whose prompt appears in the training file."""

    pair_id: str = Field(description="The pair's id in its experiment, as submitted.")
    kind: Literal["exact", "near"] = Field(
        description="exact: equal after normalisation; near: Jaccard at or above the threshold."
    )
    similarity: float = Field(description="Jaccard similarity of the word-shingle sets (1.0 for exact).")
    train_line: int = Field(description="1-based line of the training file holding the best match.")


class OverlapCheckResult(BaseModel):
    """One stored overlap check of an experiment's prompts against a training file."""

    check_id: int = Field(description="Id of the stored check; exclude=overlap uses the newest.")
    experiment: str = Field(description="Experiment name.")
    created_at: str | None = Field(description="When the check ran (UTC, ISO 8601).")
    train_sha256: str = Field(description="SHA-256 of the training file's bytes (of the JSONL text sent).")
    train_name: str | None = Field(description="The name given for the training file.")
    train_lines: int = Field(description="Non-blank training lines read.")
    train_lines_with_text: int = Field(description="Training lines that held a prompt text (see docs).")
    eval_pairs: int = Field(description="Pairs of the experiment compared.")
    exact: int = Field(description="Pairs whose prompt is in the training file after normalisation.")
    near: int = Field(description="Pairs with a near copy (and no exact one) in the training file.")
    threshold: float = Field(description="Least Jaccard similarity of a near match.")
    shingle: int = Field(description="Words per shingle.")
    num_perm: int = Field(description="MinHash permutations of the LSH candidate search.")
    matches: list[OverlapMatchOut] = Field(description="Every flagged pair, exact first, then by similarity.")

    @classmethod
    def of(cls, view: dict[str, Any]) -> OverlapCheckResult:
        """From overlap.checks.check_view."""
        return cls.model_validate(view)

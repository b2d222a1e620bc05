"""Judging requests and responses: `POST /judge/pairwise` and `GET /runs/{id}`."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator

from judge_service.contract.validation import (
    INT64_MAX,
    MAX_REPEATS,
    ExperimentMetadata,
    ExperimentName,
    Identifier,
    JsonObject,
    ModelName,
    NonBlankText,
    PositiveInt32,
    RubricRef,
    Sha256Hex,
    StrictFiniteFloat,
    StrictInt,
    Tags,
    Text,
)

Scalar = str | int | float | bool | None
GENERATION_FIELDS = ("temperature", "top_p", "max_tokens", "seed", "system_prompt_sha256")


class GenerationSettings(BaseModel):
    """Decoding settings one side (Base or FT) was generated with; every field optional.

    A field left out is unknown, never assumed equal to the other side's (docs/fairness-checks.md).
    `system_prompt` is hashed (SHA-256 of its UTF-8 bytes) and not stored; give it or the hash, not both.
    """

    model_config = ConfigDict(extra="forbid")

    temperature: StrictFiniteFloat | None = Field(default=None, ge=0, le=100, description="Sampling temperature.")
    top_p: StrictFiniteFloat | None = Field(default=None, ge=0, le=1, description="Nucleus sampling mass.")
    max_tokens: Annotated[PositiveInt32, Strict()] | None = Field(
        default=None, description="Generation length limit in tokens."
    )
    seed: StrictInt | None = Field(default=None, ge=-INT64_MAX - 1, le=INT64_MAX, description="Sampling seed.")
    system_prompt_sha256: Sha256Hex | None = Field(
        default=None, description="SHA-256 (hex) of the system prompt the answers were generated with."
    )
    system_prompt: Text | None = Field(
        default=None, max_length=200_000, description="The system prompt itself: hashed on arrival, never stored."
    )

    @model_validator(mode="after")
    def _hash_system_prompt(self) -> GenerationSettings:
        if self.system_prompt is not None:
            digest = hashlib.sha256(self.system_prompt.encode()).hexdigest()
            if self.system_prompt_sha256 is not None and self.system_prompt_sha256 != digest:
                raise ValueError("system_prompt and system_prompt_sha256 disagree; send one of them")
            self.system_prompt_sha256 = digest
            self.system_prompt = None
        return self

    def stored(self) -> dict[str, Any]:
        """The settings as stored: the known fields, in a fixed order (the system prompt only as its hash)."""
        return {name: getattr(self, name) for name in GENERATION_FIELDS if getattr(self, name) is not None}


class ExperimentSpec(BaseModel):
    """The experiment a submission belongs to; created on first use."""

    model_config = ConfigDict(extra="forbid")

    name: ExperimentName
    base_model: ModelName
    ft_model: ModelName
    metadata: ExperimentMetadata = Field(default_factory=dict)
    default_repeats: int | None = Field(default=None, ge=1, le=MAX_REPEATS, description="Stored on first use.")
    base_generation: GenerationSettings | None = Field(
        default=None, description="Base's decoding settings for every item (an item's own fields override)."
    )
    ft_generation: GenerationSettings | None = Field(
        default=None, description="FT's decoding settings for every item (an item's own fields override)."
    )


class JudgeOptions(BaseModel):
    """How to judge: repeats per order, both orders or one, whether to retry failed judgments, tie margin."""

    model_config = ConfigDict(extra="forbid")

    repeats: int | None = Field(default=None, ge=1, le=16, description="Default: the experiment's, else 1.")
    swap: bool = True
    mode: Literal["reasoned", "fast"] = "reasoned"
    retry_failed: bool = False
    tie_margin: float | None = Field(
        default=None,
        ge=0,
        lt=0.5,
        description="Stored on the experiment: a pair is a win or loss only when |score - 0.5| exceeds it.",
    )


class PairItem(BaseModel):
    """One prompt with both answers."""

    model_config = ConfigDict(extra="forbid")

    id: Identifier
    # Texts: NUL and lone surrogates refused, blank (incl. zero-width only) refused, length checked
    # against JUDGE_MAX_TEXT_CHARS at submission (a setting, so not here).
    prompt: NonBlankText
    base_output: NonBlankText
    ft_output: NonBlankText
    reference: Text | None = None
    tags: Tags = Field(default_factory=dict)
    metadata: JsonObject = Field(default_factory=dict)
    base_generation: GenerationSettings | None = Field(default=None, description="Base's decoding settings.")
    ft_generation: GenerationSettings | None = Field(default=None, description="FT's decoding settings.")


class PairwiseRequest(BaseModel):
    """Body of `POST /judge/pairwise`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    experiment: ExperimentSpec
    rubric: RubricRef
    options: JudgeOptions = Field(default_factory=JudgeOptions)
    run_async: bool = Field(default=False, alias="async")
    items: list[PairItem] = Field(min_length=1)


class Verdict(BaseModel):
    """One judgment of a pair, in FT's view."""

    order: Literal["base_first", "ft_first"] = Field(description="Answer order shown to the judge.")
    repeat: int = Field(description="Repeat index within the order.")
    seed: int = Field(description="Sampling seed of the judgment.")
    status: Literal["pending", "done", "failed"] = Field(description="pending, done or failed.")
    winner: Literal["base", "ft", "tie"] | None = Field(
        default=None, description="Winner by model (base, ft or tie); null unless done."
    )
    winner_slot: Literal["A", "B", "tie"] | None = Field(
        default=None, description="Winner by position (A, B or tie); null unless done."
    )
    s_ft: float | None = Field(default=None, description="FT's score of this judgment in [0, 1]; null unless done.")
    scores: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="Scores per dimension: {dimension: {base, ft}}."
    )
    rationale: str | None = Field(default=None, description="The judge's rationale.")
    tags_base: list[str] = Field(default_factory=list, description="Failure tags of the Base answer.")
    tags_ft: list[str] = Field(default_factory=list, description="Failure tags of the FT answer.")
    failure_reason: str | None = Field(default=None, description="Why the judgment failed; null unless failed.")
    raw_reply: str | None = Field(default=None, description="The judge's raw reply (failed judgments only).")


class ItemResult(BaseModel):
    """Per-item answer: outcome for FT, pair score, consistency, verdicts and failures."""

    id: str = Field(description="The pair's id.")
    outcome: Literal["win", "tie", "loss"] | None = Field(
        description="FT's outcome by the tie margin; null while an order lacks a valid judgment."
    )
    score: float | None = Field(description="Pair score in [0, 1] (1 = FT better); null while incomplete.")
    inconsistent: bool = Field(description="True when the two orders disagree.")
    dimensions: dict[str, dict[str, float]] = Field(description="Mean scores per dimension: {dimension: {base, ft}}.")
    rationales: list[str] = Field(description="The judge's rationales.")
    failure_tags: dict[str, list[str]] = Field(description="Failure tags per side: {base: [...], ft: [...]}.")
    verdicts: list[Verdict] = Field(description="Valid judgments.")
    failed: list[Verdict] = Field(description="Failed judgments.")


class RunCounts(BaseModel):
    """Judgments of a run by status."""

    done: int = Field(description="Judgments done.")
    failed: int = Field(description="Judgments failed.")
    pending: int = Field(description="Judgments not finished yet.")


class RunResult(BaseModel):
    """Status and (when done) the per-item results of a run."""

    run_id: str = Field(description="Run id.")
    status: str = Field(description="queued, running, done or failed.")
    experiment: str = Field(description="Experiment name.")
    rubric: str = Field(description="Rubric version as name@vN.")
    judge: dict[str, Any] = Field(description="The judge's identity (model, revision, fingerprint, ...).")
    counts: RunCounts = Field(description="Judgments by status.")
    error: str | None = Field(default=None, description="Why the run failed; null otherwise.")
    created_at: str | None = Field(default=None, description="When the run was created (UTC, ISO 8601).")
    finished_at: str | None = Field(default=None, description="When it finished (UTC, ISO 8601); null while running.")
    items: list[ItemResult] | None = Field(
        default=None, description="Per-item results once done (a page: offset, limit); null before."
    )
    items_total: int = Field(default=0, description="Items in the run.")
    offset: int = Field(default=0, description="Index of the first item returned.")


class AcceptedRun(BaseModel):
    """202 answer for asynchronous submissions."""

    run_id: str = Field(description="Run id.")
    status: str = Field(description="accepted.")
    status_url: str = Field(description="Where to poll the run.")
    items: int = Field(description="Items submitted.")

"""Experiments without judging: `POST /experiments`, and the pair export `GET /experiments/{id}/export`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from judge_service.contract.validation import ExperimentMetadata, ExperimentName, ModelName


class ExperimentCreate(BaseModel):
    """Body of `POST /experiments`: an experiment named before anything is judged (e.g. to import labels)."""

    model_config = ConfigDict(extra="forbid")

    name: ExperimentName = Field(description="Unique experiment name (the same rules as a submission's).")
    base_model: ModelName = Field(description="Name of the Base model (the baseline).")
    ft_model: ModelName = Field(description="Name of the fine-tuned model compared against Base.")
    metadata: ExperimentMetadata = Field(
        default_factory=dict,
        description="Free-form metadata, e.g. series and step; default_repeats (1-16) and tie_margin ([0, 0.5)) "
        "are read by the service.",
    )


class ExperimentView(BaseModel):
    """An experiment as stored."""

    id: int = Field(description="Numeric id (usable wherever an experiment name is).")
    name: str = Field(description="Unique experiment name.")
    base_model: str = Field(description="Name of the Base model.")
    ft_model: str = Field(description="Name of the fine-tuned model.")
    metadata: dict[str, Any] = Field(description="Metadata given at creation.")
    created_at: str | None = Field(description="When it was created (ISO 8601, UTC).")
    created: bool = Field(description="True when this request created it; false when an identical one existed.")


class ExportedPair(BaseModel):
    """One pair with its judge results: outcome for FT, pair score, per-dimension scores and rationales."""

    id: str = Field(description="The pair's id in its experiment.")
    prompt: str = Field(description="The prompt both models answered.")
    base_output: str = Field(description="Base's answer.")
    ft_output: str = Field(description="FT's answer.")
    tags: dict[str, Any] = Field(description="The pair's tags.")
    outcome: Literal["win", "tie", "loss"] | None = Field(
        description="FT's outcome; null when not judged or an order has no valid judgment."
    )
    score: float | None = Field(description="Pair score from FT's view (1 = FT better, 0.5 = tie), or null.")
    inconsistent: bool = Field(description="True when the two answer orders disagree.")
    judgments: int = Field(description="Valid (done) judgments the result is built from.")
    failed: int = Field(description="Failed judgments of the pair.")
    dimensions: dict[str, dict[str, float]] = Field(
        description="Per rubric dimension: mean Base score, mean FT score and their difference (ft - base)."
    )
    rationales: list[str] = Field(description="The judge's rationales, one per valid judgment.")


class ExperimentExport(BaseModel):
    """A page of an experiment's pairs with their judge results."""

    experiment: str = Field(description="Experiment name.")
    rubric: str | None = Field(description="Rubric version whose judgments are exported (name@vN), or null if none.")
    mode: str = Field(description="Judging mode exported: reasoned or fast.")
    total: int = Field(description="Pairs in the experiment.")
    offset: int = Field(description="Index of the first pair of this page.")
    items: list[ExportedPair] = Field(description="The pairs of this page, in creation order.")

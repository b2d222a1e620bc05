"""Rubric data model: what a `rubrics/<name>/v<N>.yaml` file holds."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator, model_validator

from judge_service.contract.validation import FiniteFloat, Text

RESERVED_KEYS = frozenset({"tags"})
# A weighted decision's margin lies within the largest weighted difference of 1-5 scores.
MAX_TIE_MARGIN = 4.0

FAILURE_TAGS: tuple[str, ...] = (
    "format_error",
    "factual_error",
    "refusal",
    "off_topic",
    "verbose",
    "unsafe",
)


class Dimension(BaseModel):
    """One judged dimension with its 1-5 anchors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,23}$")
    title: Text
    description: Text
    anchors: dict[int, Text]

    @field_validator("key")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        # The verdict's keys are `<key>_a`/`<key>_b`: "tags" would collide with `tags_a`/`tags_b`, the
        # failure tags, and every judgment with the rubric would fail to parse.
        if value in RESERVED_KEYS:
            raise ValueError(f"{value!r} is reserved (the verdict's {value}_a/{value}_b hold the failure tags)")
        return value

    @field_validator("anchors")
    @classmethod
    def _five_anchors(cls, value: dict[int, str]) -> dict[int, str]:
        if sorted(value) != [1, 2, 3, 4, 5]:
            raise ValueError("anchors must have exactly the keys 1..5")
        return value


class Decision(BaseModel):
    """How the overall winner is decided: the judge's holistic call or a weighted rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["holistic", "weighted"] = "holistic"
    weights: dict[str, Annotated[FiniteFloat, Field(ge=0)]] | None = None
    tie_margin: Annotated[FiniteFloat, Field(ge=0, le=MAX_TIE_MARGIN)] = 0.25

    @field_validator("weights")
    @classmethod
    def _some_weight(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        # The weighted rule divides by the sum of the weights.
        if value is not None and not sum(value.values()) > 0:
            raise ValueError("weights must not all be 0")
        return value


class Rubric(BaseModel):
    """A versioned rubric. Immutable once used; identified by `name@vN` and content hash."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Bounds of the `rubric_versions` columns (name String(100), version Integer).
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=100)
    version: Annotated[int, Strict()] = Field(ge=1, le=2**31 - 1)
    description: Text
    # No leading zeros: "pairwise@v01" would load the v1 files under another ref, rendered as a new template.
    prompt: str = Field(max_length=100, pattern=r"^[a-z][a-z0-9_]*@v[1-9][0-9]{0,8}$")
    decision: Decision = Decision()
    dimensions: tuple[Dimension, ...] = Field(min_length=1, max_length=32)

    @model_validator(mode="after")
    def _check(self) -> Rubric:
        keys = [d.key for d in self.dimensions]
        if len(set(keys)) != len(keys):
            raise ValueError("dimension keys must be unique")
        if self.decision.method == "weighted":
            weights = self.decision.weights or {}
            if set(weights) != set(keys):
                raise ValueError("weighted decision needs one weight per dimension key")
        return self

    @property
    def ref(self) -> str:
        """The pinned reference `name@vN`."""
        return f"{self.name}@v{self.version}"

    @property
    def dimension_keys(self) -> list[str]:
        """Dimension keys in rubric order."""
        return [d.key for d in self.dimensions]

"""Rubric data model: what a `rubrics/<name>/v<N>.yaml` file holds."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
    title: str
    description: str
    anchors: dict[int, str]

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
    weights: dict[str, float] | None = None
    tie_margin: float = 0.25


class Rubric(BaseModel):
    """A versioned rubric. Immutable once used; identified by `name@vN` and content hash."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Bounds of the `rubric_versions` columns (name String(100), version Integer).
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=100)
    version: int = Field(ge=1, le=2**31 - 1)
    description: str
    prompt: str = Field(pattern=r"^[a-z][a-z0-9_]*@v[0-9]+$")
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

"""Labelling requests and replies: tasks (admin) and the blind rater queue (`label` keys).

Nothing a rater receives names a model, a pair id, a verdict or another rater (the page is blind).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from judge_service.contract.validation import ExperimentRef, Identifier, Int32, RubricRef, Text

MAX_COMMENT_CHARS = 5000  # the page and the spreadsheet share one limit


class SampleSpec(BaseModel):
    """Which pairs: all, N at random, or N stratified by the judge's outcome (hard pairs over-sampled)."""

    kind: Literal["all", "random", "stratified"] = "all"
    n: int | None = Field(default=None, ge=1, le=1_000_000)
    seed: Int32 = 0
    hard_share: float = Field(default=0.5, ge=0.0, le=1.0, description="Stratified: share of N for hard pairs.")


class TaskCreate(BaseModel):
    """A labelling task."""

    experiment: ExperimentRef
    raters: list[Identifier] = Field(
        min_length=1, max_length=50, description="Rater names (= their label keys' names)."
    )
    raters_per_pair: int = Field(default=2, ge=1, le=5)
    rubric: RubricRef = "human_review"
    sample: SampleSpec = SampleSpec()
    name: Identifier | None = None
    source: str = Field(default="human", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
    issue_keys: bool = Field(default=False, description="Create a `label` key per rater; returned once.")


class Dimension(BaseModel):
    """A dimension as raters see it."""

    key: str = Field(description="Dimension key.")
    title: str = Field(description="Dimension title.")
    description: str = Field(description="What the dimension asks.")
    anchors: dict[int, str] = Field(description="What each score (1-5) means.")


class RaterItem(BaseModel):
    """One blind assignment: nothing here names a model, a pair id, a verdict or another rater."""

    token: str = Field(description="The assignment's token (to save it).")
    task: int = Field(description="Task id.")
    position: int = Field(description="Position in the rater's queue.")
    status: str = Field(description="pending, draft or done.")
    prompt: str = Field(description="The prompt.")
    expected: str | None = Field(description="Expected answer, if any.")
    answer_1: str = Field(description="The answer shown first.")
    answer_2: str = Field(description="The answer shown second.")
    scores: dict[str, dict[str, int]] = Field(description='Saved scores: {"1": {dimension: 1-5}, "2": {...}}.')
    preference: str | None = Field(description="Saved preference: 1, 2 or tie.")
    comment: str | None = Field(description="Saved comment.")


class RaterTask(BaseModel):
    """The rubric a task scores with (by task id; the task's name is not shown: it may name models)."""

    id: int = Field(description="Task id.")
    dimensions: list[Dimension] = Field(description="Dimensions to score.")


class RaterQueue(BaseModel):
    """A rater's queue."""

    rater: str = Field(description="The rater (the key's name).")
    tasks: list[RaterTask] = Field(description="Tasks the rater has assignments in.")
    items: list[RaterItem] = Field(description="The rater's assignments, in queue order.")
    done: int = Field(description="Assignments done.")
    total: int = Field(description="Assignments in all.")


class RaterSubmission(BaseModel):
    """What a rater gives for one assignment (partial = autosaved draft)."""

    scores: dict[str, dict[str, int | None]] = Field(default_factory=dict, description='{"1": {dim: 1-5}, "2": {...}}')
    preference: Literal["1", "2", "tie"] | None = None
    comment: Text | None = Field(default=None, max_length=MAX_COMMENT_CHARS)


class SaveReply(BaseModel):
    """Result of a save."""

    token: str = Field(description="The assignment's token.")
    status: str = Field(description="Its status after the save.")
    changed: bool = Field(description="True when the save changed something.")
    done: int = Field(description="The rater's assignments done.")
    total: int = Field(description="The rater's assignments in all.")

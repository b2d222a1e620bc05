"""Typed resource models: experiments, pairs, schedules, health, label imports, labelling tasks.

What the other non-report routes return, field by field (the reports are in `contract/reports.py`,
rubrics in `contract/rubrics.py`, experiment creation and export in `contract/experiments.py`). The
routes keep building plain dicts and FastAPI validates them into these models (`response_model`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from judge_service.contract.reports import Conclusion, SideMeans, WinRateBlock


class ExperimentSummary(BaseModel):
    """An experiment with its pair and judgment counts."""

    id: int = Field(description="Experiment id.")
    name: str = Field(description="Experiment name (unique).")
    base_model: str = Field(description="The Base model's name.")
    ft_model: str = Field(description="The fine-tuned model's name.")
    metadata: dict[str, Any] = Field(description="Free-form experiment metadata (series, step, tie_margin, ...).")
    created_at: str | None = Field(description="When it was created (UTC, ISO 8601).")
    pairs: int = Field(description="Stored pairs.")
    judgments: int = Field(description="Judgments of its pairs, every purpose and run.")


class PairJudgment(BaseModel):
    """One stored judgment of a pair, with its provenance."""

    order: Literal["base_first", "ft_first"] = Field(description="Answer order shown to the judge.")
    repeat: int = Field(description="Repeat index within the order.")
    seed: int = Field(description="Sampling seed of the judgment.")
    status: Literal["pending", "done", "failed"] = Field(description="Judgment status.")
    winner: Literal["base", "ft", "tie"] | None = Field(description="Winner by model; null unless done.")
    winner_slot: Literal["A", "B", "tie"] | None = Field(description="Winner by position; null unless done.")
    s_ft: float | None = Field(description="FT's score of this judgment in [0, 1]; null unless done.")
    scores: dict[str, dict[str, int]] = Field(description="Scores per dimension: {dim: {base, ft}}.")
    rationale: str | None = Field(description="The judge's rationale.")
    tags_base: list[str] = Field(description="Failure tags of the Base answer.")
    tags_ft: list[str] = Field(description="Failure tags of the FT answer.")
    failure_reason: str | None = Field(description="Why the judgment failed; null unless failed.")
    raw_reply: str | None = Field(description="The judge's raw reply.")
    id: int = Field(description="Judgment id.")
    rubric: str | None = Field(description="Rubric version as name@vN.")
    judge_fingerprint: str | None = Field(description="Hash of the judge's identity.")
    run_id: str | None = Field(description="The run that made it.")
    purpose: str = Field(description="judge or rejudge.")
    mode: str = Field(description="reasoned or fast.")
    messages_hash: str | None = Field(description="Hash of the messages sent to the judge.")
    defences: Any = Field(description="Prompt-injection defences applied.")
    prompt_tokens: int | None = Field(description="Prompt tokens used.")
    completion_tokens: int | None = Field(description="Completion tokens used.")
    latency_ms: float | None = Field(description="Judge call latency in milliseconds.")
    attempts: int | None = Field(description="Calls made for this judgment (retries included).")
    created_at: str | None = Field(description="When it was created (UTC, ISO 8601).")
    completed_at: str | None = Field(description="When it completed (UTC, ISO 8601).")


class PairDetail(BaseModel):
    """A pair with every judgment ever made of it."""

    experiment: str = Field(description="Experiment name.")
    id: str = Field(description="The pair's id in its experiment.")
    prompt: str = Field(description="The prompt.")
    base_output: str = Field(description="Base's answer.")
    ft_output: str = Field(description="FT's answer.")
    reference: str | None = Field(description="Reference answer, if any.")
    tags: dict[str, Any] = Field(description="The pair's tags.")
    metadata: dict[str, Any] = Field(description="The pair's metadata.")
    created_at: str | None = Field(description="When it was stored (UTC, ISO 8601).")
    judgments: list[PairJudgment] = Field(description="Every judgment of the pair.")


class ScheduleView(BaseModel):
    """A stored re-judge schedule."""

    id: int = Field(description="Schedule id.")
    name: str = Field(description="Schedule name (unique).")
    # Any: a row written by hand or by an older version may hold anything; such a schedule is disabled.
    experiments: Any = Field(description="Experiments (names or ids) it re-judges, as stored: normally a list.")
    rubric: str | None = Field(description="Rubric to re-judge with; null for the original's.")
    sample_size: int | None = Field(description="Pairs sampled per experiment and firing.")
    sample_fraction: float | None = Field(description="Or this share of the pairs per firing.")
    cron: str | None = Field(description="Cron expression (UTC); null with interval_seconds.")
    interval_seconds: int | None = Field(description="Interval between firings; null with cron.")
    enabled: bool = Field(description="Whether it fires.")
    created_at: str | None = Field(description="When it was created (UTC, ISO 8601).")
    last_fired_at: str | None = Field(description="When it last fired (UTC, ISO 8601); null if never.")
    disabled_reason: str | None = Field(description="Why the service disabled it at start; null if loaded.")


class ScheduleFired(BaseModel):
    """The re-judge runs a schedule fired."""

    schedule_id: int = Field(description="Schedule id.")
    run_ids: list[str] = Field(description="Re-judge run ids (poll GET /runs/{id}).")


class DatabaseHealth(BaseModel):
    """Whether the database answers."""

    ok: bool = Field(description="True when SELECT 1 succeeded.")
    error: str | None = Field(default=None, description="The error when not ok (URLs redacted without a read key).")


class ReplicaHealth(BaseModel):
    """One judge replica as the pool sees it."""

    index: int = Field(description="Replica index in JUDGE_BASE_URL.")
    url: str | None = Field(default=None, description="Replica URL; only for a caller with a read key.")
    state: Literal["unchecked", "ok", "refused", "ejected"] = Field(description="Replica state.")
    reason: str | None = Field(description="Why it is refused or ejected.")
    ejected_until: str | None = Field(description="Until when it is ejected (UTC, ISO 8601).")
    outstanding: int = Field(description="Calls in flight.")
    limit: int = Field(description="Concurrent calls allowed.")
    calls: int = Field(description="Calls started since the service started.")
    failures: int = Field(description="Failed calls since the service started.")
    backend_version: str | None = Field(description="Serving backend's version.")
    dtype: str | None = Field(description="Model dtype the replica serves.")


class JudgeHealth(BaseModel):
    """Whether a judge replica serves the pinned model, and what it serves."""

    ok: bool = Field(description="True when at least one replica serves the pinned model.")
    model: str | None = Field(default=None, description="Served model (when ok).")
    revision: str | None = Field(default=None, description="Pinned model revision (when ok).")
    max_model_len: int | None = Field(default=None, description="Context length served (when ok).")
    backend_version: str | None = Field(default=None, description="Serving backend's version (when ok).")
    dtype: str | None = Field(default=None, description="Served dtype (when ok).")
    dtype_source: str | None = Field(default=None, description="Where the dtype was read from (when ok).")
    error: str | None = Field(default=None, description="Why no replica is usable (when not ok).")
    pinned_model: str | None = Field(default=None, description="The pinned model (when not ok).")
    base_url: str | None = Field(default=None, description="Judge base URL; only for a caller with a read key.")
    replicas: list[ReplicaHealth] = Field(description="Every replica's state.")


class DisabledSchedule(BaseModel):
    """A schedule disabled at start because it could not be loaded."""

    id: int = Field(description="Schedule id.")
    name: str = Field(description="Schedule name.")
    disabled_reason: str | None = Field(description="Why it was disabled.")


class SchedulesHealth(BaseModel):
    """Schedules the service disabled at start."""

    disabled: int = Field(description="How many schedules are disabled.")
    disabled_schedules: list[DisabledSchedule] | None = Field(
        default=None, description="Which ones; only for a caller with a read key."
    )


class HealthReport(BaseModel):
    """`GET /healthz`: database and judge reachability (200 when both are fine, else 503)."""

    database: DatabaseHealth = Field(description="Database state.")
    judge: JudgeHealth = Field(description="Judge state.")
    schedules: SchedulesHealth = Field(description="Disabled schedules.")
    status: Literal["ok", "unavailable"] = Field(description="ok when database and judge are fine.")


class DroppedRecord(BaseModel):
    """An uploaded record left out of an import."""

    line: int = Field(description="Record number (1-based).")
    reason: str = Field(description="Why it was dropped.")


class LabelImportSummary(BaseModel):
    """What a label import did."""

    experiment: str = Field(description="Experiment name.")
    source: str = Field(description="Label source.")
    records: int = Field(description="Records parsed.")
    inserted: int = Field(description="Labels newly stored.")
    already_present: int = Field(description="Labels already stored (the import is idempotent).")
    pairs_created: int = Field(description="Pairs created from records carrying prompt and answers.")
    pairs_labelled: int = Field(description="Distinct pairs the records label.")
    draws: int = Field(description="Records that are draws (AlpacaEval preference 0 or 1.5), counted as half a win.")
    nulls_dropped: int = Field(description="Entries skipped because their preference was null (listed in `dropped`).")
    dropped: list[DroppedRecord] = Field(description="Records left out, with the reason.")


class RaterProgress(BaseModel):
    """One rater's progress on a task."""

    assigned: int = Field(description="Assignments of the rater.")
    done: int = Field(description="Assignments the rater finished.")


class LabelingTaskSummary(BaseModel):
    """An admin's view of a labelling task."""

    id: int = Field(description="Task id.")
    name: str = Field(description="Task name.")
    experiment: str = Field(description="Experiment name.")
    rubric: str = Field(description="Rubric the raters score with.")
    dimensions: list[str] = Field(description="Dimension keys scored.")
    source: str = Field(description="Label source the results are stored under.")
    raters: list[str] = Field(description="Rater names.")
    raters_per_pair: int = Field(description="Raters assigned to each pair.")
    seed: int = Field(description="Seed of the sample and the blind orders.")
    sample: dict[str, Any] = Field(description="How the pairs were sampled.")
    progress: dict[str, RaterProgress] = Field(description="Progress per rater.")
    created_at: str | None = Field(description="When it was created (UTC, ISO 8601).")


class CreatedLabelingTask(LabelingTaskSummary):
    """A newly created task, with the rater keys issued (shown once)."""

    keys: dict[str, str] = Field(description="A `label` key per rater when issue_keys was set; else empty.")


class SheetImportSummary(BaseModel):
    """What a spreadsheet import saved."""

    task: str = Field(description="Task name.")
    raters: list[str] = Field(description="Raters whose rows the sheet held.")
    rows: int = Field(description="Rows read.")
    saved: int = Field(description="Rows that changed a label.")
    unchanged: int = Field(description="Rows equal to what was stored.")


class RaterAgreement(BaseModel):
    """Agreement among raters (or judge vs humans) on verdicts or scores."""

    n: int = Field(description="Items compared.")
    agreement: float | None = Field(description="Share (0-1) of items in agreement; null without items.")
    kappa: float | None = Field(description="Cohen's or Fleiss' κ; null where undefined.")
    method: Literal["cohen", "fleiss"] | None = Field(description="Which κ; null with fewer than 2 raters.")


class InterRater(BaseModel):
    """Inter-rater agreement on complete pairs."""

    complete_pairs: int = Field(description="Pairs every assigned rater finished.")
    verdicts: dict[str, RaterAgreement] = Field(description="Agreement on verdicts: overall and per dimension.")
    scores: dict[str, RaterAgreement] = Field(description="Agreement on 1-5 scores per dimension.")


class LabelledPair(BaseModel):
    """One pair of a task: averaged human scores, preferences, the human and judge verdicts."""

    id: str = Field(description="The pair's id in its experiment.")
    raters: int = Field(description="Raters who finished it.")
    assigned: int = Field(description="Raters assigned to it.")
    mean: dict[str, SideMeans] = Field(description="Mean human scores per dimension.")
    preference: dict[str, int] = Field(description="Rater preferences counted per verdict (base, tie, ft).")
    human: str | None = Field(description="Human verdict from the mean preference; null without labels.")
    judge: str | None = Field(description="The judge's verdict; null if not judged.")
    comments: dict[str, str] = Field(description="Rater comments by rater.")


class RatersApart(BaseModel):
    """Raters at least 2 points apart on one answer's dimension."""

    kind: Literal["raters_apart"] = Field(description="Reason kind.")
    dimension: str = Field(description="Dimension key.")
    answer: Literal["base", "ft"] = Field(description="Which answer.")
    scores: dict[str, int] = Field(description="Each rater's score.")


class JudgeVsHumans(BaseModel):
    """The judge's verdict differs from the humans'."""

    kind: Literal["judge_vs_humans"] = Field(description="Reason kind.")
    judge: str = Field(description="The judge's verdict.")
    humans: str | None = Field(description="The humans' verdict.")


class Disagreement(BaseModel):
    """A pair worth a second look, with the reasons."""

    id: str = Field(description="The pair's id in its experiment.")
    reasons: list[RatersApart | JudgeVsHumans] = Field(description="Why it is listed.")
    mean: dict[str, SideMeans] = Field(description="Mean human scores per dimension.")
    human: str | None = Field(description="Human verdict.")


class LabelingProgress(BaseModel):
    """A task's overall progress."""

    assignments: int = Field(description="Assignments in the task.")
    done: int = Field(description="Finished assignments.")
    pairs: int = Field(description="Pairs in the task.")


class HumanWinRate(BaseModel):
    """The win rate from the task's human labels."""

    source: str = Field(description="Label source.")
    mode: str = Field(description="Mode of the label result set.")
    overall: WinRateBlock = Field(description="Statistics over the labelled pairs.")
    conclusion: Conclusion = Field(description="The overall block's conclusion.")


class LabelingResults(BaseModel):
    """A labelling task's human report."""

    task: str = Field(description="Task name.")
    task_id: int = Field(description="Task id.")
    experiment: str = Field(description="Experiment name.")
    source: str = Field(description="Label source.")
    rubric: str = Field(description="Rubric scored.")
    dimensions: list[str] = Field(description="Dimension keys scored.")
    raters: list[str] = Field(description="Rater names.")
    raters_per_pair: int = Field(description="Raters per pair.")
    progress: LabelingProgress = Field(description="Overall progress.")
    pairs: list[LabelledPair] = Field(description="Every pair of the task.")
    inter_rater: InterRater = Field(description="Agreement among raters.")
    judge_result_set: int | None = Field(description="Judge result set compared; null without one.")
    judge_vs_human: dict[str, RaterAgreement] = Field(description="Judge vs humans: overall and per dimension.")
    disagreements: list[Disagreement] = Field(description="Pairs worth a second look.")
    human_win_rate: HumanWinRate | None = Field(description="Win rate from the labels; null before any label.")


class NoLabelingTask(BaseModel):
    """An experiment without a labelling task."""

    experiment: str = Field(description="Experiment name.")
    task: None = Field(description="Always null: the experiment has no labelling task.")

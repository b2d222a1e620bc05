"""SQLAlchemy 2.0 typed ORM: experiments, pairs, rubric versions, judge fingerprints, runs, judgments."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets BIGINT for large tables.
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Timezone-aware now, for timestamps."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base with stable constraint names (Alembic needs them)."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        datetime: DateTime(timezone=True),
    }


class ApiKey(Base):
    """A bearer key for this service, stored as a SHA-256 hash with its scopes."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class Experiment(Base):
    """A Base/FT comparison; addressable by name or id."""

    __tablename__ = "experiments"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    base_model: Mapped[str] = mapped_column(String(300))
    ft_model: Mapped[str] = mapped_column(String(300))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    # Decoding settings each side was generated with (contract GenerationSettings), set on first use.
    base_generation: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    ft_generation: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # Some pair was stored with generation settings: only then does a report read the pairs' settings.
    has_pair_generation: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Pair(Base):
    """One prompt with the Base and FT answers; unique per experiment by external id."""

    __tablename__ = "pairs"
    __table_args__ = (UniqueConstraint("experiment_id", "external_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str] = mapped_column(String(200))
    prompt: Mapped[str] = mapped_column(Text)
    base_output: Mapped[str] = mapped_column(Text)
    ft_output: Mapped[str] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(Text, default=None)
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    content_hash: Mapped[str] = mapped_column(String(64))
    # Prompt and answers only: how imported labels without an id find their pair.
    texts_hash: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    # {"base": settings | null, "ft": settings | null} with keys in a fixed order, or NULL when neither
    # side's settings were sent (docs/fairness-checks.md); part of `content_hash` when present.
    generation: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    judgments: Mapped[list[Judgment]] = relationship(back_populates="pair", order_by="Judgment.id")


class RubricVersionRow(Base):
    """Full text of every rubric version ever used or added at run time, with its content hash.

    `origin`: `file` for a built-in file recorded when first used, `added` for a version added through
    `POST /rubrics` or `judge-service rubrics add` (those are part of the registry of every process).
    """

    __tablename__ = "rubric_versions"
    __table_args__ = (UniqueConstraint("name", "version"), Index("ix_rubric_versions_origin_name", "origin", "name"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    rubric_text: Mapped[str] = mapped_column(Text)
    template_ref: Mapped[str] = mapped_column(String(100))
    template_system: Mapped[str] = mapped_column(Text)
    template_user: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    origin: Mapped[str] = mapped_column(String(16), default="file", server_default="file")
    added_by: Mapped[str | None] = mapped_column(String(200), default=None)


class JudgeFingerprint(Base):
    """Served model id, weights revision, decoding parameters, backend version and dtype."""

    __tablename__ = "judge_fingerprints"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    fingerprint_hash: Mapped[str] = mapped_column(String(64), unique=True)
    model: Mapped[str] = mapped_column(String(300))
    revision: Mapped[str] = mapped_column(String(300))
    decoding: Mapped[dict[str, Any]] = mapped_column(JSON)
    backend_version: Mapped[str | None] = mapped_column(String(100), default=None)
    dtype: Mapped[str | None] = mapped_column(String(20), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Run(Base):
    """One submission: the pairs it covered, its options, progress and final answer."""

    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    rubric_version_id: Mapped[int] = mapped_column(ForeignKey("rubric_versions.id"))
    fingerprint_id: Mapped[int] = mapped_column(ForeignKey("judge_fingerprints.id"))
    purpose: Mapped[str] = mapped_column(String(20), default="judge")
    mode: Mapped[str] = mapped_column(String(20), default="reasoned")
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    pair_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(300), unique=True, default=None)
    request_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class WorkBatch(Base):
    """A unit of work: a few judgments of one run, queued, then judged under a short, renewed lease.

    Written in the same transaction as its run, so no accepted judgment is ever without one. A
    batch whose lease ran out, or whose queue entry is gone, is found by the reaper and queued again.
    """

    __tablename__ = "work_batches"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    judgment_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(12), default="queued", index=True)  # queued | running | done
    # The process holding it (queued in its memory or judging it); None while it waits in the job queue.
    owner: Mapped[str | None] = mapped_column(String(120), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class RunJudgment(Base):
    """Which judgments a run asked for (a judgment may be shared by runs that re-sent a pair)."""

    __tablename__ = "run_judgments"
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    judgment_id: Mapped[int] = mapped_column(
        ForeignKey("judgments.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Judgment(Base):
    """One judge call's verdict for one pair, order and repeat, with all it takes to reproduce it."""

    __tablename__ = "judgments"
    __table_args__ = (
        Index("ix_judgments_report", "rubric_version_id", "fingerprint_id", "purpose", "status", "pair_id"),
        Index("ix_judgments_claims", "status", "lease_until"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id", ondelete="CASCADE"), index=True)
    rubric_version_id: Mapped[int] = mapped_column(ForeignKey("rubric_versions.id"))
    fingerprint_id: Mapped[int] = mapped_column(ForeignKey("judge_fingerprints.id"))
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), default=None)
    purpose: Mapped[str] = mapped_column(String(20), default="judge")
    mode: Mapped[str] = mapped_column(String(20), default="reasoned")
    order: Mapped[str] = mapped_column("answer_order", String(12))
    repeat: Mapped[int] = mapped_column(SmallInteger, default=0)
    seed: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    winner_slot: Mapped[str | None] = mapped_column(String(4), default=None)
    winner: Mapped[str | None] = mapped_column(String(4), default=None)
    judge_winner: Mapped[str | None] = mapped_column(String(4), default=None)
    s_ft: Mapped[float | None] = mapped_column(Float, default=None)
    rationale: Mapped[str | None] = mapped_column(Text, default=None)
    tags_base: Mapped[list[Any]] = mapped_column(JSON, default=list)
    tags_ft: Mapped[list[Any]] = mapped_column(JSON, default=list)
    raw_reply: Mapped[str | None] = mapped_column(Text, default=None)
    failure_reason: Mapped[str | None] = mapped_column(Text, default=None)
    messages: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    messages_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    # Prompt defences of this rendering: delimiter nonce, control-token list used, what was broken where.
    defences: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    latency_ms: Mapped[float | None] = mapped_column(Float, default=None)
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    # A process judging this row holds it ("running") until the lease ends; then anyone may retake it.
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    # The work batch holding the claim: its lease renewals renew this row's lease too.
    claimed_by: Mapped[str | None] = mapped_column(String(36), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)

    pair: Mapped[Pair] = relationship(back_populates="judgments")
    scores: Mapped[list[JudgmentScore]] = relationship(
        back_populates="judgment", cascade="all, delete-orphan", order_by="JudgmentScore.dimension"
    )


class JudgmentScore(Base):
    """Per-dimension 1-5 scores of one judgment, mapped to Base and FT (one row per dimension)."""

    __tablename__ = "judgment_scores"
    judgment_id: Mapped[int] = mapped_column(ForeignKey("judgments.id", ondelete="CASCADE"), primary_key=True)
    dimension: Mapped[str] = mapped_column(String(24), primary_key=True)
    base_score: Mapped[int] = mapped_column(SmallInteger)
    ft_score: Mapped[int] = mapped_column(SmallInteger)

    judgment: Mapped[Judgment] = relationship(back_populates="scores")


class ResultSet(Base):
    """One comparable set of pair results: an experiment judged by one source under one rubric and judge.

    Statistics never mix result sets; the judge's own sets have source "judge", imported labels
    have their source name (and no rubric or fingerprint).
    """

    __tablename__ = "result_sets"
    __table_args__ = (
        UniqueConstraint("experiment_id", "source", "rubric_version_id", "fingerprint_id", "mode", "purpose", "scope"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(100), default="judge")
    # 0 instead of NULL for label sources: NULLs never collide in unique constraints.
    rubric_version_id: Mapped[int] = mapped_column(BigInteger, default=0)
    fingerprint_id: Mapped[int] = mapped_column(BigInteger, default=0)
    mode: Mapped[str] = mapped_column(String(20), default="reasoned")
    purpose: Mapped[str] = mapped_column(String(20), default="judge")
    scope: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PairResult(Base):
    """A pair's aggregate within a result set (docs/statistics.md pair score), kept current as judgments land.

    `score` is None for an incomplete pair (an order asked for has no valid judgment).

    Reports aggregate these rows in SQL instead of re-reading every judgment.
    """

    __tablename__ = "pair_results"
    result_set_id: Mapped[int] = mapped_column(ForeignKey("result_sets.id", ondelete="CASCADE"), primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id", ondelete="CASCADE"), primary_key=True, index=True)
    score: Mapped[float | None] = mapped_column(Float, default=None)
    n_valid: Mapped[int] = mapped_column(Integer, default=0)
    n_failed: Mapped[int] = mapped_column(Integer, default=0)
    s_base_first: Mapped[float | None] = mapped_column(Float, default=None)
    s_ft_first: Mapped[float | None] = mapped_column(Float, default=None)
    inconsistent: Mapped[bool] = mapped_column(default=False)
    orders_agree: Mapped[bool | None] = mapped_column(default=None)
    a_picks: Mapped[int] = mapped_column(Integer, default=0)
    decisive: Mapped[int] = mapped_column(Integer, default=0)
    tags_base_mask: Mapped[int] = mapped_column(Integer, default=0)
    tags_ft_mask: Mapped[int] = mapped_column(Integer, default=0)
    base_len: Mapped[int] = mapped_column(Integer, default=0)
    ft_len: Mapped[int] = mapped_column(Integer, default=0)
    # Repeat agreement (docs/statistics.md): verdicts in order groups of 2+ repeats; how many equal the group's mode.
    repeat_verdicts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    repeat_matched: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    judged_at: Mapped[datetime | None] = mapped_column(default=None)


class PairDimensionResult(Base):
    """Per-dimension pair means (Base, FT) and the per-dimension pair score within a result set."""

    __tablename__ = "pair_dimension_results"
    result_set_id: Mapped[int] = mapped_column(ForeignKey("result_sets.id", ondelete="CASCADE"), primary_key=True)
    dimension: Mapped[str] = mapped_column(String(24), primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id", ondelete="CASCADE"), primary_key=True, index=True)
    base_mean: Mapped[float | None] = mapped_column(Float, default=None)
    ft_mean: Mapped[float | None] = mapped_column(Float, default=None)
    score: Mapped[float] = mapped_column(Float)
    n: Mapped[int] = mapped_column(Integer, default=1)


class Label(Base):
    """An imported verdict for a stored pair: a human annotator or another judge (FT's view s_ft)."""

    __tablename__ = "labels"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(100))
    annotator: Mapped[str] = mapped_column(String(200))
    dimension: Mapped[str] = mapped_column(String(24), default="")
    s_ft: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PairResultRollup(Base):
    """Counts and sums of pair results per distinct outcome: an unfiltered report reads these few rows.

    Maintained incrementally with every pair refresh (old values out, new values in), so its
    totals always equal an aggregate over `pair_results`; `score` -1 stands for "no score" (an
    incomplete pair: some order asked for has no valid judgment).
    """

    __tablename__ = "pair_result_rollups"
    result_set_id: Mapped[int] = mapped_column(ForeignKey("result_sets.id", ondelete="CASCADE"), primary_key=True)
    score: Mapped[float] = mapped_column(Float, primary_key=True)
    inconsistent: Mapped[bool] = mapped_column(primary_key=True)
    orders_agree: Mapped[int] = mapped_column(SmallInteger, primary_key=True)  # -1 unknown, 0 no, 1 yes
    length_cmp: Mapped[int] = mapped_column(SmallInteger, primary_key=True)  # sign(ft_len - base_len)
    # Bin of the normalised length difference (stats/length.py), for the length-controlled win rate.
    length_bin: Mapped[int] = mapped_column(SmallInteger, primary_key=True, default=20)
    pairs: Mapped[int] = mapped_column(BigInteger, default=0)
    n_failed: Mapped[int] = mapped_column(BigInteger, default=0)
    a_picks: Mapped[int] = mapped_column(BigInteger, default=0)
    decisive: Mapped[int] = mapped_column(BigInteger, default=0)
    base_len: Mapped[int] = mapped_column(BigInteger, default=0)
    ft_len: Mapped[int] = mapped_column(BigInteger, default=0)
    repeat_verdicts: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    repeat_matched: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    length_diff: Mapped[float] = mapped_column(Float, default=0.0)  # sum of the pairs' normalised length differences
    # Per-pair sums for the slot-A share clustered by pair (stats/position.py).
    decisive_pairs: Mapped[int] = mapped_column(BigInteger, default=0)  # pairs with a decisive verdict
    a_picks_sq: Mapped[int] = mapped_column(BigInteger, default=0)
    decisive_sq: Mapped[int] = mapped_column(BigInteger, default=0)
    a_picks_decisive: Mapped[int] = mapped_column(BigInteger, default=0)


class DimensionRollup(Base):
    """Pair counts per distinct (dimension, Base mean, FT mean, dimension score); -1 = no mean."""

    __tablename__ = "dimension_rollups"
    result_set_id: Mapped[int] = mapped_column(ForeignKey("result_sets.id", ondelete="CASCADE"), primary_key=True)
    dimension: Mapped[str] = mapped_column(String(24), primary_key=True)
    base_mean: Mapped[float] = mapped_column(Float, primary_key=True)
    ft_mean: Mapped[float] = mapped_column(Float, primary_key=True)
    score: Mapped[float] = mapped_column(Float, primary_key=True)
    pairs: Mapped[int] = mapped_column(BigInteger, default=0)


class Schedule(Base):
    """A recurring re-judge of stored pairs: which experiments, how big a sample, when (cron or interval)."""

    __tablename__ = "schedules"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    experiments: Mapped[list[Any]] = mapped_column(JSON)
    rubric: Mapped[str | None] = mapped_column(String(120), default=None)
    sample_size: Mapped[int | None] = mapped_column(Integer, default=None)
    sample_fraction: Mapped[float | None] = mapped_column(Float, default=None)
    cron: Mapped[str | None] = mapped_column(String(120), default=None)
    interval_seconds: Mapped[int | None] = mapped_column(Integer, default=None)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_fired_at: Mapped[datetime | None] = mapped_column(default=None)
    # Why the service disabled it at start (it could not be loaded); None while it loads.
    disabled_reason: Mapped[str | None] = mapped_column(Text, default=None)


class ScheduleFire(Base):
    """One firing of a schedule; the primary key lets exactly one replica claim each firing."""

    __tablename__ = "schedule_fires"
    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"), primary_key=True)
    fire_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Alert(Base):
    """A drift or disagreement alert raised by a re-judge run."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), default=None)
    kind: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LabelingTask(Base):
    """A blind labelling task: a sample of an experiment's pairs, each labelled by N raters with a rubric."""

    __tablename__ = "labeling_tasks"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    rubric: Mapped[str] = mapped_column(String(120))  # name@vN
    dimensions: Mapped[list[Any]] = mapped_column(JSON)  # the rubric's dimension keys, in order
    source: Mapped[str] = mapped_column(String(100), default="human")  # label source the submissions land in
    raters: Mapped[list[Any]] = mapped_column(JSON)
    raters_per_pair: Mapped[int] = mapped_column(SmallInteger, default=2)
    seed: Mapped[int] = mapped_column(BigInteger)
    sample: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # how the pairs were drawn, recorded
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LabelingAssignment(Base):
    """One rater's blind view of one pair: which answer is shown first, and what the rater gave (blind order).

    `token` is the only handle a rater (and a spreadsheet) gets; pair ids and model names stay server-side.
    """

    __tablename__ = "labeling_assignments"
    __table_args__ = (
        UniqueConstraint("task_id", "pair_id", "rater"),
        Index("ix_labeling_assignments_rater", "rater", "task_id", "position"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token: Mapped[str] = mapped_column(String(32), unique=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("labeling_tasks.id", ondelete="CASCADE"), index=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id", ondelete="CASCADE"), index=True)
    rater: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)  # place in this rater's queue (seeded shuffle)
    answer_1_is_ft: Mapped[bool] = mapped_column()
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending | draft | done
    scores: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # {"1": {dim: 1-5}, "2": {...}}
    preference: Mapped[str | None] = mapped_column(String(4), default=None)  # "1" | "2" | "tie"
    comment: Mapped[str | None] = mapped_column(Text, default=None)
    updated_at: Mapped[datetime | None] = mapped_column(default=None)
    submitted_at: Mapped[datetime | None] = mapped_column(default=None)


class OverlapCheck(Base):
    """One eval/train overlap check of an experiment's prompts against a training file."""

    __tablename__ = "overlap_checks"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    train_sha256: Mapped[str] = mapped_column(String(64))  # SHA-256 of the training file's bytes
    train_name: Mapped[str | None] = mapped_column(String(300), default=None)
    train_lines: Mapped[int] = mapped_column(Integer)  # lines read (non-empty)
    train_texts: Mapped[int] = mapped_column(Integer)  # lines that yielded a prompt text
    eval_pairs: Mapped[int] = mapped_column(Integer)
    exact: Mapped[int] = mapped_column(Integer)
    near: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # shingle size, permutations, threshold
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OverlapMatch(Base):
    """An eval pair whose prompt appears in the training file of a check: exactly or near-exactly."""

    __tablename__ = "overlap_matches"
    check_id: Mapped[int] = mapped_column(ForeignKey("overlap_checks.id", ondelete="CASCADE"), primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id", ondelete="CASCADE"), primary_key=True, index=True)
    kind: Mapped[str] = mapped_column(String(8))  # exact | near
    similarity: Mapped[float] = mapped_column(Float)  # Jaccard of word shingles (1.0 for exact)
    train_line: Mapped[int] = mapped_column(Integer)  # 1-based line number of the best match

"""Labelling tasks in the database: create (sample + blind assignments), rater queues, saves, sheet import."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from judge_service.contract.validation import experiment_id_of
from judge_service.labeling.blind import (
    MAX_SCORE,
    MIN_SCORE,
    PREFERENCES,
    SLOTS,
    answer_1_is_ft,
    is_complete,
    orient,
    queue_order,
)
from judge_service.labeling.sampling import PairOutcome, SampleKind, sample_pairs
from judge_service.labeling.sheet import Dimension, SheetProblem, SheetRow, export_xlsx, read_xlsx
from judge_service.labels.importer import RESERVED_SOURCES, _label_key
from judge_service.rubrics.registry import RubricVersion
from judge_service.stats.agreement import verdict_of_score
from judge_service.store import repo
from judge_service.store.aggregate import find_result_set
from judge_service.store.models import (
    Experiment,
    Judgment,
    Label,
    LabelingAssignment,
    LabelingTask,
    Pair,
    PairResult,
    ResultSet,
    utcnow,
)
from judge_service.store.results import SetKey, refresh_label_pair, result_set_id


class LabelingError(ValueError):
    """A request refused as a whole: `status` for HTTP, `problems` for per-cell errors."""

    def __init__(
        self,
        status: int,
        message: str,
        problems: list[dict[str, Any]] | None = None,
        loc: list[str | int] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = problems or []
        self.loc = loc or ["body"]  # the request field at fault, as a 422's `loc`


@dataclass
class TaskSpec:
    """What an admin asks for."""

    experiment: str
    raters: list[str]
    raters_per_pair: int = 2
    rubric: str = "human_review"
    sample: SampleKind = "all"
    n: int | None = None
    seed: int = 0
    hard_share: float = 0.5
    name: str | None = None
    source: str = "human"
    issue_keys: bool = False
    keys: dict[str, str] = field(default_factory=dict)


async def judge_set(session: AsyncSession, experiment_id: int) -> ResultSet | None:
    """The judge's newest result set for the experiment (what its win rate reports by default)."""
    return await find_result_set(session, experiment_id)


async def judge_outcomes(session: AsyncSession, experiment: Experiment) -> list[PairOutcome]:
    """Every pair with the judge's verdict, inconsistency and flip share (share of verdicts off the modal one)."""
    pair_ids = list((await session.execute(select(Pair.id).where(Pair.experiment_id == experiment.id))).scalars())
    result_set = await judge_set(session, experiment.id)
    if result_set is None:
        return [PairOutcome(int(p)) for p in pair_ids]
    results = {
        int(r.pair_id): r
        for r in (await session.execute(select(PairResult).where(PairResult.result_set_id == result_set.id))).scalars()
    }
    winners: dict[int, list[str]] = defaultdict(list)
    rows = await session.execute(
        select(Judgment.pair_id, Judgment.winner)
        .join(Pair, Pair.id == Judgment.pair_id)
        .where(
            Pair.experiment_id == experiment.id,
            Judgment.rubric_version_id == result_set.rubric_version_id,
            Judgment.fingerprint_id == result_set.fingerprint_id,
            Judgment.mode == result_set.mode,
            Judgment.purpose == "judge",
            Judgment.status == "done",
        )
    )
    for pair_id, winner in rows.all():
        winners[int(pair_id)].append(str(winner))
    out = []
    for pid in pair_ids:
        result = results.get(int(pid))
        verdicts = winners.get(int(pid), [])
        flip = 1 - Counter(verdicts).most_common(1)[0][1] / len(verdicts) if verdicts else 0.0
        verdict = verdict_of_score(result.score) if result is not None and result.score is not None else None
        out.append(PairOutcome(int(pid), verdict, bool(result.inconsistent) if result else False, flip))
    return out


async def get_task(session: AsyncSession, ref: str | int) -> LabelingTask | None:
    """A task by id or name."""
    text = str(ref)
    task_id = experiment_id_of(text)  # the same rule as experiment references: ASCII digits within int64
    if task_id is not None:
        found = await session.get(LabelingTask, task_id)
        if found is not None:
            return found
    return (await session.execute(select(LabelingTask).where(LabelingTask.name == text))).scalars().first()


async def create_task(session: AsyncSession, spec: TaskSpec, rubric: RubricVersion) -> LabelingTask:
    """Draw the sample, give each pair `raters_per_pair` raters (rotating), and write blind assignments."""
    experiment = await repo.get_experiment(session, spec.experiment)
    if experiment is None:
        raise LabelingError(404, f"no experiment {spec.experiment!r}")
    raters = list(dict.fromkeys(r.strip() for r in spec.raters if r.strip()))
    if not 1 <= spec.raters_per_pair <= 5:
        raise LabelingError(422, "raters_per_pair must be from 1 to 5", loc=["body", "raters_per_pair"])
    if len(raters) < spec.raters_per_pair:
        raise LabelingError(
            422,
            f"{spec.raters_per_pair} raters per pair need at least that many raters",
            loc=["body", "raters_per_pair"],
        )
    if spec.source in RESERVED_SOURCES:
        raise LabelingError(
            422, f"source {spec.source!r} is reserved for the service's own judge", loc=["body", "source"]
        )
    if spec.sample != "all" and (spec.n is None or spec.n < 1):
        raise LabelingError(422, f"sample {spec.sample!r} needs n >= 1", loc=["body", "sample", "n"])
    name = spec.name or f"{experiment.name}-labels-{secrets.token_hex(3)}"
    if await get_task(session, name) is not None:
        raise LabelingError(409, f"a labelling task named {name!r} exists")
    outcomes = await judge_outcomes(session, experiment)
    if not outcomes:
        raise LabelingError(422, f"experiment {experiment.name!r} has no pairs", loc=["body", "experiment"])
    sample = sample_pairs(outcomes, spec.sample, spec.n, spec.seed, spec.hard_share)
    task = LabelingTask(
        name=name,
        experiment_id=experiment.id,
        rubric=rubric.ref,
        dimensions=[d.key for d in rubric.rubric.dimensions],
        source=spec.source,
        raters=raters,
        raters_per_pair=spec.raters_per_pair,
        seed=spec.seed,
        sample={**sample.record, "hard_share": spec.hard_share},
    )
    session.add(task)
    await session.flush()
    per_rater: dict[str, list[int]] = defaultdict(list)
    for index, pair_id in enumerate(sample.pair_ids):
        for k in range(spec.raters_per_pair):
            per_rater[raters[(index + k) % len(raters)]].append(pair_id)
    for rater, pair_ids in per_rater.items():
        # The rater's queue: seeded shuffle of their pairs (positions 0..n-1).
        for position, pair_id in enumerate(queue_order(spec.seed, rater, pair_ids)):
            session.add(
                LabelingAssignment(
                    token=secrets.token_hex(12),
                    task_id=task.id,
                    pair_id=pair_id,
                    rater=rater,
                    position=position,
                    answer_1_is_ft=answer_1_is_ft(spec.seed, pair_id, rater),
                    scores={},
                )
            )
    if spec.issue_keys:
        for rater in raters:
            spec.keys[rater] = await repo.create_api_key(session, rater, ["label"])
    await session.flush()
    return task


def task_summary(task: LabelingTask, experiment: Experiment, counts: dict[str, dict[str, int]]) -> dict[str, Any]:
    """An admin's view of a task (not for raters: it names the experiment)."""
    return {
        "id": task.id,
        "name": task.name,
        "experiment": experiment.name,
        "rubric": task.rubric,
        "dimensions": list(task.dimensions),
        "source": task.source,
        "raters": list(task.raters),
        "raters_per_pair": task.raters_per_pair,
        "seed": task.seed,
        "sample": task.sample,
        "progress": counts,
        "created_at": repo.as_utc_iso(task.created_at),
    }


async def progress(session: AsyncSession, task_id: int) -> dict[str, dict[str, int]]:
    """Assignments per rater: total and done."""
    out: dict[str, dict[str, int]] = {}
    rows = await session.execute(
        select(LabelingAssignment.rater, LabelingAssignment.status).where(LabelingAssignment.task_id == task_id)
    )
    for rater, status in rows.all():
        entry = out.setdefault(str(rater), {"assigned": 0, "done": 0})
        entry["assigned"] += 1
        entry["done"] += status == "done"
    return out


async def rater_queue(session: AsyncSession, rater: str) -> list[tuple[LabelingAssignment, Pair]]:
    """A rater's own assignments over all tasks, in queue order."""
    rows = await session.execute(
        select(LabelingAssignment, Pair)
        .join(Pair, Pair.id == LabelingAssignment.pair_id)
        .where(LabelingAssignment.rater == rater)
        .order_by(LabelingAssignment.task_id, LabelingAssignment.position)
    )
    return [(a, p) for a, p in rows.all()]


def blind_answers(assignment: LabelingAssignment, pair: Pair) -> tuple[str, str]:
    """(Answer 1, Answer 2) as this rater sees them."""
    if assignment.answer_1_is_ft:
        return pair.ft_output, pair.base_output
    return pair.base_output, pair.ft_output


def clean_scores(raw: dict[str, dict[str, Any]], dims: list[str]) -> dict[str, dict[str, int]]:
    """Only known slots and dimensions; each value a whole number 1-5 (else LabelingError)."""
    out: dict[str, dict[str, int]] = {}
    for slot, per_dim in raw.items():
        if slot not in SLOTS:
            raise LabelingError(422, f"answer slot must be 1 or 2, got {slot!r}", loc=["body", "scores", slot])
        for dim, value in per_dim.items():
            if dim not in dims:
                raise LabelingError(
                    422,
                    f"unknown dimension {dim!r}; this task scores {', '.join(dims)}",
                    loc=["body", "scores", slot, dim],
                )
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not MIN_SCORE <= value <= MAX_SCORE:
                raise LabelingError(
                    422,
                    f"score for answer {slot} {dim} must be a whole number 1-5, got {value!r}",
                    loc=["body", "scores", slot, dim],
                )
            out.setdefault(slot, {})[dim] = value
    return out


async def _write_labels(session: AsyncSession, task: LabelingTask, assignment: LabelingAssignment) -> None:
    """Label rows (source = task's, annotator = rater) for a done assignment, or none for an undone one."""
    experiment_id = task.experiment_id
    dims = list(task.dimensions)
    keys = {d: _label_key(experiment_id, task.source, assignment.rater, assignment.pair_id, d, 0) for d in ["", *dims]}
    if assignment.status != "done" or assignment.preference is None:
        await session.execute(delete(Label).where(Label.key.in_(list(keys.values()))))
    else:
        values = orient(assignment.scores, assignment.preference, assignment.answer_1_is_ft, dims).s_ft()
        existing = {
            lab.key: lab
            for lab in (await session.execute(select(Label).where(Label.key.in_(list(keys.values()))))).scalars()
        }
        for dim, key in keys.items():
            if key in existing:
                existing[key].s_ft = values[dim]
            else:
                session.add(
                    Label(
                        key=key,
                        experiment_id=experiment_id,
                        pair_id=assignment.pair_id,
                        source=task.source,
                        annotator=assignment.rater,
                        dimension=dim,
                        s_ft=values[dim],
                    )
                )
        await session.flush()
    set_id = await result_set_id(session, SetKey(experiment_id, source=task.source, mode="label", purpose="judge"))
    await refresh_label_pair(session, set_id, experiment_id, task.source, assignment.pair_id)


async def save(
    session: AsyncSession,
    task: LabelingTask,
    assignment: LabelingAssignment,
    scores: dict[str, dict[str, Any]],
    preference: str | None,
    comment: str | None,
) -> bool:
    """Store what the rater gave (blind); complete labels become label rows. Returns whether anything changed."""
    dims = list(task.dimensions)
    cleaned = clean_scores(scores, dims)
    if preference is not None and preference not in PREFERENCES:
        raise LabelingError(422, f"preference must be 1, 2 or tie, got {preference!r}", loc=["body", "preference"])
    comment = (comment or "").strip() or None
    status = "done" if is_complete(cleaned, preference, dims) else ("draft" if cleaned or preference else "pending")
    unchanged = (
        assignment.scores == cleaned
        and assignment.preference == preference
        and assignment.comment == comment
        and assignment.status == status
    )
    if unchanged:
        return False
    was_done = assignment.status == "done"
    assignment.scores, assignment.preference, assignment.comment = cleaned, preference, comment
    assignment.status = status
    assignment.updated_at = utcnow()
    if status == "done":
        assignment.submitted_at = assignment.updated_at
    await session.flush()
    if status == "done" or was_done:
        await _write_labels(session, task, assignment)
    return True


async def export_sheet(session: AsyncSession, task: LabelingTask, rater: str, rubric: RubricVersion) -> bytes:
    """The rater's XLSX: their assignments in their own queue order and blind answer order."""
    rows = await session.execute(
        select(LabelingAssignment, Pair)
        .join(Pair, Pair.id == LabelingAssignment.pair_id)
        .where(LabelingAssignment.task_id == task.id, LabelingAssignment.rater == rater)
        .order_by(LabelingAssignment.position)
    )
    found = rows.all()
    if not found:
        raise LabelingError(404, f"rater {rater!r} has no assignments in task {task.name!r}")
    sheet_rows = []
    for assignment, pair in found:
        one, two = blind_answers(assignment, pair)
        sheet_rows.append(
            SheetRow(
                token=assignment.token,
                question=pair.prompt,
                expected=pair.reference,
                answer_1=one,
                answer_2=two,
                scores=dict(assignment.scores),
                preference=assignment.preference,
                comment=assignment.comment,
            )
        )
    dims = [Dimension(d.key, d.title) for d in rubric.rubric.dimensions]
    return export_xlsx(rater, task.name, dims, sheet_rows)


async def import_sheet(session: AsyncSession, task: LabelingTask, data: bytes, rubric: RubricVersion) -> dict[str, Any]:
    """Apply a filled sheet in the caller's transaction: every wrong cell is reported and nothing is saved."""
    dims = [Dimension(d.key, d.title) for d in rubric.rubric.dimensions]
    # Parsing a workbook is CPU work of up to JUDGE_MAX_REQUEST_BYTES: off the event loop.
    entries, problems = await asyncio.to_thread(read_xlsx, data, dims)
    by_token: dict[str, LabelingAssignment] = {}
    if entries:
        tokens = [e.token for e in entries]
        found = await session.execute(
            select(LabelingAssignment).where(
                LabelingAssignment.task_id == task.id, LabelingAssignment.token.in_(tokens)
            )
        )
        by_token = {a.token: a for a in found.scalars()}
    seen: set[str] = set()
    for entry in entries:
        if entry.token not in by_token:
            problems.append(SheetProblem(entry.row, "A", "ref", f"ref {entry.token!r} is not in task {task.name!r}"))
        elif entry.token in seen:
            problems.append(SheetProblem(entry.row, "A", "ref", "the same ref appears twice"))
        seen.add(entry.token)
    if problems:
        raise LabelingError(
            422, f"{len(problems)} wrong cell(s); nothing was imported", [p.as_dict() for p in problems]
        )
    saved = 0
    raters: set[str] = set()
    for entry in entries:
        assignment = by_token[entry.token]
        raters.add(assignment.rater)
        saved += await save(session, task, assignment, entry.scores, entry.preference, entry.comment)
    return {
        "task": task.name,
        "raters": sorted(raters),
        "rows": len(entries),
        "saved": saved,
        "unchanged": len(entries) - saved,
    }

"""Run, store and read eval/train overlap checks; resolve `exclude=overlap` for the reports."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from judge_service.overlap.detect import (
    DEFAULT_LSH_THRESHOLD,
    DEFAULT_SHINGLE,
    DEFAULT_THRESHOLD,
    NUM_PERM,
    find_overlap,
)
from judge_service.store.aggregate import PairFilter, set_conditions
from judge_service.store.models import Experiment, OverlapCheck, OverlapMatch, Pair, PairResult, utcnow
from judge_service.store.repo import as_utc_iso


async def run_check(
    session: AsyncSession,
    experiment: Experiment,
    train_chunks: Iterable[bytes],
    *,
    train_name: str | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    shingle: int = DEFAULT_SHINGLE,
    max_lines: int | None = None,
) -> OverlapCheck:
    """Compare every prompt of the experiment with the training file and store the result as a new check.

    The comparison runs in a worker thread (it is CPU work); TrainFormatError for a bad training line.
    """
    prompts = [(int(pid), text) for pid, text in (await session.execute(
        select(Pair.id, Pair.prompt).where(Pair.experiment_id == experiment.id).order_by(Pair.id)
    )).all()]  # fmt: skip
    matches, stats = await asyncio.to_thread(
        find_overlap, prompts, train_chunks, threshold=threshold, shingle=shingle, max_lines=max_lines
    )
    check = OverlapCheck(
        experiment_id=experiment.id,
        train_sha256=stats.sha256,
        train_name=train_name[:300] if train_name else None,
        train_lines=stats.lines,
        train_texts=stats.lines_with_text,
        eval_pairs=len(prompts),
        exact=sum(1 for m in matches if m.kind == "exact"),
        near=sum(1 for m in matches if m.kind == "near"),
        params={
            "threshold": threshold,
            "shingle": shingle,
            "num_perm": NUM_PERM,
            "lsh_threshold": min(DEFAULT_LSH_THRESHOLD, threshold),
        },
        created_at=utcnow(),
    )
    session.add(check)
    await session.flush()
    session.add_all(
        OverlapMatch(check_id=check.id, pair_id=m.key, kind=m.kind, similarity=m.similarity, train_line=m.train_line)
        for m in matches
    )
    await session.flush()
    return check


async def latest_check(session: AsyncSession, experiment_id: int) -> OverlapCheck | None:
    """The experiment's newest overlap check, or None."""
    stmt = (
        select(OverlapCheck)
        .where(OverlapCheck.experiment_id == experiment_id)
        .order_by(OverlapCheck.id.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalars().first()


async def check_view(session: AsyncSession, check: OverlapCheck, experiment: Experiment) -> dict[str, Any]:
    """A check with its matches (pair ids as sent), in the shape of contract.overlap.OverlapCheckResult."""
    rows = (
        await session.execute(
            select(Pair.external_id, OverlapMatch.kind, OverlapMatch.similarity, OverlapMatch.train_line)
            .join(Pair, Pair.id == OverlapMatch.pair_id)
            .where(OverlapMatch.check_id == check.id)
            .order_by(OverlapMatch.kind, OverlapMatch.similarity.desc(), OverlapMatch.train_line, Pair.external_id)
        )
    ).all()
    return {
        "check_id": check.id,
        "experiment": experiment.name,
        "created_at": as_utc_iso(check.created_at),
        "train_sha256": check.train_sha256,
        "train_name": check.train_name,
        "train_lines": check.train_lines,
        "train_lines_with_text": check.train_texts,
        "eval_pairs": check.eval_pairs,
        "exact": check.exact,
        "near": check.near,
        "threshold": float(check.params.get("threshold", DEFAULT_THRESHOLD)),
        "shingle": int(check.params.get("shingle", DEFAULT_SHINGLE)),
        "num_perm": int(check.params.get("num_perm", NUM_PERM)),
        "matches": [
            {"pair_id": ext, "kind": kind, "similarity": float(sim), "train_line": int(line)}
            for ext, kind, sim, line in rows
        ],
    }


class NoOverlapCheckError(LookupError):
    """exclude=overlap for an experiment that was never checked."""


async def with_overlap_exclusion(
    session: AsyncSession, experiment: Experiment, flt: PairFilter, set_id: int
) -> tuple[PairFilter, dict[str, Any] | None]:
    """`flt` bound to the experiment's latest overlap check when it asks to exclude overlap, and what was excluded.

    NoOverlapCheckError when there is no check to exclude by (silently excluding nothing would
    let a report look clean that was never checked). `unchecked_pairs` counts the pairs the report
    keeps that were added after the check, so never compared with the training data.
    """
    if not flt.exclude_overlap:
        return flt, None
    check = await latest_check(session, experiment.id)
    if check is None:
        raise NoOverlapCheckError(
            f"experiment {experiment.name!r} has no overlap check; run `judge-service check-overlap` "
            "or POST /experiments/{experiment}/overlap first"
        )
    bound = dataclasses.replace(flt, overlap_check_id=check.id)
    unexcluded = dataclasses.replace(flt, exclude_overlap=False, overlap_check_id=None)
    flagged = select(OverlapMatch.pair_id).where(OverlapMatch.check_id == check.id)
    stmt = select(func.count()).select_from(PairResult).where(*set_conditions(set_id, unexcluded))
    if unexcluded.needs_pairs:
        stmt = stmt.join(Pair, Pair.id == PairResult.pair_id)
    excluded = int((await session.execute(stmt.where(PairResult.pair_id.in_(flagged)))).scalar_one())
    # Pairs added after the check were never compared with the training data: counted, not called clean.
    later = select(func.count()).select_from(PairResult).join(Pair, Pair.id == PairResult.pair_id)
    later = later.where(*set_conditions(set_id, unexcluded), Pair.created_at > check.created_at)
    unchecked = int((await session.execute(later)).scalar_one())
    return bound, {
        "overlap": {
            "check_id": check.id,
            "checked_at": as_utc_iso(check.created_at),
            "train_sha256": check.train_sha256,
            "flagged_pairs": check.exact + check.near,
            "excluded_pairs": excluded,
            "unchecked_pairs": unchecked,
        }
    }

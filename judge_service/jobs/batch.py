"""The unit of work: judge one batch of judgments and store each verdict, durably and exactly once.

The same function runs in both executors. It takes the batch under a short lease, claims the
batch's judgments that nobody holds, keeps both leases alive while it works, counts prompt tokens
(a pair too long for the judge fails with the reason), judges, and writes each verdict as it
arrives; then it closes every run whose last verdict it stored. Told to stop, it spools the verdicts
it could not write and hands the rest of the batch back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from judge_service.engine.client import JudgeUnavailableError
from judge_service.engine.fast import judge_fast
from judge_service.engine.judge import JudgmentResult, PairText, judge_reasoned, pending_result
from judge_service.jobs.closing import OPEN, close_runs, fail_run, runs_of
from judge_service.jobs.context import JobContext
from judge_service.jobs.durable import with_db_retry
from judge_service.jobs.runs import set_key
from judge_service.rubrics.registry import RubricVersion
from judge_service.rubrics.render import Order, render_pair
from judge_service.store import repo
from judge_service.store.models import (
    JudgeFingerprint,
    Judgment,
    JudgmentScore,
    Pair,
    RubricVersionRow,
    Run,
    WorkBatch,
    utcnow,
)
from judge_service.store.results import refresh_judge_pair, result_set_id

log = logging.getLogger(__name__)


def _takeable(now: datetime, owner: str) -> object:
    """A batch nobody works on: queued for anyone (or for us), or running under a lease that ran out."""
    return or_(
        and_(
            WorkBatch.status == "queued",
            or_(WorkBatch.owner.is_(None), WorkBatch.owner == owner, WorkBatch.lease_until < now),
        ),
        and_(WorkBatch.status == "running", WorkBatch.lease_until < now),
    )


def claimable(now: datetime, batch_id: str) -> object:
    """Judgments this batch may take: pending, running under a lease that ran out, or already its own."""
    return or_(
        Judgment.status == "pending",
        and_(Judgment.status == "running", or_(Judgment.lease_until < now, Judgment.claimed_by == batch_id)),
    )


@dataclass(frozen=True)
class _Work:
    judgment_id: int
    pair_id: int
    order: Order
    seed: int
    mode: str
    pair: PairText


@dataclass(frozen=True)
class _Taken:
    run_id: str
    run_status: str
    judgment_ids: list[int]
    fingerprint_hash: str
    rubric_version_id: int


async def _version(ctx: JobContext, session: AsyncSession, rubric_version_id: int) -> RubricVersion:
    if rubric_version_id not in ctx.versions:
        row = await session.get(RubricVersionRow, rubric_version_id)
        assert row is not None
        ctx.versions[rubric_version_id] = repo.version_from_row(row)
    return ctx.versions[rubric_version_id]


async def _take(ctx: JobContext, batch_id: str) -> _Taken | None:
    """Mark the batch running under our lease; None when someone else holds it or it is done."""
    async with ctx.sessions() as session, session.begin():
        now = utcnow()
        taken = await session.execute(
            update(WorkBatch)
            .where(WorkBatch.id == batch_id, _takeable(now, ctx.owner))  # type: ignore[arg-type]
            .values(
                status="running",
                owner=ctx.owner,
                lease_until=now + timedelta(seconds=ctx.settings.lease_s),
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if getattr(taken, "rowcount", 0) != 1:
            return None
        batch = (await session.execute(select(WorkBatch).where(WorkBatch.id == batch_id))).scalar_one()
        run = (await session.execute(select(Run).where(Run.id == batch.run_id))).scalar_one()
        fingerprint = await session.get(JudgeFingerprint, run.fingerprint_id)
        assert fingerprint is not None
        if run.status == "pending":
            await session.execute(
                update(Run)
                .where(Run.id == run.id, Run.status == "pending")
                .values(status="running", started_at=now)
                .execution_options(synchronize_session=False)
            )
        return _Taken(
            run.id,
            run.status,
            [int(i) for i in batch.judgment_ids],
            fingerprint.fingerprint_hash,
            run.rubric_version_id,
        )


async def _claim(ctx: JobContext, batch_id: str, judgment_ids: list[int]) -> tuple[list[_Work], RubricVersion | None]:
    """Take the batch's judgments that nobody else holds, and load what judging them needs."""
    async with ctx.sessions() as session, session.begin():
        now = utcnow()
        claimed = await session.execute(
            update(Judgment)
            .where(Judgment.id.in_(judgment_ids), claimable(now, batch_id))  # type: ignore[arg-type]
            .values(status="running", lease_until=now + timedelta(seconds=ctx.settings.lease_s), claimed_by=batch_id)
            .returning(Judgment.id)
            .execution_options(synchronize_session=False)
        )
        ids = sorted(int(i) for i in claimed.scalars())
        if not ids:
            return [], None
        rows = (
            await session.execute(
                select(Judgment)
                .where(Judgment.id.in_(ids))
                .options(selectinload(Judgment.pair))
                .order_by(Judgment.pair_id, Judgment.repeat, Judgment.order)
            )
        ).scalars()
        work = []
        version: RubricVersion | None = None
        for j in rows:
            version = version or await _version(ctx, session, j.rubric_version_id)
            order: Order = "base_first" if j.order == "base_first" else "ft_first"
            text = PairText(j.pair.prompt, j.pair.base_output, j.pair.ft_output, j.pair.reference)
            work.append(_Work(j.id, j.pair_id, order, j.seed, j.mode, text))
        return work, version


async def _renew(ctx: JobContext, batch_id: str) -> None:
    """Keep the batch and its claimed judgments ours while we work on them."""
    async with ctx.sessions() as session, session.begin():
        until = utcnow() + timedelta(seconds=ctx.settings.lease_s)
        await session.execute(
            update(WorkBatch)
            .where(WorkBatch.id == batch_id, WorkBatch.owner == ctx.owner, WorkBatch.status == "running")
            .values(lease_until=until)
            .execution_options(synchronize_session=False)
        )
        await session.execute(
            update(Judgment)
            .where(Judgment.claimed_by == batch_id, Judgment.status == "running")
            .values(lease_until=until)
            .execution_options(synchronize_session=False)
        )


async def _heartbeat(ctx: JobContext, batch_id: str) -> None:
    """Renew leases every third of their length; a failed renewal is tried again next time."""
    while True:
        await asyncio.sleep(ctx.settings.lease_s / 3)
        try:
            await _renew(ctx, batch_id)
        except Exception as exc:  # noqa: BLE001 - the next beat tries again; expiry is the fallback
            log.warning("lease renewal of batch %s failed: %r", batch_id, exc)


async def _set_run_error(ctx: JobContext, run_id: str, message: str | None) -> None:
    async with ctx.sessions() as session, session.begin():
        await session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status.in_(OPEN), Run.error.is_distinct_from(message))
            .values(error=message)
            .execution_options(synchronize_session=False)
        )


async def _await_judge(ctx: JobContext, run_id: str, expected_hash: str) -> str | None:
    """Wait until the judge answers; the error text when it serves another judge than the run's pin."""
    delay = 1.0
    waited = False
    while True:
        try:
            fingerprint = await ctx.client.fingerprint()
            break
        except JudgeUnavailableError as exc:
            if ctx.stopping.is_set():
                raise asyncio.CancelledError from exc
            # Batches may start before the judge does: wait, and say so on the run.
            log.warning("run %s waits for the judge: %s", run_id, exc)
            with contextlib.suppress(Exception):
                await _set_run_error(ctx, run_id, f"waiting for the judge: {exc}")
            waited = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
    if waited:
        with contextlib.suppress(Exception):
            await _set_run_error(ctx, run_id, None)
    if fingerprint.hash != expected_hash:
        return (
            "the judge now served differs from the one this run was pinned to "
            f"(fingerprint {fingerprint.hash[:12]} != {expected_hash[:12]}); its pending judgments stay pending"
        )
    return None


async def _too_long(ctx: JobContext, version: RubricVersion, work: list[_Work]) -> dict[int, str]:
    """Pairs whose rendered prompt plus the reply budget exceed the judge's context: pair id -> reason.

    Counted here, after acceptance, with the judge's own tokenizer; one count per pair (both orders
    hold the same texts).
    """
    try:
        info = await ctx.client.check()
    except JudgeUnavailableError:
        return {}
    if not info.max_model_len:
        return {}
    limit = asyncio.Semaphore(8)
    first = {w.pair_id: w for w in reversed(work)}

    async def count(w: _Work) -> tuple[int, int | None]:
        messages = render_pair(
            version,
            "base_first",
            prompt=w.pair.prompt,
            base_output=w.pair.base_output,
            ft_output=w.pair.ft_output,
            reference=w.pair.reference,
            mode="fast" if w.mode == "fast" else "reasoned",
        )
        async with limit:
            try:
                return w.pair_id, await ctx.client.count_tokens(messages)
            except JudgeUnavailableError:
                return w.pair_id, None

    reasons = {}
    for pair_id, tokens in await asyncio.gather(*(count(w) for w in first.values())):
        reply_budget = ctx.settings.max_tokens if first[pair_id].mode == "reasoned" else 4
        if tokens is not None and tokens > info.max_model_len - reply_budget:
            reasons[pair_id] = (
                f"the rendered judge prompt is {tokens} tokens; with {reply_budget} reserved for the verdict "
                f"it exceeds the judge context of {info.max_model_len} tokens"
            )
    return reasons


async def _judge(ctx: JobContext, version: RubricVersion, w: _Work, too_long: str | None) -> JudgmentResult:
    if too_long is not None:
        result = pending_result(version, w.pair, w.order, "fast" if w.mode == "fast" else "reasoned")
        result.failure_reason = too_long
        return result
    if w.mode == "fast":
        return await judge_fast(ctx.client, version, w.pair, w.order, w.seed)
    return await judge_reasoned(ctx.client, version, w.pair, w.order, w.seed)


async def _write_verdicts(ctx: JobContext, results: list[tuple[int, JudgmentResult]]) -> list[int]:
    """One transaction for a few verdicts, each onto its still-open judgment (row-locked) with its pair's
    aggregates and rollups; returns the judgments written.

    Grouping matters on PostgreSQL: every verdict of a result set updates the same few rollup rows,
    so verdict transactions queue on those row locks; a group takes them once for several verdicts.
    """
    written: list[int] = []
    async with ctx.sessions() as session, session.begin():
        for judgment_id, result in sorted(results, key=lambda item: item[0]):
            if await _write_one(ctx, session, judgment_id, result):
                written.append(judgment_id)
    return written


async def _write_one(ctx: JobContext, session: AsyncSession, judgment_id: int, result: JudgmentResult) -> bool:
    """The verdict onto a still-open judgment (row-locked) and its pair's rollups, in the caller's transaction."""
    stmt = select(Judgment).where(Judgment.id == judgment_id).with_for_update()
    judgment = (await session.execute(stmt)).scalar_one_or_none()
    if judgment is None or judgment.status not in OPEN:
        return False  # stored already (say, by a batch whose lease ran out): the first verdict stays
    judgment.status = result.status
    judgment.lease_until = None
    judgment.claimed_by = None
    judgment.raw_reply = result.raw
    judgment.failure_reason = result.failure_reason
    judgment.messages_hash = result.messages_hash
    judgment.messages = list(result.messages) if ctx.settings.store_messages else None
    judgment.defences = result.defences
    judgment.prompt_tokens = result.prompt_tokens
    judgment.completion_tokens = result.completion_tokens
    judgment.latency_ms = result.latency_ms
    judgment.attempts = (judgment.attempts or 0) + result.attempts
    judgment.completed_at = utcnow()
    verdict = result.verdict
    if verdict is not None:
        judgment.winner_slot = result.winner_slot
        judgment.winner = verdict.winner
        judgment.judge_winner = verdict.judge_winner
        judgment.s_ft = verdict.s_ft
        judgment.rationale = verdict.rationale
        judgment.tags_base = list(verdict.tags_base)
        judgment.tags_ft = list(verdict.tags_ft)
        session.add_all(
            JudgmentScore(judgment_id=judgment_id, dimension=d, base_score=b, ft_score=f)
            for d, (b, f) in verdict.scores.items()
        )
    await session.flush()
    # The pair refresh must see these scores even if an earlier verdict of the group loaded this
    # judgment (with no scores yet) into the session.
    session.expire(judgment, ["scores"])
    pair = await session.get(Pair, judgment.pair_id)
    assert pair is not None
    key = set_key(
        pair.experiment_id,
        judgment.rubric_version_id,
        judgment.fingerprint_id,
        judgment.mode,
        judgment.purpose,
        judgment.run_id,
    )
    # Runs create (and commit) their result sets before any batch exists, so a set id seen once
    # stays valid; an id from a transaction not committed yet would break the foreign key.
    set_id = ctx.set_ids.get(key)
    if set_id is None:
        set_id = ctx.set_ids[key] = await result_set_id(session, key)
    await refresh_judge_pair(session, set_id, key, judgment.pair_id)
    return True


async def store_verdict(
    ctx: JobContext, judgment_id: int, result: JudgmentResult, window_s: float | None = None
) -> bool:
    """Write a paid verdict, retrying through lost connections for `JUDGE_DB_RETRY_WINDOW_S`.

    Returns whether this call stored it (False: a verdict was there first). Raises when the
    database stays unreachable; the caller spools the verdict.
    """
    return bool(await store_verdicts(ctx, [(judgment_id, result)], window_s))


async def store_verdicts(
    ctx: JobContext, results: list[tuple[int, JudgmentResult]], window_s: float | None = None
) -> list[int]:
    """`store_verdict` for a group, in one transaction; returns the judgments this call stored."""
    return await with_db_retry(
        lambda: _write_verdicts(ctx, results),
        window_s=ctx.settings.db_retry_window_s if window_s is None else window_s,
        stopping=ctx.stopping,
        what=f"storing {len(results)} verdict(s)",
    )


async def _release(ctx: JobContext, batch_id: str, keep: set[int]) -> None:
    """Hand the batch back: unjudged claims become pending again, the batch queued for anyone."""
    async with ctx.sessions() as session, session.begin():
        await session.execute(
            update(Judgment)
            .where(Judgment.claimed_by == batch_id, Judgment.status == "running", Judgment.id.not_in(keep))
            .values(status="pending", lease_until=None, claimed_by=None)
            .execution_options(synchronize_session=False)
        )
        await session.execute(
            update(WorkBatch)
            .where(WorkBatch.id == batch_id, WorkBatch.owner == ctx.owner, WorkBatch.status == "running")
            .values(status="queued", owner=None, lease_until=None, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )


async def _finish(ctx: JobContext, batch_id: str) -> None:
    async with ctx.sessions() as session, session.begin():
        await session.execute(
            update(WorkBatch)
            .where(WorkBatch.id == batch_id, WorkBatch.owner == ctx.owner)
            .values(status="done", lease_until=None, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )


async def execute_batch(ctx: JobContext, batch_id: str) -> str:
    """Judge one work batch; returns what happened: done, skipped (someone else has it) or failed-run."""
    window = ctx.settings.db_retry_window_s
    taken = await with_db_retry(
        lambda: _take(ctx, batch_id), window_s=window, stopping=ctx.stopping, what=f"taking batch {batch_id}"
    )
    if taken is None:
        return "skipped"
    heartbeat = asyncio.create_task(_heartbeat(ctx, batch_id), name=f"lease-{batch_id}")
    unstored: dict[int, JudgmentResult] = {}
    spooled: set[int] = set()
    stored: list[int] = []
    try:
        if taken.run_status not in OPEN:
            await with_db_retry(lambda: _finish(ctx, batch_id), window_s=window, stopping=ctx.stopping)
            return "skipped"
        problem = await _await_judge(ctx, taken.run_id, taken.fingerprint_hash)
        if problem is not None:
            await fail_run(ctx, taken.run_id, problem)
            await with_db_retry(lambda: _finish(ctx, batch_id), window_s=window, stopping=ctx.stopping)
            return "failed-run"
        work, version = await with_db_retry(
            lambda: _claim(ctx, batch_id, taken.judgment_ids), window_s=window, stopping=ctx.stopping
        )
        if work:
            assert version is not None
            too_long = await _too_long(ctx, version, work)

            arrived: asyncio.Queue[tuple[int, JudgmentResult] | None] = asyncio.Queue()

            async def one(w: _Work) -> None:
                result = await _judge(ctx, version, w, too_long.get(w.pair_id))
                unstored[w.judgment_id] = result
                arrived.put_nowait((w.judgment_id, result))

            async def writer() -> None:
                # Verdicts are written as they arrive; whatever arrived meanwhile shares the transaction.
                while (first := await arrived.get()) is not None:
                    group = [first]
                    while not arrived.empty() and len(group) < 32:
                        item = arrived.get_nowait()
                        if item is None:
                            arrived.put_nowait(None)
                            break
                        group.append(item)
                    try:
                        stored.extend(await store_verdicts(ctx, group))
                    except Exception as exc:  # noqa: BLE001 - the database stayed away: keep the verdicts on disk
                        log.error("could not store %d verdict(s): %r; spooling them", len(group), exc)
                        for judgment_id, result in group:
                            ctx.spool.append(judgment_id, result)
                            spooled.add(judgment_id)
                    for judgment_id, _ in group:
                        unstored.pop(judgment_id, None)

            writing = asyncio.create_task(writer())
            try:
                await asyncio.gather(*(one(w) for w in work))
            finally:
                arrived.put_nowait(None)
            await writing
        await with_db_retry(lambda: _finish(ctx, batch_id), window_s=window, stopping=ctx.stopping)
    except BaseException:
        # Stopping (or the database gone for good): a paid verdict gets one quick write, else the
        # spool; unjudged work goes back to the queue.
        for judgment_id, result in list(unstored.items()):
            try:
                await asyncio.wait_for(asyncio.shield(store_verdict(ctx, judgment_id, result, window_s=0.0)), 2.0)
            except BaseException:  # noqa: BLE001 - anything but a clean write keeps it on disk
                ctx.spool.append(judgment_id, result)
                spooled.add(judgment_id)
        unstored.clear()
        with contextlib.suppress(Exception):
            await asyncio.shield(with_db_retry(lambda: _release(ctx, batch_id, spooled), window_s=5.0))
        raise
    finally:
        heartbeat.cancel()
        with contextlib.suppress(BaseException):
            await heartbeat
    linked = await with_db_retry(lambda: _linked_runs(ctx, stored), window_s=window, stopping=ctx.stopping)
    await close_runs(ctx, linked | {taken.run_id})
    return "done"


async def _linked_runs(ctx: JobContext, judgment_ids: list[int]) -> set[str]:
    async with ctx.sessions() as session:
        return await runs_of(session, judgment_ids)


async def replay_spool(ctx: JobContext) -> int:
    """Write spooled verdicts back (one quick try each; a dead database keeps the rest), then close their runs."""
    written: list[int] = []

    async def write(judgment_id: int, result: JudgmentResult) -> None:
        if await store_verdict(ctx, judgment_id, result, window_s=0.0):
            written.append(judgment_id)

    count = await ctx.spool.replay(write)
    if written:
        await close_runs(ctx, await _linked_runs(ctx, written))
    if count:
        log.info("replayed %d spooled verdict(s), %d stored", count, len(written))
    return count

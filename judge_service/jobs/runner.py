"""Run executor: judges a run's pending judgments with bounded concurrency and stores each result.

Runs and their pending judgments live in SQL, so an interrupted run resumes on the next start.
Within one process, a judgment shared by two runs (a re-sent pair) is judged once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from judge_service.engine.client import JudgeClient, JudgeUnavailableError
from judge_service.engine.fast import judge_fast
from judge_service.engine.judge import JudgmentResult, PairText, judge_reasoned
from judge_service.rubrics.registry import RubricVersion
from judge_service.rubrics.render import Order
from judge_service.store import repo
from judge_service.store.models import (
    JudgeFingerprint,
    Judgment,
    JudgmentScore,
    Pair,
    RubricVersionRow,
    Run,
    RunJudgment,
    utcnow,
)
from judge_service.store.results import SetKey, refresh_judge_pair, result_set_id

log = logging.getLogger(__name__)


def claimable(now: datetime) -> ColumnElement[bool]:
    """Pending judgments, and running ones whose process let the lease run out."""
    return or_(Judgment.status == "pending", and_(Judgment.status == "running", Judgment.lease_until < now))


def _is_transient_db_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, DBAPIError) and any(
        marker in text for marker in ("deadlock", "could not serialize", "database is locked")
    )


ResultHook = Callable[[str, Any], Awaitable[None]]


class RunExecutor:
    """Executes runs in the background of the service process."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], client: JudgeClient, store_messages: bool = True
    ) -> None:
        self.sessions = sessions
        self.client = client
        self.store_messages = store_messages
        self._runs: dict[str, asyncio.Task[None]] = {}
        self._judgments: dict[int, asyncio.Task[None]] = {}
        self._versions: dict[int, RubricVersion] = {}
        self.on_run_done: ResultHook | None = None

    def start(self, run_id: str) -> asyncio.Task[None]:
        """Start (or join) the background task of a run."""
        task = self._runs.get(run_id)
        if task is None or task.done():
            task = asyncio.create_task(self._execute(run_id), name=f"run-{run_id}")
            self._runs[run_id] = task
            task.add_done_callback(functools.partial(self._forget_run, run_id))
        return task

    def _forget_run(self, run_id: str, task: asyncio.Task[None]) -> None:
        if self._runs.get(run_id) is task:
            del self._runs[run_id]

    def _forget_judgment(self, judgment_id: int, task: asyncio.Task[None]) -> None:
        if self._judgments.get(judgment_id) is task:
            del self._judgments[judgment_id]

    async def wait(self, run_id: str) -> None:
        """Wait for a run; shielded so a dropped client connection does not cancel the work."""
        await asyncio.shield(self.start(run_id))

    async def resume_all(self) -> list[str]:
        """Restart every run that was pending or running when the process stopped."""
        async with self.sessions() as session:
            ids = list((await session.execute(select(Run.id).where(Run.status.in_(("pending", "running"))))).scalars())
        for run_id in ids:
            self.start(run_id)
        return ids

    async def shutdown(self) -> None:
        """Cancel running work; it stays pending in SQL and resumes on the next start."""
        tasks = list(self._runs.values()) + list(self._judgments.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _version(self, session: AsyncSession, rubric_version_id: int) -> RubricVersion:
        if rubric_version_id not in self._versions:
            row = await session.get(RubricVersionRow, rubric_version_id)
            assert row is not None
            self._versions[rubric_version_id] = repo.version_from_row(row)
        return self._versions[rubric_version_id]

    async def _execute(self, run_id: str) -> None:
        try:
            await self._execute_inner(run_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or lost database must not leave the run "running" silently
            log.exception("run %s failed", run_id)
            async with self.sessions() as session, session.begin():
                run = await session.get(Run, run_id)
                if run is not None:
                    run.status, run.error, run.finished_at = "failed", f"{exc.__class__.__name__}: {exc}", utcnow()

    async def _execute_inner(self, run_id: str) -> None:
        async with self.sessions() as session, session.begin():
            run = await session.get(Run, run_id)
            if run is None or run.status in ("done", "failed"):
                return
            fingerprint = await session.get(JudgeFingerprint, run.fingerprint_id)
            assert fingerprint is not None
            version = await self._version(session, run.rubric_version_id)
            if run.status == "pending":
                run.status, run.started_at = "running", utcnow()
            pending = (
                (
                    await session.execute(
                        select(Judgment)
                        .join(RunJudgment, RunJudgment.judgment_id == Judgment.id)
                        .where(RunJudgment.run_id == run_id, claimable(utcnow()))
                        .options(selectinload(Judgment.pair))
                        .order_by(Judgment.pair_id, Judgment.repeat, Judgment.order)
                    )
                )
                .scalars()
                .all()
            )
            work = [
                (
                    j.id,
                    j.order,
                    j.seed,
                    j.mode,
                    PairText(j.pair.prompt, j.pair.base_output, j.pair.ft_output, j.pair.reference),
                )
                for j in pending
            ]
        if work:
            await self._check_judge(run_id, fingerprint.fingerprint_hash)
        # Everything in flight together: the client's semaphore keeps vLLM's batch full but bounded.
        tasks = [self._judgment_task(jid, version, pair, order, seed, mode) for jid, order, seed, mode, pair in work]
        await asyncio.gather(*tasks)
        async with self.sessions() as session, session.begin():
            run = await session.get(Run, run_id)
            assert run is not None
            counts = await repo.run_counts(session, run_id)
            if counts["pending"]:
                return  # another process holds some; whoever finishes last closes the run
            run.status, run.finished_at = "done", utcnow()
        if self.on_run_done is not None:
            await self.on_run_done(run_id, counts)

    async def _check_judge(self, run_id: str, expected_hash: str) -> None:
        delay = 1.0
        while True:
            try:
                fingerprint = await self.client.fingerprint()
                break
            except JudgeUnavailableError as exc:
                # Resumed runs may start before the judge does: wait, and say so on the run.
                log.warning("run %s waits for the judge: %s", run_id, exc)
                await self._set_error(run_id, f"waiting for the judge: {exc}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        await self._set_error(run_id, None)
        if fingerprint.hash != expected_hash:
            raise JudgeUnavailableError(
                "the judge now served differs from the one this run was pinned to "
                f"(fingerprint {fingerprint.hash[:12]} != {expected_hash[:12]}); its pending judgments stay pending"
            )

    async def _set_error(self, run_id: str, message: str | None) -> None:
        async with self.sessions() as session, session.begin():
            run = await session.get(Run, run_id)
            if run is not None and run.error != message:
                run.error = message

    def _judgment_task(
        self, judgment_id: int, version: RubricVersion, pair: PairText, order: str, seed: int, mode: str
    ) -> asyncio.Task[None]:
        task = self._judgments.get(judgment_id)
        if task is None or task.done():
            task = asyncio.create_task(self._judge_and_store(judgment_id, version, pair, order, seed, mode))
            self._judgments[judgment_id] = task
            task.add_done_callback(functools.partial(self._forget_judgment, judgment_id))
        return task

    async def _claim(self, judgment_id: int) -> bool:
        """Atomically take a judgment for this process (several replicas may execute one run)."""
        now = utcnow()
        lease = timedelta(seconds=self.client.settings.request_timeout_s * 8 + 60)
        async with self.sessions() as session, session.begin():
            claimed = await session.execute(
                update(Judgment)
                .where(Judgment.id == judgment_id, claimable(now))
                .values(status="running", lease_until=now + lease)
            )
            return bool(getattr(claimed, "rowcount", 0))

    async def _judge_and_store(
        self, judgment_id: int, version: RubricVersion, pair: PairText, order: str, seed: int, mode: str
    ) -> None:
        assert order in ("base_first", "ft_first")
        if not await self._claim(judgment_id):
            return  # another process is judging it; whoever stores it last closes the run
        typed_order: Order = "base_first" if order == "base_first" else "ft_first"
        if mode == "fast":
            result = await judge_fast(self.client, version, pair, typed_order, seed)
        else:
            result = await judge_reasoned(self.client, version, pair, typed_order, seed)
        await self.store_result(judgment_id, result)

    async def store_result(self, judgment_id: int, result: JudgmentResult) -> None:
        """Write one judge call's outcome (verdict or failure) onto its pending judgment.

        Retried when the database aborts the transaction for a deadlock or serialization
        conflict: the verdict is already paid for and must not be lost.
        """
        retrying = AsyncRetrying(
            retry=retry_if_exception(_is_transient_db_error),
            stop=stop_after_attempt(5),
            wait=wait_exponential_jitter(multiplier=0.05, max=1.0),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                await self._store_result_once(judgment_id, result)

    async def _store_result_once(self, judgment_id: int, result: JudgmentResult) -> None:
        async with self.sessions() as session, session.begin():
            stmt = select(Judgment).where(Judgment.id == judgment_id).with_for_update()
            judgment = (await session.execute(stmt)).scalar_one_or_none()
            if judgment is None or judgment.status not in ("pending", "running"):
                return  # already stored (by a process whose lease ran out, say): keep the first verdict
            judgment.status = result.status
            judgment.lease_until = None
            judgment.raw_reply = result.raw
            judgment.failure_reason = result.failure_reason
            judgment.messages_hash = result.messages_hash
            judgment.messages = list(result.messages) if self.store_messages else None
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
            await self._refresh_pair(session, judgment)

    async def _refresh_pair(self, session: AsyncSession, judgment: Judgment) -> None:
        pair = await session.get(Pair, judgment.pair_id)
        assert pair is not None
        key = SetKey(
            experiment_id=pair.experiment_id,
            rubric_version_id=judgment.rubric_version_id,
            fingerprint_id=judgment.fingerprint_id,
            mode=judgment.mode,
            purpose=judgment.purpose,
            scope=(judgment.run_id or "") if judgment.purpose == "rejudge" else "",
        )
        # Not cached across transactions: an id another transaction has not committed yet would
        # break the foreign key here. Submissions create the set up front, so this is a lookup.
        await refresh_judge_pair(session, await result_set_id(session, key), key, judgment.pair_id)

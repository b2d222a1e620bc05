"""Real processes for chaos tests: `judge-service worker` and `serve` subprocesses, PostgreSQL restarts, audits."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from judge_service.store import db
from judge_service.store.models import Judgment, JudgmentScore, PairResult, Run, RunJudgment, WorkBatch
from tests.conftest import ROOT


def service_env(database_url: str, base_url: str, tmp: Path, **extra: Any) -> dict[str, str]:
    """Environment for a service subprocess judging with the fake judge (short leases, fast reaper)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUDGE_")}
    values: dict[str, Any] = {
        "DATABASE_URL": database_url,
        "EXECUTOR": "queue",
        "BASE_URL": base_url,
        "MODEL": "fake-judge",
        "MODEL_REVISION": "test-rev",
        "REQUEST_TIMEOUT_S": 3,
        "RETRY_ATTEMPTS": 3,
        "RETRY_MAX_WAIT_S": 0.05,
        "MODEL_CHECK_TTL_S": 1,
        "CONCURRENCY": 8,
        "BATCH_SIZE": 8,
        "WORKER_BATCHES": 3,
        "LEASE_S": 3,
        "REAPER_INTERVAL_S": 1,
        "SCHEDULE_TICK_S": 1,
        "DB_RETRY_WINDOW_S": 60,
        "SPOOL_DIR": tmp / "spool",
        "RUBRICS_DIR": ROOT / "rubrics",
        "PROMPTS_DIR": ROOT / "prompts",
    }
    values.update({k.upper(): v for k, v in extra.items()})
    env.update({f"JUDGE_{k}": str(v) for k, v in values.items()})
    env["PYTHONPATH"] = str(ROOT)
    return env


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start `judge-service ARGS` as a child process in its own session, logging to `log`."""
    handle = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "judge_service.cli", *args],
        env=env,
        cwd=log.parent,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def kill9(proc: subprocess.Popen[bytes]) -> None:
    """kill -9, no goodbye."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> int:
    """SIGTERM, then SIGKILL if it does not exit in time; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            kill9(proc)
    return int(proc.returncode)


@contextmanager
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Every process added to the list is killed on the way out, whatever happened."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        yield procs
    finally:
        for proc in procs:
            kill9(proc)


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 60.0) -> None:
    """Poll `url` until it answers 200."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready:\n{log.read_text()[-3000:]}")


def pg_version() -> str:
    """The installed PostgreSQL cluster version (e.g. 15), from /etc/postgresql."""
    versions = sorted(p.name for p in Path("/etc/postgresql").iterdir() if p.is_dir())
    return versions[-1]


def pg_ctl(action: str) -> None:
    """`pg_ctlcluster <version> main <action>` (restart takes the server down and up again)."""
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", pg_version(), "main", action],
        check=True,
        capture_output=True,
        timeout=120,
    )


def pg_ready(timeout_s: float = 60.0) -> bool:
    """Wait until PostgreSQL accepts connections."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"], check=False).returncode == 0:
            return True
        time.sleep(0.3)
    return False


def ensure_pg_running() -> None:
    """Start PostgreSQL if a failed test left it down."""
    if not pg_ready(2.0):
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", pg_version(), "main", "start"], check=False, timeout=120
        )
        pg_ready()


async def wait_runs_closed(database_url: str, run_ids: list[str], timeout_s: float) -> dict[str, str]:
    """Poll until every run is done or failed; returns their statuses (raises on timeout)."""
    engine = db.create_engine(database_url)
    deadline = time.monotonic() + timeout_s
    statuses: dict[str, str] = {}
    try:
        while time.monotonic() < deadline:
            try:
                async with db.session_factory(engine)() as session:
                    rows = await session.execute(select(Run.id, Run.status).where(Run.id.in_(run_ids)))
                    statuses = {str(i): str(s) for i, s in rows.all()}
                if len(statuses) == len(run_ids) and all(s in ("done", "failed") for s in statuses.values()):
                    return statuses
            except Exception:  # noqa: BLE001 - the database may be restarting
                pass
            await asyncio.sleep(0.5)
    finally:
        await engine.dispose()
    raise TimeoutError(f"runs not closed after {timeout_s:.0f}s: {statuses}")


async def progress(database_url: str) -> int:
    """Judgments stored so far (done or failed)."""
    engine = db.create_engine(database_url)
    try:
        async with db.session_factory(engine)() as session:
            stmt = select(func.count()).select_from(Judgment).where(Judgment.status.in_(("done", "failed")))
            return int((await session.execute(stmt)).scalar_one())
    finally:
        await engine.dispose()


async def wait_progress(database_url: str, at_least: int, timeout_s: float = 120.0) -> int:
    """Wait until at least `at_least` judgments are stored."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = await progress(database_url)
        if done >= at_least:
            return done
        await asyncio.sleep(0.2)
    raise TimeoutError(f"fewer than {at_least} judgments stored after {timeout_s:.0f}s")


async def audit(database_url: str, run_ids: list[str]) -> dict[str, Any]:
    """Everything the chaos tests check, counted independently from the database rows."""
    engine = db.create_engine(database_url)
    try:
        async with db.session_factory(engine)() as session:
            per_pair = dict(
                (await session.execute(select(Judgment.pair_id, func.count()).group_by(Judgment.pair_id))).all()
            )
            statuses = dict(
                (await session.execute(select(Judgment.status, func.count()).group_by(Judgment.status))).all()
            )
            failed_without_reason = (
                await session.execute(
                    select(func.count())
                    .select_from(Judgment)
                    .where(Judgment.status == "failed", Judgment.failure_reason.is_(None))
                )
            ).scalar_one()
            done_ids = select(Judgment.id).where(Judgment.status == "done")
            done = (await session.execute(select(func.count()).select_from(done_ids.subquery()))).scalar_one()
            scores = (await session.execute(select(func.count()).select_from(JudgmentScore))).scalar_one()
            # Each pair's rollup counts each of its verdicts once: nothing stored twice.
            rollup = dict(
                (
                    await session.execute(
                        select(PairResult.pair_id, PairResult.n_valid + PairResult.n_failed).where(
                            PairResult.result_set_id.is_not(None)
                        )
                    )
                ).all()
            )
            runs = dict((await session.execute(select(Run.id, Run.status).where(Run.id.in_(run_ids)))).all())
            open_batches = (
                await session.execute(
                    select(func.count()).select_from(WorkBatch).where(WorkBatch.status.in_(("queued", "running")))
                )
            ).scalar_one()
            linked = (
                await session.execute(
                    select(func.count()).select_from(RunJudgment).where(RunJudgment.run_id.in_(run_ids))
                )
            ).scalar_one()
            reasons = [
                str(r)
                for r in (
                    await session.execute(select(Judgment.failure_reason).where(Judgment.status == "failed").distinct())
                ).scalars()
            ]
    finally:
        await engine.dispose()
    return {
        "per_pair": per_pair,
        "statuses": statuses,
        "failed_without_reason": int(failed_without_reason),
        "done": int(done),
        "scores": int(scores),
        "rollup": rollup,
        "runs": runs,
        "open_batches": int(open_batches),
        "linked": int(linked),
        "reasons": reasons,
    }

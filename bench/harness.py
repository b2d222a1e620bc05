"""Shared bench plumbing: fresh databases, API and worker processes, fake judge replicas, timed submissions."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from judge_service.store import db, repo

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("JUDGE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
sys.path.insert(0, str(ROOT))  # the fake judge lives with the tests

from tests.fake_judge import FakeJudgeServer, free_port  # noqa: E402


async def fresh_postgres() -> str:
    """A new, empty PostgreSQL database; returns its URL."""
    name = f"judge_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


async def drop_postgres(url: str) -> None:
    """Drop a bench database."""
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    await admin.close()


def env_for(database_url: str, base_url: str, workdir: Path, **extra: Any) -> dict[str, str]:
    """Service settings for bench processes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUDGE_")}
    values: dict[str, Any] = {
        "DATABASE_URL": database_url,
        "BASE_URL": base_url,
        "MODEL": "fake-judge",
        "MODEL_REVISION": "bench",
        "MODEL_CHECK_TTL_S": 30,
        "SPOOL_DIR": workdir / "spool",
        "RUBRICS_DIR": ROOT / "rubrics",
        "PROMPTS_DIR": ROOT / "prompts",
        "SCHEDULER_ENABLED": "false",
    }
    values.update({k.upper(): v for k, v in extra.items()})
    env.update({f"JUDGE_{k}": str(v) for k, v in values.items()})
    env["PYTHONPATH"] = str(ROOT)
    return env


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`judge-service ARGS` in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "judge_service.cli", *args],
        env=env,
        cwd=log.parent,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM, then SIGKILL."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


async def start_api(env: dict[str, str], workdir: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """A `judge-service serve` on a free port, ready."""
    port = free_port()
    log = workdir / f"api-{port}.log"
    proc = spawn(["serve", "--port", str(port)], env, log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    async with httpx.AsyncClient(timeout=5) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(log.read_text()[-3000:])
            try:
                if (await http.get(f"{url}/healthz")).status_code == 200:
                    return url, proc
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.3)
    raise TimeoutError(log.read_text()[-3000:])


async def api_key(database_url: str) -> str:
    """A key with every scope (migrates the database first)."""
    return await db.in_transaction(database_url, lambda s: repo.create_api_key(s, "bench", ["submit", "read", "admin"]))


def items(n: int, prefix: str) -> list[dict[str, Any]]:
    """n pairs of a few sentences each, FT carrying the fake judge's GOOD marker."""
    return [
        {
            "id": f"{prefix}-{i}",
            "prompt": f"Customer {i} asks: my order {i} arrived damaged, what can I do about it?",
            "base_output": f"Sorry to hear that. Please contact support about order {i}.",
            "ft_output": f"GOOD: I am sorry order {i} arrived damaged. Reply with a photo and we ship a replacement.",
            "tags": {"bucket": str(i % 7)},
        }
        for i in range(n)
    ]


def body(experiment: str, pairs: list[dict[str, Any]], run_async: bool = True) -> dict[str, Any]:
    """A submission body."""
    return {
        "experiment": {"name": experiment, "base_model": "base-7b", "ft_model": "ft-7b"},
        "rubric": "customer_service",
        "async": run_async,
        "items": pairs,
    }


def start_judges(k: int, capacity: int, delay_s: float) -> list[FakeJudgeServer]:
    """K fake judge replicas of fixed capacity (at most `capacity` calls at once, `delay_s` each), in this process."""
    judges = [FakeJudgeServer().start() for _ in range(k)]
    for judge in judges:
        judge.state.capacity, judge.state.delay_s = capacity, delay_s
    return judges


class JudgeProcess:
    """One fake judge replica in its own process, so replicas never share a GIL with each other or the bench."""

    def __init__(self, capacity: int, delay_s: float) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        args = ["--port", str(self.port), "--capacity", str(capacity), "--delay", str(delay_s)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fake_judge", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/stats", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    async def stats(self, http: httpx.AsyncClient) -> dict[str, int]:
        """Calls served and the peak of calls in flight."""
        reply = await http.get(f"http://127.0.0.1:{self.port}/stats")
        return dict(reply.json())

    def stop(self) -> None:
        """Stop the process."""
        self.proc.terminate()
        self.proc.wait(timeout=10)

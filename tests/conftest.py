"""Shared fixtures: SQLite and PostgreSQL databases, the fake judge, a running app with keys."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from judge_service.api.app import create_app
from judge_service.config import Settings
from judge_service.judge_model.prepare import prepare
from judge_service.judge_model.serve import VllmServer
from judge_service.service import Service as AppService
from judge_service.store import repo
from tests.fake_judge import FakeJudgeServer, free_port

# In CI nothing may be skipped for want of a service: PostgreSQL and vLLM tests must run.
REQUIRE_ALL = os.environ.get("CI", "").lower() == "true" or os.environ.get("JUDGE_TEST_REQUIRE_ALL") == "1"
PG_ADMIN_DSN = os.environ.get("JUDGE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
ROOT = Path(__file__).resolve().parent.parent


def skip_or_fail(reason: str) -> None:
    """Skip locally, fail in CI."""
    if REQUIRE_ALL:
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


@functools.lru_cache(maxsize=1)
def pg_problem() -> str | None:
    """Why PostgreSQL cannot be used, or None when it answers (checked once, in a thread)."""

    async def probe() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
        await conn.close()

    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, probe()).result()
    except (OSError, asyncpg.PostgresError) as exc:
        return f"PostgreSQL not reachable at {PG_ADMIN_DSN}: {exc!r}"
    return None


async def _pg_database() -> AsyncIterator[str]:
    name = f"judge_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    try:
        yield PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        # A fresh connection: a chaos test may have restarted PostgreSQL meanwhile.
        admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=30)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'judge.db'}"
        return
    problem = pg_problem()
    if problem:
        skip_or_fail(problem)
    async for url in _pg_database():
        yield url


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeJudgeServer]:
    """One fake judge for the session."""
    server = FakeJudgeServer().start()
    yield server
    server.stop()


@pytest.fixture
def fake_judge(fake_server: FakeJudgeServer) -> FakeJudgeServer:
    """The fake judge, reset to good behaviour for each test."""
    fake_server.reset()
    return fake_server


def make_settings(database_url: str, base_url: str, model: str, **overrides: Any) -> Settings:
    """Settings for tests: short timeouts and retry waits, no model-check caching."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "base_url": base_url,
        "model": model,
        "model_revision": "test-rev",
        "request_timeout_s": 3.0,
        "retry_attempts": 3,
        "retry_max_wait_s": 0.05,
        "model_check_ttl_s": 0.0,
        "concurrency": 8,
        "rubrics_dir": ROOT / "rubrics",
        "prompts_dir": ROOT / "prompts",
        # Never the checkout's own spool: a test's leftovers must not be replayed by another test.
        "spool_dir": Path(tempfile.mkdtemp(prefix="judge-spool-")),
        # Schedule tests fire every second or two; production refuses intervals under a minute.
        "schedule_min_interval_s": 1,
        # Reports run under a time limit; this shared, loaded test machine is far slower than a server.
        "report_timeout_s": 300.0,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Service:
    """A running app and keys of each scope."""

    http: httpx.AsyncClient
    ctx: AppService
    settings: Settings
    keys: dict[str, str]

    def auth(self, scope: str = "admin") -> dict[str, str]:
        """Authorization header for a key with `scope`."""
        return {"Authorization": f"Bearer {self.keys[scope]}"}


async def start_service(settings: Settings) -> AsyncIterator[Service]:
    """Run the app's lifespan and give an HTTP client bound to it."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        ctx: AppService = app.state.ctx
        keys = {}
        async with ctx.sessions() as session, session.begin():
            for scope in ("submit", "read", "admin"):
                keys[scope] = await repo.create_api_key(session, f"test-{scope}", [scope])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as http:
            yield Service(http, ctx, settings, keys)


@pytest.fixture
async def service(database_url: str, fake_judge: FakeJudgeServer) -> AsyncIterator[Service]:
    """The app on a fresh database, judging with the fake judge."""
    settings = make_settings(database_url, fake_judge.base_url, fake_judge.state.model)
    async for svc in start_service(settings):
        yield svc


def pair_items(n: int, prefix: str = "p", ft_good: bool = True) -> list[dict[str, Any]]:
    """n pairs where the FT answer carries the fake judge's GOOD marker (or Base does)."""
    items = []
    for i in range(n):
        good, bad = f"GOOD answer number {i}.", f"weak answer number {i}."
        items.append(
            {
                "id": f"{prefix}{i}",
                "prompt": f"Question {i}: how do I reset my password?",
                "base_output": bad if ft_good else good,
                "ft_output": good if ft_good else bad,
                "tags": {"category": "account" if i % 2 else "billing"},
                "metadata": {"i": i},
            }
        )
    return items


def pairwise_body(items: list[dict[str, Any]], experiment: str = "exp-1", **extra: Any) -> dict[str, Any]:
    """A `POST /judge/pairwise` body."""
    body: dict[str, Any] = {
        "experiment": {"name": experiment, "base_model": "base-7b", "ft_model": "ft-7b-sft"},
        "rubric": "customer_service",
        "items": items,
    }
    body.update(extra)
    return body


@pytest.fixture(scope="session")
def vllm_judge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    """The real embedded judge for the whole session: prepared once per checkout, served by vLLM on a free port.

    Shared by every test marked `vllm`, so the ~45 s start is paid once per test run.
    """
    try:
        import vllm  # noqa: F401
    except ImportError as exc:
        skip_or_fail(f"vLLM is not installed: {exc}")
    settings = Settings(vllm_port=free_port(), model_dir=ROOT / ".judge-model" / "smollm2-135m-instruct")
    prepare(settings.model_dir)
    log = tmp_path_factory.mktemp("vllm") / "vllm.log"
    # Dev mode adds /server_info, where vLLM reports the dtype it serves: the client reads it there.
    server = VllmServer(settings, log_path=log, extra_env={"VLLM_SERVER_DEV_MODE": "1"})
    print(f"vllm_judge: {server.summary}")
    try:
        server.start(timeout_s=600)
    except Exception:
        print(log.read_text()[-5000:])
        raise
    yield server
    server.stop()

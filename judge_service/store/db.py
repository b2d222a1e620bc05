"""Database engine, sessions and migrations (SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from judge_service.config import normalize_database_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
T = TypeVar("T")


def is_sqlite(url: str) -> bool:
    """True for any SQLite URL."""
    return make_url(normalize_database_url(url)).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the dashboard read while judgments are written; busy_timeout waits out short
    # write locks instead of failing; SQLite ignores foreign keys unless told.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for `url` (plain sqlite:// and postgresql:// are mapped to async drivers)."""
    url = normalize_database_url(url)
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    """Alembic configuration pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", normalize_database_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Run migrations up to `revision` (blocking; runs its own event loop)."""
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    """Run migrations from async code: Alembic's env starts its own loop, so use a thread."""
    await asyncio.to_thread(upgrade, url, revision)


async def in_transaction(url: str, action: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Migrate the database, run `action` in one transaction, and close the engine (CLI-style use)."""
    await upgrade_async(url)
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session, session.begin():
            return await action(session)
    finally:
        await engine.dispose()

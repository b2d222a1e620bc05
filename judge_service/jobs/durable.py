"""Database writes that outlive a lost connection, and the spool that keeps paid verdicts when it stays lost.

A verdict costs a judge call. When the database drops the connection (a restart, a failover, a
network blip), the write is retried with backoff over `JUDGE_DB_RETRY_WINDOW_S` while the reply
waits in memory; past that window, or when the process is told to stop, the verdict is appended to
a local JSONL spool that this process (or the next one on the machine) writes back later.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO, TypeVar

import asyncpg
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_delay, wait_exponential_jitter

from judge_service.engine.judge import JudgmentResult
from judge_service.engine.verdict import FtVerdict

log = logging.getLogger(__name__)
T = TypeVar("T")

# Text of errors that mean "the connection or the server went away", whatever layer raised them.
_LOST = (
    "connection_lost",
    "connection was closed",
    "connection is closed",
    "connection refused",
    "connection reset",
    "terminating connection",
    "server closed the connection",
    "cannot connect now",
    "the database system is",
    "underlying connection is closed",
    "connectiondoesnotexist",
)
# Conflicts the database resolves by aborting one transaction: try again.
_CONFLICT = ("deadlock", "could not serialize", "database is locked")


def is_lost_connection(exc: BaseException) -> bool:
    """True for a dropped or refused database connection (asyncpg, SQLAlchemy or the OS)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    if isinstance(exc, ConnectionError | asyncpg.exceptions.PostgresConnectionError | asyncpg.InterfaceError):
        return True
    if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError | PermissionError):
        return True
    text = f"{exc.__class__.__name__}: {exc}".lower()
    return any(marker in text for marker in _LOST)


def is_retryable_db_error(exc: BaseException) -> bool:
    """Lost connections and transaction conflicts; never a constraint violation or a bug."""
    if is_lost_connection(exc):
        return True
    return isinstance(exc, DBAPIError) and any(m in str(exc).lower() for m in _CONFLICT)


async def with_db_retry(
    action: Callable[[], Awaitable[T]],
    *,
    window_s: float,
    stopping: asyncio.Event | None = None,
    what: str = "database write",
) -> T:
    """Run `action` (one whole transaction) again on lost connections and conflicts, for up to `window_s`.

    Gives up early once `stopping` is set, so a stopping process spools instead of waiting.
    """

    def stop(state: RetryCallState) -> bool:
        return stop_after_delay(window_s)(state) or bool(stopping is not None and stopping.is_set())

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("%s failed (attempt %d), retrying: %r", what, state.attempt_number, exc)

    retrying = AsyncRetrying(
        retry=retry_if_exception(is_retryable_db_error),
        stop=stop,
        wait=wait_exponential_jitter(multiplier=0.2, max=5.0),
        before_sleep=before_sleep,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await action()
    raise AssertionError("unreachable")  # pragma: no cover - tenacity reraises


def result_to_json(judgment_id: int, result: JudgmentResult) -> dict[str, Any]:
    """One spool record: the judgment id and everything the judge returned for it."""
    body = dataclasses.asdict(result)
    return {"judgment_id": judgment_id, "result": body}


def result_from_json(record: dict[str, Any]) -> tuple[int, JudgmentResult]:
    """Inverse of `result_to_json`."""
    body = dict(record["result"])
    verdict = body.pop("verdict")
    if verdict is not None:
        verdict["scores"] = {k: (int(v[0]), int(v[1])) for k, v in verdict["scores"].items()}
        verdict["tags_base"], verdict["tags_ft"] = tuple(verdict["tags_base"]), tuple(verdict["tags_ft"])
        body["verdict"] = FtVerdict(**verdict)
    return int(record["judgment_id"]), JudgmentResult(**body)


Writer = Callable[[int, JudgmentResult], Awaitable[object]]


class Spool:
    """Append-only JSONL files of verdicts that could not be written yet, one file per process.

    The owning process holds an exclusive `flock` on its file, so a replay by another process on
    the same machine only takes over files whose owner has died.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / f"spool-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        self._file: TextIO | None = None

    def _open(self) -> TextIO:
        if self._file is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle = self.path.open("a", encoding="utf-8")
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._file = handle
        return self._file

    def append(self, judgment_id: int, result: JudgmentResult) -> None:
        """Keep one verdict on local disk (synchronous: it must happen even while being cancelled)."""
        handle = self._open()
        handle.write(json.dumps(result_to_json(judgment_id, result)) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
        log.warning("spooled the verdict of judgment %d to %s", judgment_id, self.path)

    def close(self) -> None:
        """Release this process's file (kept on disk if it still holds records)."""
        if self._file is not None:
            self._file.close()
            self._file = None
            if self.path.exists() and self.path.stat().st_size == 0:
                self.path.unlink()

    def pending(self) -> int:
        """Records waiting in every spool file of the directory."""
        total = 0
        for path in self.directory.glob("spool-*.jsonl"):
            with contextlib.suppress(OSError):
                total += sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
        return total

    async def replay(self, write: Writer) -> int:
        """Write back every spooled verdict this process can take; returns how many were written.

        Files are rewritten with what is left, so a crash mid-replay loses nothing (a record
        written twice is harmless: only a pending judgment takes a verdict).
        """
        if not self.directory.is_dir():
            return 0
        written = 0
        for path in sorted(self.directory.glob("spool-*.jsonl")):
            own = path == self.path
            try:
                handle = self._open() if own else path.open("r+", encoding="utf-8")
            except OSError:
                continue
            try:
                if not own:
                    try:
                        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue  # its process is alive and replays it itself
                lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
                left: list[str] = []
                for index, line in enumerate(lines):
                    try:
                        judgment_id, result = result_from_json(json.loads(line))
                        await write(judgment_id, result)
                        written += 1
                    except Exception as exc:  # noqa: BLE001 - keep the rest for the next replay
                        log.warning("spool replay of %s stopped: %r", path.name, exc)
                        left = lines[index:]
                        break
                with path.open("w", encoding="utf-8") as out:
                    out.write("".join(line + "\n" for line in left))
                if not left and not own:
                    path.unlink(missing_ok=True)
            finally:
                if not own:
                    handle.close()
        return written

"""Rubric versions added at run time, in SQL: the registry's `RubricSource`, and adding a version.

The judging core (`rubrics/`) knows nothing of SQL; this module hands it plain `RubricVersion`s.
Versions are immutable, so a version once read is cached by its content hash and only the small
(name, version, hash) listing is read again.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from judge_service.rubrics.registry import RubricConflictError, RubricRegistry, RubricVersion, text_diff
from judge_service.store import repo
from judge_service.store.models import RubricVersionRow, utcnow

ADDED = "added"
log = logging.getLogger(__name__)


class StoredRubrics:
    """Reads the versions added at run time; the registry asks it on an unknown or unpinned reference."""

    def __init__(self, sessions: Callable[[], AbstractAsyncContextManager[AsyncSession]]) -> None:
        self._sessions = sessions
        self._by_hash: dict[str, RubricVersion] = {}

    @classmethod
    def over(cls, session: AsyncSession) -> StoredRubrics:
        """A source reading through one open session (the CLI's, inside its transaction)."""
        return cls(lambda: contextlib.nullcontext(session))

    async def stored(self, name: str | None = None) -> list[RubricVersion]:
        """Every added version (of one rubric when `name` is given)."""
        listing = select(RubricVersionRow.id, RubricVersionRow.content_hash).where(RubricVersionRow.origin == ADDED)
        if name is not None:
            listing = listing.where(RubricVersionRow.name == name)
        async with self._sessions() as session:
            rows = (await session.execute(listing)).all()
            missing = [row_id for row_id, digest in rows if digest not in self._by_hash]
            if missing:
                full = await session.execute(select(RubricVersionRow).where(RubricVersionRow.id.in_(missing)))
                for row in full.scalars():
                    try:
                        self._by_hash[row.content_hash] = added_version(row)
                    except ValidationError as exc:
                        # Stored before a rule was tightened (e.g. tie_margin .nan): one bad version must not
                        # take the listing and every other rubric down with it. It stays stored, unused.
                        log.error("rubric %s@v%s (row %s) no longer validates: %s", row.name, row.version, row.id, exc)
        return [self._by_hash[digest] for _, digest in rows if digest in self._by_hash]


async def resolve_in_session(session: AsyncSession, rubrics_dir: Path, prompts_dir: Path, ref: str) -> RubricVersion:
    """Resolve `ref` among the built-in files and the added versions, reading through `session` (CLI use)."""
    registry = RubricRegistry.load(rubrics_dir, prompts_dir)
    registry.source = StoredRubrics.over(session)
    return await registry.resolve(ref)


def added_version(row: RubricVersionRow) -> RubricVersion:
    """A stored row as a registry version."""
    version = repo.version_from_row(row)
    return RubricVersion(version.rubric, version.rubric_text, version.template, version.content_hash, origin="added")


@dataclass(frozen=True)
class Added:
    """The outcome of adding a version: `created` is False when the same text was already there."""

    version: RubricVersion
    created: bool


async def add_rubric(session: AsyncSession, registry: RubricRegistry, text: str, added_by: str | None = None) -> Added:
    """Validate, hash and store a new rubric version (in the caller's transaction).

    The same text under the same `name@vN` is idempotent (`created=False`); other text under an
    existing `name@vN` (a built-in file or a stored version) raises `RubricConflictError` with the diff.
    Raises `RubricInvalidError` for text that is not a valid rubric.
    """
    version = registry.build(text)
    if not registry.check_new(version):
        builtin = registry.builtin(version.ref)
        assert builtin is not None
        return Added(builtin, created=False)
    rubric = version.rubric
    inserted = await repo.insert_ignore(
        session,
        RubricVersionRow,
        [
            {
                "name": rubric.name,
                "version": rubric.version,
                "content_hash": version.content_hash,
                "rubric_text": version.rubric_text,
                "template_ref": version.template.ref,
                "template_system": version.template.system,
                "template_user": version.template.user,
                "created_at": utcnow(),
                "origin": ADDED,
                "added_by": added_by,
            }
        ],
        ["name", "version"],
        returning=["id"],
    )
    same_ref = (RubricVersionRow.name == rubric.name, RubricVersionRow.version == rubric.version)
    row = (await session.execute(select(RubricVersionRow).where(*same_ref))).scalar_one()
    if row.content_hash != version.content_hash:
        raise RubricConflictError(
            version.ref, row.content_hash, version.content_hash, text_diff(row.rubric_text, text, version.ref)
        )
    if not inserted and row.origin != ADDED:
        # The same text was recorded when a built-in file (since removed) was used: adopt it.
        row.origin = ADDED
        row.added_by = added_by
    return Added(added_version(row), created=bool(inserted))

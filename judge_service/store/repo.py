"""Store operations used by the API, the run executor and the CLI."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import yaml
from sqlalchemy import Select, Table, case, func, literal_column, null, select, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from judge_service import auth
from judge_service.contract.validation import experiment_id_of
from judge_service.engine.client import Fingerprint
from judge_service.rubrics.models import Rubric
from judge_service.rubrics.registry import PromptTemplate, RubricVersion
from judge_service.store.models import (
    ApiKey,
    Base,
    Experiment,
    JudgeFingerprint,
    Judgment,
    Pair,
    RubricVersionRow,
    RunJudgment,
    utcnow,
)


async def insert_ignore(
    session: AsyncSession,
    model: type[Base],
    rows: Sequence[dict[str, Any]],
    keys: list[str],
    returning: Sequence[str] | None = None,
    inline: dict[str, Any] | None = None,
) -> list[tuple[Any, ...]]:
    """INSERT ... ON CONFLICT DO NOTHING: concurrent or repeated submissions never duplicate rows.

    `rows` use the model's attribute names. Returns the `returning` columns of the rows inserted
    (rows that already existed return nothing). `inline` sets columns to the same SQL expression
    in every row (compiled once, instead of running a Python default and a JSON encoder per row).
    """
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    # Core rows on the table (column names), as executemany parameters: compiled once, sent a thousand
    # rows per statement ("insertmanyvalues", which RETURNING turns on for asyncpg too), no ORM bookkeeping.
    names: dict[str, str] = {key: prop.columns[0].name for key, prop in sa_inspect(model).column_attrs.items()}
    renames = {key: name for key, name in names.items() if key != name and key in rows[0]}
    table = cast(Table, model.__table__)
    wanted = [table.c[names[k]] for k in returning] if returning else list(table.primary_key.columns)
    stmt = insert(table).values({names[k]: v for k, v in (inline or {}).items()})
    stmt = stmt.on_conflict_do_nothing(index_elements=[names[k] for k in keys])
    if returning or dialect == "postgresql":
        stmt = stmt.returning(*wanted)  # type: ignore[assignment]
    found: list[tuple[Any, ...]] = []
    for start in range(0, len(rows), 5000):
        chunk = rows[start : start + 5000]
        params = [_renamed(row, renames) for row in chunk] if renames else list(chunk)
        result = await session.execute(stmt, params)
        if returning:
            found.extend(tuple(r) for r in result.all())
    return found


async def _copy_into_temp(session: AsyncSession, table: str, columns: list[str], records: list[tuple[Any, ...]]) -> str:
    """COPY `records` into a new temporary table with `table`'s column types; returns its name.

    PostgreSQL only. The temporary table lives until the transaction ends. COPY skips
    SQLAlchemy's per-row parameter processing and the server's per-statement parsing, which
    is most of what a 10,000-pair submission costs otherwise.
    """
    name = f"tmp_{table}_{uuid.uuid4().hex[:12]}"
    quoted = ", ".join(f'"{c}"' for c in columns)
    await session.execute(text(f"CREATE TEMP TABLE {name} ON COMMIT DROP AS SELECT {quoted} FROM {table} WITH NO DATA"))
    await copy_rows(session, name, columns, records)
    return name


def _renamed(row: dict[str, Any], renames: dict[str, str]) -> dict[str, Any]:
    out = dict(row)
    for key, name in renames.items():
        out[name] = out.pop(key)
    return out


# -- experiments ---------------------------------------------------------------------------


def experiment_query(ref: str | int) -> Select[Experiment]:
    """Select an experiment by id (ASCII digits within int64) or by name."""
    text = str(ref)
    # str.isdigit() is true for '²' (int() fails) and for ids past int64 (the database fails).
    number = experiment_id_of(text)
    if number is not None:
        # Both may exist (experiment "1" and the experiment whose id is 1): the name wins, so every
        # experiment stays reachable by its name; without an order the database picked either.
        by_name_first = case((Experiment.name == text, 0), else_=1)
        return select(Experiment).where((Experiment.id == number) | (Experiment.name == text)).order_by(by_name_first)
    return select(Experiment).where(Experiment.name == text)


async def get_experiment(session: AsyncSession, ref: str | int) -> Experiment | None:
    """An experiment by id or name."""
    return (await session.execute(experiment_query(ref))).scalars().first()


async def get_or_create_experiment(
    session: AsyncSession, name: str, base_model: str, ft_model: str, metadata: dict[str, Any]
) -> Experiment:
    """Create an experiment on first use; later calls return the stored one unchanged."""
    await insert_ignore(
        session,
        Experiment,
        [{"name": name, "base_model": base_model, "ft_model": ft_model, "meta": metadata, "created_at": utcnow()}],
        ["name"],
    )
    # By name only: an all-digit name must not resolve to another experiment's id.
    stmt = select(Experiment).where(Experiment.name == name)
    return (await session.execute(stmt)).scalar_one()


# -- rubric versions and fingerprints --------------------------------------------------------


async def recorded_rubric_hashes(session: AsyncSession) -> dict[str, str]:
    """`name@vN` -> content hash of every rubric version ever used."""
    rows = await session.execute(select(RubricVersionRow.name, RubricVersionRow.version, RubricVersionRow.content_hash))
    return {f"{name}@v{version}": digest for name, version, digest in rows}


async def record_rubric_version(session: AsyncSession, version: RubricVersion) -> RubricVersionRow:
    """Store the full text of a rubric version the first time it is used."""
    rubric = version.rubric
    await insert_ignore(
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
            }
        ],
        ["name", "version"],
    )
    row = (
        await session.execute(
            select(RubricVersionRow).where(
                RubricVersionRow.name == rubric.name, RubricVersionRow.version == rubric.version
            )
        )
    ).scalar_one()
    if row.content_hash != version.content_hash:
        raise ValueError(f"rubric {version.ref} differs from the recorded version (hash {row.content_hash[:12]})")
    return row


def version_from_row(row: RubricVersionRow) -> RubricVersion:
    """Rebuild a rubric version from the stored text, exactly as it was first used."""
    rubric = Rubric.model_validate(yaml.safe_load(row.rubric_text))
    template = PromptTemplate(row.template_ref, row.template_system, row.template_user)
    return RubricVersion(rubric, row.rubric_text, template, row.content_hash)


async def record_fingerprint(session: AsyncSession, fingerprint: Fingerprint) -> JudgeFingerprint:
    """Store a judge fingerprint once; return its row."""
    await insert_ignore(
        session,
        JudgeFingerprint,
        [
            {
                "fingerprint_hash": fingerprint.hash,
                "model": fingerprint.model,
                "revision": fingerprint.revision,
                "decoding": fingerprint.decoding,
                "backend_version": fingerprint.backend_version,
                "dtype": fingerprint.dtype,
                "created_at": utcnow(),
            }
        ],
        ["fingerprint_hash"],
    )
    return (
        await session.execute(select(JudgeFingerprint).where(JudgeFingerprint.fingerprint_hash == fingerprint.hash))
    ).scalar_one()


# -- pairs and judgments ---------------------------------------------------------------------


@dataclass(frozen=True)
class PairConflict:
    """A re-sent external id whose texts differ from the stored pair."""

    index: int
    external_id: str


async def upsert_pairs(
    session: AsyncSession, experiment_id: int, rows: list[dict[str, Any]]
) -> tuple[list[Pair], list[PairConflict]]:
    """Insert new pairs, keep existing ones; report ids re-sent with different texts.

    Returns the pairs in the order of `rows`.
    """
    now = utcnow()
    await insert_ignore(
        session,
        Pair,
        [{**r, "experiment_id": experiment_id, "created_at": now} for r in rows],
        ["experiment_id", "external_id"],
    )
    ids = [r["external_id"] for r in rows]
    found: dict[str, Pair] = {}
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        result = await session.execute(
            select(Pair).where(Pair.experiment_id == experiment_id, Pair.external_id.in_(chunk))
        )
        found.update({p.external_id: p for p in result.scalars()})
    pairs = [found[i] for i in ids]
    conflicts = [
        PairConflict(index, row["external_id"])
        for index, (row, pair) in enumerate(zip(rows, pairs, strict=True))
        if pair.content_hash != row["content_hash"]
    ]
    return pairs, conflicts


async def upsert_pair_ids(
    session: AsyncSession, experiment_id: int, rows: list[dict[str, Any]]
) -> tuple[list[int], list[PairConflict]]:
    """Like `upsert_pairs`, but reads back only ids and hashes (a 10,000-pair submission stays fast)."""
    now = utcnow()
    found: dict[str, tuple[int, str]] = {}
    ids = [r["external_id"] for r in rows]
    if can_copy(session) and rows:
        columns = [
            "experiment_id", "external_id", "prompt", "base_output", "ft_output", "reference",
            "tags", "metadata", "content_hash", "texts_hash", "generation", "created_at",
        ]  # fmt: skip
        records = [
            (
                experiment_id,
                r["external_id"],
                r["prompt"],
                r["base_output"],
                r["ft_output"],
                r.get("reference"),
                json.dumps(r.get("tags") or {}),
                json.dumps(r.get("meta") or {}),
                r["content_hash"],
                r.get("texts_hash"),
                None if r.get("generation") is None else json.dumps(r["generation"]),
                now,
            )
            for r in rows
        ]
        tmp = await _copy_into_temp(session, "pairs", columns, records)
        quoted = ", ".join(f'"{c}"' for c in columns)
        await session.execute(
            text(
                f"INSERT INTO pairs ({quoted}) SELECT {quoted} FROM {tmp} "
                "ON CONFLICT (experiment_id, external_id) DO NOTHING"
            )
        )
        result = await session.execute(
            text(
                f"SELECT p.external_id, p.id, p.content_hash FROM pairs p JOIN {tmp} t "
                "ON p.experiment_id = t.experiment_id AND p.external_id = t.external_id"
            )
        )
        found.update({external: (int(pid), digest) for external, pid, digest in result.all()})
    else:
        await insert_ignore(
            session,
            Pair,
            [{**r, "experiment_id": experiment_id, "created_at": now} for r in rows],
            ["experiment_id", "external_id"],
        )
        for start in range(0, len(ids), 5000):
            result = await session.execute(
                select(Pair.external_id, Pair.id, Pair.content_hash).where(
                    Pair.experiment_id == experiment_id, Pair.external_id.in_(ids[start : start + 5000])
                )
            )
            found.update({external: (int(pid), digest) for external, pid, digest in result.all()})
    conflicts = [
        PairConflict(index, row["external_id"])
        for index, row in enumerate(rows)
        if found[row["external_id"]][1] != row["content_hash"]
    ]
    return [found[i][0] for i in ids], conflicts


async def copy_rows(session: AsyncSession, table: str, columns: list[str], records: list[tuple[Any, ...]]) -> None:
    """COPY rows into `table` in this transaction (PostgreSQL only): tens of thousands of rows in milliseconds."""
    raw = await (await session.connection()).get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    await driver.copy_records_to_table(table, records=records, columns=columns)


def can_copy(session: AsyncSession) -> bool:
    """Whether `copy_rows` works on this session's database."""
    return session.get_bind().dialect.name == "postgresql"


async def link_run(session: AsyncSession, run_id: str, judgment_ids: list[int]) -> None:
    """Record which judgments a new run asked for (a fresh run id: nothing can conflict)."""
    if can_copy(session) and judgment_ids:
        await copy_rows(session, "run_judgments", ["run_id", "judgment_id"], [(run_id, i) for i in judgment_ids])
        return
    await insert_ignore(
        session, RunJudgment, [{"run_id": run_id, "judgment_id": i} for i in judgment_ids], ["run_id", "judgment_id"]
    )


async def ensure_judgments(session: AsyncSession, run_id: str, rows: list[dict[str, Any]], retry_failed: bool) -> None:
    """Create the pending judgments a run needs (existing keys are reused) and link them to the run."""
    if can_copy(session) and rows:
        await _ensure_judgments_copy(session, run_id, rows, retry_failed)
        return
    now = utcnow()
    inserted = await insert_ignore(
        session,
        Judgment,
        [{**r, "run_id": run_id, "created_at": now} for r in rows],
        ["key"],
        returning=["key", "id"],
        inline={"tags_base": literal_column("'[]'"), "tags_ft": literal_column("'[]'"), "messages": null()},
    )
    by_key = {str(key): int(jid) for key, jid in inserted}
    # Keys that existed already (re-sent pairs, a racing submission): look those up.
    missing = [r["key"] for r in rows if r["key"] not in by_key]
    for start in range(0, len(missing), 5000):
        result = await session.execute(
            select(Judgment.key, Judgment.id).where(Judgment.key.in_(missing[start : start + 5000]))
        )
        by_key.update({str(key): int(jid) for key, jid in result.all()})
    ids = list(dict.fromkeys(by_key[r["key"]] for r in rows))
    await link_run(session, run_id, ids)
    if retry_failed and ids:
        for start in range(0, len(ids), 5000):
            failed = await session.execute(
                select(Judgment).where(Judgment.id.in_(ids[start : start + 5000]), Judgment.status == "failed")
            )
            for judgment in failed.scalars():
                judgment.status = "pending"


_JUDGMENT_COPY_COLUMNS = {
    "key": "key",
    "pair_id": "pair_id",
    "rubric_version_id": "rubric_version_id",
    "fingerprint_id": "fingerprint_id",
    "purpose": "purpose",
    "mode": "mode",
    "order": "answer_order",
    "repeat": "repeat",
    "seed": "seed",
    "status": "status",
}


async def _ensure_judgments_copy(
    session: AsyncSession, run_id: str, rows: list[dict[str, Any]], retry_failed: bool
) -> None:
    """`ensure_judgments` on PostgreSQL: COPY the rows in, then set-based INSERT ... ON CONFLICT and linking."""
    columns = list(_JUDGMENT_COPY_COLUMNS.values())
    records = [tuple(r[attr] for attr in _JUDGMENT_COPY_COLUMNS) for r in rows]
    tmp = await _copy_into_temp(session, "judgments", columns, records)
    quoted = ", ".join(f'"{c}"' for c in columns)
    params = {"run_id": run_id, "now": utcnow()}
    await session.execute(
        text(
            f"INSERT INTO judgments ({quoted}, run_id, created_at, tags_base, tags_ft, attempts) "
            f"SELECT {quoted}, CAST(:run_id AS VARCHAR), CAST(:now AS TIMESTAMPTZ), CAST('[]' AS JSON), "
            f"CAST('[]' AS JSON), 0 FROM {tmp} ON CONFLICT (key) DO NOTHING"
        ),
        params,
    )
    await session.execute(
        text(
            f"INSERT INTO run_judgments (run_id, judgment_id) SELECT DISTINCT CAST(:run_id AS VARCHAR), j.id "
            f"FROM judgments j JOIN {tmp} t ON j.key = t.key ON CONFLICT DO NOTHING"
        ),
        {"run_id": run_id},
    )
    if retry_failed:
        await session.execute(
            text(f"UPDATE judgments j SET status = 'pending' FROM {tmp} t WHERE j.key = t.key AND j.status = 'failed'")
        )


async def run_counts(session: AsyncSession, run_id: str) -> dict[str, int]:
    """Judgments of a run by status."""
    result = await session.execute(
        select(Judgment.status, func.count())
        .join(RunJudgment, RunJudgment.judgment_id == Judgment.id)
        .where(RunJudgment.run_id == run_id)
        .group_by(Judgment.status)
    )
    counts = {"pending": 0, "done": 0, "failed": 0}
    for status, n in result:
        # A judgment some process is judging right now is still pending to the caller.
        key = "pending" if status == "running" else str(status)
        counts[key] = counts.get(key, 0) + int(n)
    return counts


async def run_judgments(session: AsyncSession, run_id: str, pair_ids: list[int] | None = None) -> list[Judgment]:
    """A run's judgments with their scores, optionally for some pairs only."""
    stmt = (
        select(Judgment)
        .join(RunJudgment, RunJudgment.judgment_id == Judgment.id)
        .where(RunJudgment.run_id == run_id)
        .options(selectinload(Judgment.scores))
        .order_by(Judgment.pair_id, Judgment.order, Judgment.repeat)
    )
    if pair_ids is not None:
        stmt = stmt.where(Judgment.pair_id.in_(pair_ids))
    return list((await session.execute(stmt)).scalars())


# -- API keys --------------------------------------------------------------------------------


async def create_api_key(session: AsyncSession, name: str, scopes: list[str]) -> str:
    """Create a key and return it in clear (the only time it exists in clear)."""
    key, prefix = auth.new_key()
    session.add(ApiKey(name=name, prefix=prefix, key_hash=auth.hash_key(key), scopes=",".join(scopes)))
    await session.flush()
    return key


async def find_api_key(session: AsyncSession, key: str) -> ApiKey | None:
    """The active key row for a presented key, if any."""
    row = (await session.execute(select(ApiKey).where(ApiKey.key_hash == auth.hash_key(key)))).scalar_one_or_none()
    return row if row is not None and row.revoked_at is None else None


async def list_api_keys(session: AsyncSession) -> list[ApiKey]:
    """All keys, oldest first (no secrets: only prefixes)."""
    return list((await session.execute(select(ApiKey).order_by(ApiKey.id))).scalars())


async def revoke_api_key(session: AsyncSession, ref: str) -> ApiKey | None:
    """Revoke a key by its prefix or name; returns it, or None if there is no such active key."""
    rows = (
        (
            await session.execute(
                select(ApiKey).where(((ApiKey.prefix == ref) | (ApiKey.name == ref)) & ApiKey.revoked_at.is_(None))
            )
        )
        .scalars()
        .all()
    )
    if len(rows) != 1:
        return None
    rows[0].revoked_at = utcnow()
    return rows[0]


def as_utc_iso(value: datetime | None) -> str | None:
    """ISO-8601 text of a timestamp (SQLite returns naive datetimes in UTC)."""
    if value is None:
        return None
    return value.isoformat() if value.tzinfo else value.isoformat() + "+00:00"

"""Store imported labels: match or create their pairs, insert labels idempotently, refresh pair results."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from judge_service.contract.validation import name_problem
from judge_service.engine.keys import pair_content_hash, texts_hash
from judge_service.labels.parse import NULL_PREFERENCE, LabelRecord, ParseResult
from judge_service.store import repo
from judge_service.store.experiments import ExperimentConflictError, ensure_experiment
from judge_service.store.models import Experiment, Label, Pair, utcnow
from judge_service.store.results import SetKey, refresh_label_pair, result_set_id

RESERVED_SOURCES = {"judge"}


class LabelImportError(ValueError):
    """An import refused as a whole; `loc` names the line or field."""

    def __init__(self, loc: list[str | int], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


@dataclass
class ImportSummary:
    """What an import did."""

    experiment: str
    source: str
    records: int = 0
    inserted: int = 0
    already_present: int = 0
    pairs_created: int = 0
    pairs_labelled: int = 0
    draws: int = 0  # records that are draws (AlpacaEval preference 0 or 1.5), counted as half a win
    nulls_dropped: int = 0  # entries skipped because their preference was null (listed in `dropped`)
    dropped: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return dict(self.__dict__)


async def experiment_for_import(
    session: AsyncSession, ref: str, parsed: ParseResult, base_model: str | None = None, ft_model: str | None = None
) -> Experiment:
    """The named experiment; created when it does not exist yet from `base_model`/`ft_model` when given
    (an existing one must have those models), else from the generators named in the file."""
    if base_model is not None and ft_model is not None:
        problem = name_problem(ref)
        if problem:
            raise LabelImportError(["path", "experiment"], f"cannot create experiment {ref!r}: name {problem}")
        try:
            exp, _ = await ensure_experiment(session, ref, base_model, ft_model, {"created_by": "labels import"})
        except ExperimentConflictError as exc:
            raise LabelImportError(["path", "experiment"], str(exc)) from exc
        return exp
    found = await repo.get_experiment(session, ref)
    if found is not None:
        return found
    bases = {r.generator_base for r in parsed.records if r.generator_base}
    fts = {r.generator_ft for r in parsed.records if r.generator_ft}
    if len(bases) == 1 and len(fts) == 1:
        # The same rule as an experiment created by `POST /judge/pairwise`.
        problem = name_problem(ref)
        if problem:
            raise LabelImportError(["path", "experiment"], f"cannot create experiment {ref!r}: name {problem}")
        return await repo.get_or_create_experiment(
            session, ref, bases.pop(), fts.pop(), {"created_by": "labels import"}
        )
    raise LabelImportError(
        ["experiment"],
        f"no experiment {ref!r} (and the file does not name one Base and one FT; "
        "create it first, or give its Base and FT models)",
    )


def _label_key(experiment_id: int, source: str, annotator: str, pair_id: int, dimension: str, occurrence: int) -> str:
    body = json.dumps([experiment_id, source, annotator, pair_id, dimension, occurrence])
    return hashlib.sha256(body.encode()).hexdigest()


async def _resolve_pairs(
    session: AsyncSession, experiment: Experiment, records: list[LabelRecord]
) -> tuple[list[int], int]:
    """Pair id for each record, creating pairs for records that carry texts; returns (ids, created)."""
    by_external: dict[str, int] = {}
    external = sorted({r.pair_id for r in records if r.pair_id})
    for start in range(0, len(external), 5000):
        rows = await session.execute(
            select(Pair.external_id, Pair.id).where(
                Pair.experiment_id == experiment.id, Pair.external_id.in_(external[start : start + 5000])
            )
        )
        by_external.update({e: int(i) for e, i in rows.all()})
    hashes = sorted(
        {
            texts_hash(r.prompt, r.base_output, r.ft_output)
            for r in records
            if r.prompt is not None and r.base_output is not None and r.ft_output is not None
        }
    )
    by_hash: dict[str, int] = {}
    for start in range(0, len(hashes), 5000):
        rows = await session.execute(
            select(Pair.texts_hash, Pair.id)
            .where(Pair.experiment_id == experiment.id, Pair.texts_hash.in_(hashes[start : start + 5000]))
            .order_by(Pair.id)
        )
        for digest, pair_id in rows.all():
            by_hash.setdefault(str(digest), int(pair_id))
    new_rows: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.pair_id and record.pair_id in by_external:
            continue
        if record.prompt is None or record.base_output is None or record.ft_output is None:
            raise LabelImportError(
                ["line", record.line], f"line {record.line}: pair {record.pair_id!r} is not in {experiment.name!r}"
            )
        digest = texts_hash(record.prompt, record.base_output, record.ft_output)
        if not record.pair_id and digest in by_hash:
            continue
        external_id = record.pair_id or f"h-{digest[:20]}"
        new_rows.setdefault(
            external_id,
            {
                "external_id": external_id,
                "prompt": record.prompt,
                "base_output": record.base_output,
                "ft_output": record.ft_output,
                "reference": None,
                "tags": {},
                "meta": {"imported": True},
                "content_hash": pair_content_hash(record.prompt, record.base_output, record.ft_output, None),
                "texts_hash": digest,
            },
        )
    if new_rows:
        pairs, conflicts = await repo.upsert_pairs(session, experiment.id, list(new_rows.values()))
        if conflicts:
            raise LabelImportError(["pair_id"], f"pair {conflicts[0].external_id!r} exists with different texts")
        for pair in pairs:
            by_external[pair.external_id] = pair.id
            if pair.texts_hash:
                by_hash.setdefault(pair.texts_hash, pair.id)
    ids = []
    for record in records:
        if record.pair_id:
            ids.append(by_external[record.pair_id])
        else:
            assert record.prompt is not None and record.base_output is not None and record.ft_output is not None
            ids.append(by_hash[texts_hash(record.prompt, record.base_output, record.ft_output)])
    return ids, len(new_rows)


async def check_annotators(
    session: AsyncSession, experiment: Experiment, source: str, parsed: ParseResult, limit: int
) -> None:
    """Refuse an import that would give the experiment more than `limit` annotators (source, annotator).

    The agreement report compares annotators pairwise, so their number bounds its cost.
    """
    incoming = {r.annotator for r in parsed.records}
    if len(incoming) > limit:
        raise LabelImportError(
            ["records"],
            f"{len(incoming)} annotators in one upload; the limit is {limit} per experiment (JUDGE_MAX_ANNOTATORS)",
        )
    stored = (
        await session.execute(
            select(Label.source, Label.annotator).where(Label.experiment_id == experiment.id).distinct()
        )
    ).all()
    known = {(str(src), str(name)) for src, name in stored}
    total = len(known | {(source, a) for a in incoming})
    if total > limit:
        raise LabelImportError(
            ["records"],
            f"the experiment would have {total} annotators; the limit is {limit} per experiment (JUDGE_MAX_ANNOTATORS)",
        )


async def import_labels(
    session: AsyncSession, experiment: Experiment, source: str, parsed: ParseResult, max_annotators: int | None = None
) -> ImportSummary:
    """Insert the parsed labels (a re-import of the same file adds nothing) and refresh pair results."""
    if source in RESERVED_SOURCES:
        raise LabelImportError(["source"], f"source name {source!r} is reserved for the service's own judge")
    if max_annotators is not None:
        await check_annotators(session, experiment, source, parsed, max_annotators)
    for record in parsed.records:
        for name, value, limit in (
            ("annotator", record.annotator, 200),
            ("pair_id", record.pair_id, 200),
            ("dimension", record.dimension, 24),
        ):
            if value is not None and len(value) > limit:
                raise LabelImportError(["line", record.line], f"line {record.line}: {name} is longer than {limit}")
    summary = ImportSummary(experiment.name, source, records=len(parsed.records))
    summary.dropped = [{"line": line, "reason": reason} for line, reason in parsed.dropped]
    summary.nulls_dropped = sum(reason == NULL_PREFERENCE for _, reason in parsed.dropped)
    summary.draws = parsed.draws
    pair_ids, summary.pairs_created = await _resolve_pairs(session, experiment, parsed.records)
    occurrences: Counter[tuple[str, int, str]] = Counter()
    rows = []
    for record, pair_id in zip(parsed.records, pair_ids, strict=True):
        dimension = record.dimension or ""
        occurrence = occurrences[(record.annotator, pair_id, dimension)]
        occurrences[(record.annotator, pair_id, dimension)] += 1
        rows.append(
            {
                "key": _label_key(experiment.id, source, record.annotator, pair_id, dimension, occurrence),
                "experiment_id": experiment.id,
                "pair_id": pair_id,
                "source": source,
                "annotator": record.annotator,
                "dimension": dimension,
                "s_ft": record.s_ft,
                "created_at": utcnow(),
            }
        )
    keys = [r["key"] for r in rows]
    existing: set[str] = set()
    for start in range(0, len(keys), 5000):
        found = await session.execute(select(Label.key).where(Label.key.in_(keys[start : start + 5000])))
        existing.update(found.scalars())
    await repo.insert_ignore(session, Label, rows, ["key"])
    summary.already_present = len(existing)
    summary.inserted = len(rows) - len(existing)
    set_id = await result_set_id(session, SetKey(experiment.id, source=source, mode="label", purpose="judge"))
    touched = sorted(set(pair_ids))
    for pair_id in touched:
        await refresh_label_pair(session, set_id, experiment.id, source, pair_id)
    summary.pairs_labelled = len(touched)
    return summary

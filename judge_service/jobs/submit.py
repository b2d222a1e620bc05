"""Accept a pairwise submission: validate everything first, then store pairs and a run in one transaction.

Acceptance does no per-item work against the judge: an asynchronous submission of 10,000 pairs is
bulk-inserted and answered at once, and prompt tokens are counted later, in the batches (a pair
too long for the judge becomes a failed judgment with the reason). The synchronous path still
counts them first, so a small request can be refused with a 422 naming the item.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from judge_service.contract.judging import GENERATION_FIELDS, GenerationSettings, PairItem, PairwiseRequest
from judge_service.engine.client import JudgeUnavailableError
from judge_service.engine.keys import pair_content_hash, texts_hash
from judge_service.jobs.context import JobContext
from judge_service.jobs.runs import JudgingPlan, RunRequest, create_run, start_run
from judge_service.rubrics.registry import RubricChangedError, RubricError, RubricVersion, UnknownRubricError
from judge_service.rubrics.render import ORDERS, render_pair
from judge_service.store import repo
from judge_service.store.models import Run, utcnow

_STARTING: set[asyncio.Task[None]] = set()  # strong references to runs being handed to the executor


class SubmitError(Exception):
    """A submission refused before anything was stored; `loc` names the offending field."""

    def __init__(self, status: int, loc: list[str | int], message: str) -> None:
        super().__init__(message)
        self.status = status
        self.loc = loc
        self.message = message


@dataclass(frozen=True)
class Submitted:
    """Where a submission went: its run, and whether it is answered synchronously."""

    run_id: str
    synchronous: bool
    replayed: bool


def tag_texts(tags: dict[str, Any]) -> dict[str, str | None]:
    """Tags are stored as text so filters and slices read the same on SQLite and PostgreSQL."""
    out: dict[str, str | None] = {}
    for key, value in tags.items():
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        else:
            out[key] = None if value is None else str(value)
    return out


def _merged(experiment: dict[str, Any] | None, item: GenerationSettings | None) -> dict[str, Any] | None:
    """One side's settings for an item: the experiment's fields, overridden by the item's; None when neither."""
    if experiment is None and item is None:
        return None
    merged = {**(experiment or {}), **(item.stored() if item else {})}
    return {name: merged[name] for name in GENERATION_FIELDS if name in merged}


def item_generation(base: dict[str, Any] | None, ft: dict[str, Any] | None, item: PairItem) -> dict[str, Any] | None:
    """The stored `generation` of a pair: both sides' settings, or None when neither side has any.

    `base`/`ft` are the experiment's *stored* settings, not the request's: a later submission that
    leaves them out still gives its pairs the experiment's settings (and a re-sent pair its old hash).
    """
    merged_base, merged_ft = _merged(base, item.base_generation), _merged(ft, item.ft_generation)
    return None if merged_base is None and merged_ft is None else {"base": merged_base, "ft": merged_ft}


def stored_content_hash(item: PairItem, generation: dict[str, Any] | None) -> str:
    """Identity of a stored pair: its texts, and its generation settings when any were sent.

    Without settings the hash is the one pairs always had, so pairs stored before settings existed
    still match a re-send without them; settings that differ from the stored ones are a conflict (409).
    """
    digest = pair_content_hash(item.prompt, item.base_output, item.ft_output, item.reference)
    if generation is None:
        return digest
    body = json.dumps([digest, generation], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def request_hash(request: PairwiseRequest) -> str:
    """Hash of the request body, to tell an idempotent retry from a reused key."""
    return hashlib.sha256(request.model_dump_json(by_alias=True).encode()).hexdigest()


def _is_sync(ctx: JobContext, request: PairwiseRequest) -> bool:
    return not request.run_async and len(request.items) <= ctx.settings.sync_max_items


def _validate_items(ctx: JobContext, request: PairwiseRequest) -> None:
    limit = ctx.settings.max_text_chars
    if len(request.items) > ctx.settings.max_items:
        raise SubmitError(413, ["body", "items"], f"at most {ctx.settings.max_items} items per request")
    seen: dict[str, int] = {}
    for index, item in enumerate(request.items):
        if item.id in seen:
            raise SubmitError(
                422, ["body", "items", index, "id"], f"duplicate id {item.id!r} (also items[{seen[item.id]}])"
            )
        seen[item.id] = index
        for field in ("prompt", "base_output", "ft_output", "reference"):
            text = getattr(item, field)
            if text is not None and len(text) > limit:
                raise SubmitError(
                    413,
                    ["body", "items", index, field],
                    f"{len(text)} characters; the limit is {limit} (JUDGE_MAX_TEXT_CHARS)",
                )


async def _check_context(ctx: JobContext, request: PairwiseRequest, version: RubricVersion, max_len: int) -> None:
    """Refuse items whose rendered prompt plus the reply budget would not fit the judge's context."""
    reply_budget = ctx.settings.max_tokens if request.options.mode == "reasoned" else 4
    budget = max_len - reply_budget
    limit = asyncio.Semaphore(8)

    async def count(index: int) -> tuple[int, int | None]:
        item = request.items[index]
        messages = render_pair(
            version,
            "base_first",  # both orders hold the same texts, so the same token count
            prompt=item.prompt,
            base_output=item.base_output,
            ft_output=item.ft_output,
            reference=item.reference,
            mode=request.options.mode,
        )
        async with limit:
            return index, await ctx.client.count_tokens(messages)

    for index, tokens in await asyncio.gather(*(count(i) for i in range(len(request.items)))):
        if tokens is not None and tokens > budget:
            raise SubmitError(
                422,
                ["body", "items", index],
                f"item {request.items[index].id!r}: the rendered judge prompt is {tokens} tokens; with "
                f"{reply_budget} reserved for the verdict it exceeds the judge context of {max_len} tokens",
            )


async def submit(ctx: JobContext, request: PairwiseRequest, key_scope: str, idempotency_key: str | None) -> Submitted:
    """Validate, then store pairs, pending judgments and a run in one transaction."""
    digest = request_hash(request)
    scoped_key = f"{key_scope}:{idempotency_key}" if idempotency_key else None
    if scoped_key:
        async with ctx.sessions() as session:
            existing = (
                await session.execute(select(Run).where(Run.idempotency_key == scoped_key))
            ).scalar_one_or_none()
        if existing is not None:
            if existing.request_hash != digest:
                raise SubmitError(
                    422, ["header", "Idempotency-Key"], "this key was already used with a different request body"
                )
            return Submitted(existing.id, _is_sync(ctx, request), replayed=True)
    try:
        version = await ctx.registry.resolve(request.rubric)
    except UnknownRubricError as exc:
        raise SubmitError(422, ["body", "rubric"], str(exc)) from exc
    except RubricChangedError as exc:
        raise SubmitError(409, ["body", "rubric"], str(exc)) from exc
    except RubricError as exc:
        raise SubmitError(422, ["body", "rubric"], str(exc)) from exc
    _validate_items(ctx, request)
    try:
        fingerprint = await ctx.client.fingerprint()
        info = await ctx.client.check()
    except JudgeUnavailableError as exc:
        raise SubmitError(503, ["judge"], str(exc)) from exc

    synchronous = _is_sync(ctx, request)
    if info.max_model_len and synchronous:
        try:
            await _check_context(ctx, request, version, info.max_model_len)
        except JudgeUnavailableError as exc:
            raise SubmitError(503, ["judge"], str(exc)) from exc

    spec = request.experiment
    orders = ORDERS if request.options.swap else ORDERS[:1]
    now = utcnow()
    owner, lease = ctx.executor.new_batch_claim(now)
    try:
        async with ctx.sessions() as session, session.begin():
            metadata = dict(spec.metadata)
            if spec.default_repeats:
                metadata["default_repeats"] = spec.default_repeats
            experiment = await repo.get_or_create_experiment(
                session, spec.name, spec.base_model, spec.ft_model, metadata
            )
            repeats = request.options.repeats or int(experiment.meta.get("default_repeats") or 1)
            margin = request.options.tie_margin
            if margin is not None and experiment.meta.get("tie_margin") != margin:
                # The experiment's own tie margin (docs/statistics.md): reports read it back from here.
                experiment.meta = {**experiment.meta, "tie_margin": margin}
            for field in ("base_model", "ft_model"):
                if getattr(experiment, field) != getattr(spec, field):
                    raise SubmitError(
                        409,
                        ["body", "experiment", field],
                        f"experiment {spec.name!r} was created with {field}={getattr(experiment, field)!r}; "
                        "use a new experiment name for another model",
                    )
            for side in ("base_generation", "ft_generation"):
                sent = getattr(spec, side)
                if sent is None:
                    continue
                stored = getattr(experiment, side)
                if stored is None:
                    setattr(experiment, side, sent.stored())  # first use, like the experiment itself
                elif stored != sent.stored():
                    raise SubmitError(
                        409,
                        ["body", "experiment", side],
                        f"experiment {spec.name!r} was given {side}={stored!r}; per-item settings may differ, "
                        "the experiment's may not",
                    )
            try:
                rubric_row = await repo.record_rubric_version(session, version)
            except ValueError as exc:
                raise SubmitError(409, ["body", "rubric"], str(exc)) from exc
            fp_row = await repo.record_fingerprint(session, fingerprint)
            rows: list[dict[str, Any]] = [
                {
                    "external_id": item.id,
                    "prompt": item.prompt,
                    "base_output": item.base_output,
                    "ft_output": item.ft_output,
                    "reference": item.reference,
                    "tags": tag_texts(item.tags),
                    "meta": item.metadata,
                    "content_hash": stored_content_hash(item, generation),
                    "texts_hash": texts_hash(item.prompt, item.base_output, item.ft_output),
                    "generation": generation,
                }
                for item, generation in (
                    (item, item_generation(experiment.base_generation, experiment.ft_generation, item))
                    for item in request.items
                )
            ]
            if not experiment.has_pair_generation and any(r["generation"] is not None for r in rows):
                experiment.has_pair_generation = True
            pair_ids, conflicts = await repo.upsert_pair_ids(session, experiment.id, rows)
            if conflicts:
                first = conflicts[0]
                raise SubmitError(
                    409,
                    ["body", "items", first.index, "id"],
                    f"pair {first.external_id!r} already exists in experiment {spec.name!r} with different texts "
                    "or generation settings; stored pairs are immutable, send it under a new id",
                )
            new_run = await create_run(
                session,
                RunRequest(
                    experiment_id=experiment.id,
                    pair_ids=pair_ids,
                    plan=JudgingPlan(
                        rubric_hash=version.content_hash,
                        fingerprint_hash=fingerprint.hash,
                        rubric_version_id=rubric_row.id,
                        fingerprint_id=fp_row.id,
                        mode=request.options.mode,
                        orders=orders,
                        repeats=repeats,
                        base_seed=ctx.settings.seed,
                    ),
                    options=request.options.model_dump(),
                    batch_size=ctx.settings.batch_size,
                    retry_failed=request.options.retry_failed,
                    idempotency_key=scoped_key,
                    request_hash=digest,
                    batch_owner=owner,
                    batch_lease=lease,
                ),
            )
    except IntegrityError as exc:
        # Two requests with one Idempotency-Key raced; the other one won and holds the run.
        if scoped_key:
            async with ctx.sessions() as session:
                existing = (
                    await session.execute(select(Run).where(Run.idempotency_key == scoped_key))
                ).scalar_one_or_none()
            if existing is not None:
                if existing.request_hash != digest:
                    raise SubmitError(
                        422, ["header", "Idempotency-Key"], "this key was already used with a different request body"
                    ) from exc
                return Submitted(existing.id, _is_sync(ctx, request), replayed=True)
        raise SubmitError(409, ["body"], f"conflicting concurrent write: {exc.orig}") from exc
    if synchronous:
        await start_run(ctx, new_run)
    else:
        # The 202 does not wait for the queue: the batches are stored, and if this task is lost
        # with the process, the reaper queues them after one lease.
        task = asyncio.create_task(start_run(ctx, new_run), name=f"start-{new_run.run_id}")
        _STARTING.add(task)
        task.add_done_callback(_STARTING.discard)
    return Submitted(new_run.run_id, synchronous, replayed=False)

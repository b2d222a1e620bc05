"""`GET /reports/*`: win rates, failure cases, checkpoints, Bradley–Terry and agreement."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query

from judge_service.api.deps import Caller, Context, Session, require
from judge_service.reports import compare, failures
from judge_service.reports.consistency import consistency_report
from judge_service.reports.rejudge import rejudge_report
from judge_service.reports.winrate import win_rate_report
from judge_service.stats.pairs import tie_margin_of
from judge_service.store import repo
from judge_service.store.aggregate import PairFilter
from judge_service.store.models import Experiment

router = APIRouter(prefix="/reports", tags=["reports"])
Reader = Annotated[Caller, Depends(require("read"))]


def _pairs(values: list[str], name: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, wanted = value.partition(":")
        if not sep or not key:
            raise HTTPException(
                422, [{"loc": ["query", name], "msg": f"expected KEY:VALUE, got {value!r}", "type": "value_error"}]
            )
        out[key] = wanted
    return out


def pair_filter(
    tag: Annotated[list[str], Query(description="Tag filter KEY:VALUE (repeatable).")] = [],  # noqa: B006
    meta: Annotated[list[str], Query(description="Metadata filter KEY:VALUE (repeatable).")] = [],  # noqa: B006
    since: Annotated[datetime | None, Query(description="Judged at or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Judged before (ISO 8601).")] = None,
) -> PairFilter:
    """Pair filters shared by the reports."""
    return PairFilter(_pairs(tag, "tag"), _pairs(meta, "meta"), _utc(since), _utc(until))


def _utc(value: datetime | None) -> datetime | None:
    # SQLite compares timestamps as text: both sides must be UTC (naive input is taken as UTC).
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Filter = Annotated[PairFilter, Depends(pair_filter)]


async def experiment_or_404(session: Session, ref: str) -> Experiment:
    """Resolve an experiment by name or id."""
    found = await repo.get_experiment(session, ref)
    if found is None:
        raise HTTPException(
            404, [{"loc": ["query", "experiment"], "msg": f"no experiment {ref!r}", "type": "not_found"}]
        )
    return found


@router.get("/win-rate")
async def win_rate(
    session: Session,
    ctx: Context,
    _: Reader,
    flt: Filter,
    experiment: Annotated[str, Query(description="Experiment name or id.")],
    source: Annotated[str, Query(description="'judge' or an imported label source.")] = "judge",
    rubric: Annotated[str | None, Query(description="name or name@vN; default the newest used.")] = None,
    judge: Annotated[str | None, Query(description="Judge fingerprint (prefix); default the newest used.")] = None,
    mode: Annotated[str | None, Query(description="reasoned or fast; default the newest used.")] = None,
    group_by: Annotated[str | None, Query(description="Tag or metadata key to slice by.")] = None,
    tie_margin: Annotated[
        float | None,
        Query(ge=0, lt=0.5, description="Win/loss only beyond 0.5 ± this; default the experiment's, else the setting."),
    ] = None,
) -> dict[str, Any]:
    """FT's win rate over Base: conclusion, warnings, CI, decisive pairs, consistency, lengths, per dimension."""
    exp = await experiment_or_404(session, experiment)
    return await win_rate_report(
        session,
        exp,
        source=source,
        rubric=rubric,
        judge=judge,
        mode=mode,
        flt=flt,
        group_by=group_by,
        tie_margin=tie_margin,
        default_tie_margin=ctx.settings.tie_margin,
        min_decisive_pairs=ctx.settings.min_decisive_pairs,
    )


@router.get("/failures")
async def failure_cases(
    session: Session,
    ctx: Context,
    _: Reader,
    flt: Filter,
    experiment: Annotated[str, Query(description="Experiment name or id.")],
    rubric: Annotated[str | None, Query()] = None,
    judge: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    kind: Annotated[
        Literal["losses", "incomplete"],
        Query(description="losses: FT's clearest losses; incomplete: pairs missing a valid judgment in an order."),
    ] = "losses",
) -> dict[str, Any]:
    """The pairs FT lost most clearly (or the incomplete pairs), with answers and rationales, and failure tags."""
    exp = await experiment_or_404(session, experiment)
    margin = tie_margin_of(exp.meta, ctx.settings.tie_margin)
    return await failures.failure_report(
        session, exp, rubric=rubric, judge=judge, flt=flt, limit=limit, kind=kind, tie_margin=margin
    )


@router.get("/checkpoints")
async def checkpoints(
    session: Session,
    ctx: Context,
    _: Reader,
    series: Annotated[str, Query(description="Experiment metadata 'series' shared by the checkpoints.")],
    rubric: Annotated[str | None, Query()] = None,
    mode: Annotated[str, Query(description="reasoned or fast: one mode for every checkpoint.")] = "reasoned",
) -> dict[str, Any]:
    """Win rate per checkpoint of a series, ordered by the experiments' metadata 'step'."""
    return await compare.checkpoint_report(
        session,
        series,
        rubric=rubric,
        mode=mode,
        default_tie_margin=ctx.settings.tie_margin,
        min_decisive_pairs=ctx.settings.min_decisive_pairs,
    )


@router.get("/bradley-terry")
async def bradley_terry(
    session: Session,
    _: Reader,
    experiments: Annotated[str | None, Query(description="Comma-separated experiment names or ids.")] = None,
    series: Annotated[str | None, Query(description="Or every experiment of a series.")] = None,
    rubric: Annotated[str | None, Query()] = None,
    mode: Annotated[str, Query(description="reasoned or fast: one mode for every experiment.")] = "reasoned",
) -> dict[str, Any]:
    """Bradley–Terry strengths (Elo scale) with bootstrap CIs over models compared on shared prompts."""
    return await compare.bradley_terry_report(session, experiments, series, rubric=rubric, mode=mode)


@router.get("/agreement")
async def agreement(
    session: Session,
    _: Reader,
    experiment: Annotated[str, Query(description="Experiment name or id.")],
    rubric: Annotated[str | None, Query()] = None,
    judge: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """The service's judge against imported labels, and annotators against each other."""
    exp = await experiment_or_404(session, experiment)
    return await compare.agreement_report(session, exp, rubric=rubric, judge=judge)


@router.get("/consistency")
async def consistency(
    session: Session,
    _: Reader,
    experiment: Annotated[str, Query(description="Experiment name or id.")],
    rubric: Annotated[str | None, Query()] = None,
    judge: Annotated[str | None, Query()] = None,
    mode: Annotated[str | None, Query()] = None,
    top: Annotated[int, Query(ge=1, le=200)] = 10,
) -> dict[str, Any]:
    """Position consistency and bias, repeat agreement, Fleiss' κ across repeats, score spread, flips."""
    exp = await experiment_or_404(session, experiment)
    return await consistency_report(session, exp, rubric=rubric, judge=judge, mode=mode, top=top)


@router.get("/rejudge")
async def rejudge(
    session: Session, ctx: Context, _: Reader, experiment: Annotated[str, Query(description="Experiment name or id.")]
) -> dict[str, Any]:
    """Re-judge runs over time: test–retest agreement, κ, win-rate drift with CIs, fingerprints, alerts."""
    exp = await experiment_or_404(session, experiment)
    return await rejudge_report(session, exp, ctx.settings.rejudge_min_agreement)

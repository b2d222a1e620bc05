"""`GET /reports/*`: win rates, failure cases, checkpoints, Bradley–Terry and agreement."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query

from judge_service.api.deps import Caller, Context, Session, require
from judge_service.contract.reports import (
    AgreementReport,
    BradleyTerryReport,
    CheckpointsReport,
    ConsistencyReport,
    FailuresReport,
    RejudgeReport,
    WinRateReport,
)
from judge_service.contract.validation import ExperimentRef, QueryValue, RubricRef, UtcDatetime
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
MAX_FILTERS = 20  # tag= and meta= values per request
# Query parameters shared by the reports, validated by the rules of contract/validation.py.
Ref = Annotated[ExperimentRef, Query(description="Experiment name or id.")]
Rubric = Annotated[RubricRef | None, Query(description="name or name@vN; default the newest used.")]
Judge = Annotated[QueryValue | None, Query(description="Judge fingerprint (prefix); default the newest used.")]
Mode = Annotated[QueryValue | None, Query(description="reasoned or fast; default the newest used.")]


def _pairs(values: list[str], name: str) -> dict[str, str]:
    out = {}
    if len(values) > MAX_FILTERS:
        raise HTTPException(
            422, [{"loc": ["query", name], "msg": f"at most {MAX_FILTERS} {name} filters", "type": "too_long"}]
        )
    for value in values:
        key, sep, wanted = value.partition(":")
        if not sep or not key or '"' in key or "\\" in key:
            raise HTTPException(
                422,
                [
                    {
                        "loc": ["query", name],
                        "msg": f"expected KEY:VALUE (KEY without quotes or backslashes), got {value!r}",
                        "type": "value_error",
                    }
                ],
            )
        out[key] = wanted
    return out


def pair_filter(
    tag: Annotated[list[QueryValue], Query(description="Tag filter KEY:VALUE (repeatable).")] = [],  # noqa: B006
    meta: Annotated[list[QueryValue], Query(description="Metadata filter KEY:VALUE (repeatable).")] = [],  # noqa: B006
    since: Annotated[UtcDatetime | None, Query(description="Judged at or after (ISO 8601).")] = None,
    until: Annotated[UtcDatetime | None, Query(description="Judged before (ISO 8601).")] = None,
    exclude: Annotated[
        list[Literal["overlap"]],
        Query(description="overlap: leave out pairs flagged by the experiment's latest eval/train overlap check."),
    ] = [],  # noqa: B006
) -> PairFilter:
    """Pair filters shared by the reports (datetimes in UTC: SQLite compares timestamps as text)."""
    return PairFilter(_pairs(tag, "tag"), _pairs(meta, "meta"), since, until, exclude_overlap="overlap" in exclude)


Filter = Annotated[PairFilter, Depends(pair_filter)]


async def experiment_or_404(session: Session, ref: ExperimentRef) -> Experiment:
    """Resolve an experiment by name or id."""
    found = await repo.get_experiment(session, ref)
    if found is None:
        raise HTTPException(
            404, [{"loc": ["query", "experiment"], "msg": f"no experiment {ref!r}", "type": "not_found"}]
        )
    return found


@router.get("/win-rate", response_model=WinRateReport)
async def win_rate(
    session: Session,
    ctx: Context,
    _: Reader,
    flt: Filter,
    experiment: Ref,
    source: Annotated[QueryValue, Query(description="'judge' or an imported label source.")] = "judge",
    rubric: Rubric = None,
    judge: Judge = None,
    mode: Mode = None,
    group_by: Annotated[
        QueryValue | None, Query(description="Tag or metadata key to slice by (no quotes or backslashes).")
    ] = None,
    tie_margin: Annotated[
        float | None,
        Query(ge=0, lt=0.5, description="Win/loss only beyond 0.5 ± this; default the experiment's, else the setting."),
    ] = None,
) -> dict[str, Any]:
    """FT's win rate over Base: conclusion, warnings, CI, decisive pairs, consistency, lengths, per dimension."""
    if group_by is not None and ('"' in group_by or "\\" in group_by or not group_by):
        msg = "a tag or metadata key without quotes or backslashes"
        raise HTTPException(422, [{"loc": ["query", "group_by"], "msg": msg, "type": "value_error"}])
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


@router.get("/failures", response_model=FailuresReport, response_model_exclude_unset=True)
async def failure_cases(
    session: Session,
    ctx: Context,
    _: Reader,
    flt: Filter,
    experiment: Ref,
    rubric: Rubric = None,
    judge: Judge = None,
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


@router.get("/checkpoints", response_model=CheckpointsReport)
async def checkpoints(
    session: Session,
    ctx: Context,
    _: Reader,
    series: Annotated[QueryValue, Query(description="Experiment metadata 'series' shared by the checkpoints.")],
    rubric: Rubric = None,
    mode: Annotated[QueryValue, Query(description="reasoned or fast: one mode for every checkpoint.")] = "reasoned",
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


@router.get("/bradley-terry", response_model=BradleyTerryReport)
async def bradley_terry(
    session: Session,
    _: Reader,
    experiments: Annotated[QueryValue | None, Query(description="Comma-separated experiment names or ids.")] = None,
    series: Annotated[QueryValue | None, Query(description="Or every experiment of a series.")] = None,
    rubric: Rubric = None,
    mode: Annotated[QueryValue, Query(description="reasoned or fast: one mode for every experiment.")] = "reasoned",
) -> dict[str, Any]:
    """Bradley–Terry strengths (Elo scale) with bootstrap CIs over models compared on shared prompts."""
    return await compare.bradley_terry_report(session, experiments, series, rubric=rubric, mode=mode)


@router.get("/agreement", response_model=AgreementReport)
async def agreement(
    session: Session,
    _: Reader,
    experiment: Ref,
    rubric: Rubric = None,
    judge: Judge = None,
) -> dict[str, Any]:
    """The service's judge against imported labels, and annotators against each other."""
    exp = await experiment_or_404(session, experiment)
    return await compare.agreement_report(session, exp, rubric=rubric, judge=judge)


@router.get("/consistency", response_model=ConsistencyReport)
async def consistency(
    session: Session,
    _: Reader,
    experiment: Ref,
    rubric: Rubric = None,
    judge: Judge = None,
    mode: Mode = None,
    top: Annotated[int, Query(ge=1, le=200)] = 10,
) -> dict[str, Any]:
    """Position consistency and bias, repeat agreement, Fleiss' κ across repeats, score spread, flips."""
    exp = await experiment_or_404(session, experiment)
    return await consistency_report(session, exp, rubric=rubric, judge=judge, mode=mode, top=top)


@router.get("/rejudge", response_model=RejudgeReport, response_model_exclude_unset=True)
async def rejudge(session: Session, ctx: Context, _: Reader, experiment: Ref) -> dict[str, Any]:
    """Re-judge runs over time: test–retest agreement, κ, win-rate drift with CIs, fingerprints, alerts."""
    exp = await experiment_or_404(session, experiment)
    return await rejudge_report(session, exp, ctx.settings.rejudge_min_agreement)

"""`judge-service labeling ...`: create tasks, export/import rater spreadsheets, print results."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from judge_service.config import get_settings
from judge_service.ui import make_console

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from judge_service.rubrics.registry import RubricVersion

T = TypeVar("T")
app = typer.Typer(help="Blind labelling tasks for people (see /label).", no_args_is_help=True)
console = make_console()


def _run(action: Callable[[AsyncSession], Awaitable[T]]) -> T:
    from judge_service.labeling.tasks import LabelingError
    from judge_service.store import db

    try:
        return asyncio.run(db.in_transaction(get_settings().database_url, action))
    except LabelingError as exc:
        console.print(f"[red]{exc.message}[/red]")
        for problem in exc.problems:
            console.print(
                f"  row {problem['row']} column {problem['column']} ({problem['header']}): {problem['message']}"
            )
        raise typer.Exit(2) from exc


def fmt(value: float | None) -> str:
    """Three decimals, or a dash for an undefined statistic."""
    return "—" if value is None else f"{value:.3f}"


async def _rubric(session: AsyncSession, ref: str) -> RubricVersion:
    """A built-in rubric version or one added at run time (`judge-service rubrics add`)."""
    from judge_service.labeling.tasks import LabelingError
    from judge_service.rubrics.registry import RubricError
    from judge_service.store.rubric_store import resolve_in_session

    settings = get_settings()
    try:
        return await resolve_in_session(session, settings.rubrics_dir, settings.prompts_dir, ref)
    except RubricError as exc:
        raise LabelingError(422, str(exc)) from exc


@app.command("create")
def create(
    experiment: Annotated[str, typer.Option(help="Experiment name or id.")],
    raters: Annotated[str, typer.Option(help="Comma-separated rater names (= their label keys' names).")],
    per_pair: Annotated[int, typer.Option(min=1, max=5, help="Raters per pair.")] = 2,
    sample: Annotated[str, typer.Option(help="all, random or stratified.")] = "all",
    n: Annotated[int | None, typer.Option(min=1, help="Pairs to sample (random, stratified).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sample and of every blind order.")] = 0,
    hard_share: Annotated[float, typer.Option(min=0.0, max=1.0, help="Stratified: share for hard pairs.")] = 0.5,
    rubric: Annotated[str, typer.Option(help="Rubric raters score with.")] = "human_review",
    name: Annotated[str | None, typer.Option(help="Task name (default: generated).")] = None,
    source: Annotated[str, typer.Option(help="Label source the submissions land in.")] = "human",
    issue_keys: Annotated[bool, typer.Option("--issue-keys", help="Create a `label` key per rater.")] = False,
) -> None:
    """Create a task; with --issue-keys each rater's key is printed once."""
    from judge_service.labeling.tasks import TaskSpec, create_task, progress, task_summary
    from judge_service.store.models import Experiment

    if sample not in ("all", "random", "stratified"):
        raise typer.BadParameter("must be all, random or stratified", param_hint="--sample")
    names = [r.strip() for r in raters.split(",") if r.strip()]
    spec = TaskSpec(experiment, names, per_pair, rubric, sample, n, seed, hard_share, name, source, issue_keys)  # type: ignore[arg-type]

    async def run(session: AsyncSession) -> dict[str, Any]:
        task = await create_task(session, spec, await _rubric(session, rubric))
        exp = await session.get(Experiment, task.experiment_id)
        assert exp is not None
        return task_summary(task, exp, await progress(session, task.id))

    console.print_json(data=_run(run))
    for rater, key in spec.keys.items():
        console.print(f"label key for {rater} (shown once):")
        print(key)


@app.command("export")
def export(
    task: Annotated[str, typer.Argument(help="Task name or id.")],
    rater: Annotated[str, typer.Option(help="Rater whose sheet to write.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="XLSX file to write.")],
) -> None:
    """Write one rater's blind XLSX."""
    from judge_service.labeling.tasks import LabelingError, export_sheet, get_task

    async def run(session: AsyncSession) -> bytes:
        found = await get_task(session, task)
        if found is None:
            raise LabelingError(404, f"no labelling task {task!r}")
        return await export_sheet(session, found, rater, await _rubric(session, found.rubric))

    out.write_bytes(_run(run))
    console.print(f"wrote {out}")


@app.command("import")
def import_(
    task: Annotated[str, typer.Argument(help="Task name or id.")],
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, help="Filled XLSX files.")],
) -> None:
    """Import filled sheets, all in one transaction: any wrong cell and nothing is imported."""
    from judge_service.labeling.tasks import LabelingError, get_task, import_sheet

    async def run(session: AsyncSession) -> list[dict[str, Any]]:
        found = await get_task(session, task)
        if found is None:
            raise LabelingError(404, f"no labelling task {task!r}")
        version = await _rubric(session, found.rubric)
        out = []
        for file in files:
            try:
                out.append({"file": str(file), **await import_sheet(session, found, file.read_bytes(), version)})
            except LabelingError as exc:
                exc.message = f"{file}: {exc.message}"
                raise
        return out

    console.print_json(data=_run(run))


@app.command("results")
def results(
    task: Annotated[str, typer.Argument(help="Task name or id.")],
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the full results as JSON.")] = None,
) -> None:
    """Inter-rater and judge-human agreement per dimension, human win rate, disagreements."""
    from judge_service.labeling.results import task_results
    from judge_service.labeling.tasks import LabelingError, get_task
    from judge_service.store.models import Experiment

    async def run(session: AsyncSession) -> dict[str, Any]:
        found = await get_task(session, task)
        if found is None:
            raise LabelingError(404, f"no labelling task {task!r}")
        exp = await session.get(Experiment, found.experiment_id)
        assert exp is not None
        return await task_results(session, found, exp)

    data = _run(run)
    from rich.table import Table

    table = Table("dimension", "raters κ", "raters agree", "judge–human κ", "judge–human agree", "n")
    for key in ["overall", *data["dimensions"]]:
        ir, jh = data["inter_rater"]["verdicts"][key], data["judge_vs_human"][key]
        table.add_row(key, fmt(ir["kappa"]), fmt(ir["agreement"]), fmt(jh["kappa"]), fmt(jh["agreement"]), str(jh["n"]))
    console.print(table)
    human = (data["human_win_rate"] or {}).get("overall") or {}
    console.print(
        f"human win rate {fmt(human.get('win_rate'))}% · {len(data['disagreements'])} pairs to adjudicate · "
        f"{data['progress']['done']}/{data['progress']['assignments']} labels"
    )
    if json_out:
        json_out.write_text(json.dumps(data, indent=2))

"""File workflows of the CLI through the Python client: `submit`, `export` and `experiments create`."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from judge_service.ui import make_console

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from judge_service.client import JudgeClient

experiments_app = typer.Typer(help="Experiments: create one before judging or importing labels.", no_args_is_help=True)
console = make_console()
err_console = Console(stderr=True)

Url = Annotated[
    str | None,
    typer.Option("--url", envvar="JUDGE_SERVICE_URL", help="The service's URL (default http://127.0.0.1:8000)."),
]
Key = Annotated[str | None, typer.Option("--key", envvar="JUDGE_SERVICE_KEY", help="API key (submit and read scopes).")]


def _client(url: str | None, key: str | None) -> JudgeClient:
    from judge_service.client import JudgeClient

    return JudgeClient(url, key)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[red]{message}[/red]", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def submit(
    base: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="Base outputs (JSONL).")],
    ft: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="FT outputs (JSONL).")],
    experiment: Annotated[str, typer.Option(help="Experiment name (created on first use).")],
    rubric: Annotated[str, typer.Option(help="Rubric: name or name@vN.")],
    base_model: Annotated[str | None, typer.Option(help="Base model name (default: the Base file's `model`).")] = None,
    ft_model: Annotated[str | None, typer.Option(help="FT model name (default: the FT file's `model`).")] = None,
    repeats: Annotated[int | None, typer.Option(min=1, max=16, help="Judgments per order.")] = None,
    mode: Annotated[str, typer.Option(help="reasoned or fast.")] = "reasoned",
    batch_size: Annotated[int, typer.Option(min=1, help="Pairs per request (one run each).")] = 500,
    allow_unmatched: Annotated[
        bool, typer.Option("--allow-unmatched", help="Submit the ids found in both files; skip the others.")
    ] = False,
    wait: Annotated[bool, typer.Option(help="Wait for the runs with a progress bar.")] = True,
    url: Url = None,
    key: Key = None,
) -> None:
    """Judge a Base and an FT JSONL file joined on `id`, with a progress bar.

    Lines are `{id, prompt, output, model, params}` or pairs `{id, prompt, base_output, ft_output}`.
    Ids found in one file only and prompts that differ between the files are errors (exit 2).
    """
    from judge_service.client import JudgeServiceError, PairFileError, RunFailedError, join_files
    from judge_service.client import Progress as RunProgress

    if mode not in ("reasoned", "fast"):
        raise typer.BadParameter("must be reasoned or fast", param_hint="--mode")
    try:
        joined = join_files(base, ft)
    except PairFileError as exc:
        raise _fail(str(exc), 2) from exc
    problems = list(joined.problems)
    if allow_unmatched:
        problems = [p for p in problems if "only in the" not in p]
        skipped = len(joined.only_base) + len(joined.only_ft)
        if skipped:
            err_console.print(f"[yellow]skipping {skipped} id(s) found in one file only[/yellow]")
    if problems:
        raise _fail("the files do not join:\n  " + "\n  ".join(problems), 2)
    base_name, ft_name = base_model or joined.base_model, ft_model or joined.ft_model
    if base_name is None or ft_name is None:
        missing = "--base-model" if base_name is None else "--ft-model"
        raise _fail(f"no `model` field in the {'Base' if base_name is None else 'FT'} file: give {missing}", 2)
    if not joined.items:
        raise _fail("no pairs to submit", 2)
    options: dict[str, Any] = {"mode": mode}
    if repeats is not None:
        options["repeats"] = repeats
    console.print(f"{len(joined.items)} pairs: {base_name} (Base) vs {ft_name} (FT), rubric {rubric}")
    with _client(url, key) as client:
        try:
            submission = client.submit(
                experiment,
                joined.items,
                rubric=rubric,
                base_model=base_name,
                ft_model=ft_name,
                options=options,
                batch_size=batch_size,
                wait=False,
            )
            console.print(f"runs: {', '.join(submission.run_ids)}")
            if not wait:
                return
            columns = (TextColumn("judging"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[note]}"))
            with Progress(*columns, TimeElapsedColumn(), console=console, transient=False) as bar:
                task = bar.add_task("judging", total=None, note="")

                def update(p: RunProgress) -> None:
                    note = f"{p.failed} failed" if p.failed else ""
                    bar.update(task, total=p.total, completed=p.completed, note=note)

                results = client.wait(submission.run_ids, progress=update)
        except (JudgeServiceError, RunFailedError) as exc:
            raise _fail(str(exc)) from exc
    outcomes = [item.outcome for run in results for item in run.items or []]
    wins, ties, losses = (outcomes.count(o) for o in ("win", "tie", "loss"))
    incomplete = outcomes.count(None)
    console.print(
        f"FT wins {wins}, ties {ties}, losses {losses}"
        + (f", {incomplete} incomplete" if incomplete else "")
        + f"; see `judge-service report --experiment {experiment}`"
    )


def export(
    experiment: Annotated[str, typer.Option(help="Experiment name or id.")],
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")] = None,
    rubric: Annotated[str | None, typer.Option(help="name or name@vN (default: newest used).")] = None,
    mode: Annotated[str | None, typer.Option(help="reasoned or fast (default: reasoned when judged so).")] = None,
    url: Url = None,
    key: Key = None,
) -> None:
    """Write every pair of an experiment with its verdict, per-dimension scores and rationales."""
    from judge_service.client import JudgeServiceError
    from judge_service.client.core import export_csv_text, export_jsonl_text

    if fmt not in ("jsonl", "csv"):
        raise typer.BadParameter("must be jsonl or csv", param_hint="--format")
    with _client(url, key) as client:
        try:
            pairs = client.export(experiment, rubric=rubric, mode=mode)
        except JudgeServiceError as exc:
            raise _fail(str(exc)) from exc
    text = export_csv_text(pairs) if fmt == "csv" else export_jsonl_text(pairs)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err_console.print(f"wrote {len(pairs)} pairs to {output}")


@experiments_app.command("create")
def experiments_create(
    name: Annotated[str, typer.Argument(help="Experiment name.")],
    base_model: Annotated[str, typer.Option(help="Base model name.")],
    ft_model: Annotated[str, typer.Option(help="FT model name.")],
    metadata: Annotated[str | None, typer.Option(help="Metadata as a JSON object.")] = None,
    url: Annotated[
        str | None, typer.Option("--url", help="Create through this service's API instead of JUDGE_DATABASE_URL.")
    ] = None,
    key: Key = None,
) -> None:
    """Create an experiment without judging (e.g. to import labels); an identical one is kept (exit 0).

    A name taken with other models is an error (exit 1).
    """
    from pydantic import ValidationError

    from judge_service.contract.experiments import ExperimentCreate, ExperimentView
    from judge_service.contract.validation import load_json

    try:
        spec = ExperimentCreate(
            name=name, base_model=base_model, ft_model=ft_model, metadata=load_json(metadata) if metadata else {}
        )
    except (ValidationError, ValueError) as exc:
        raise _fail(str(exc), 2) from exc
    if url is not None:
        from judge_service.client import JudgeServiceError

        with _client(url, key) as client:
            try:
                view = client.create_experiment(
                    spec.name, base_model=spec.base_model, ft_model=spec.ft_model, metadata=spec.metadata
                )
            except JudgeServiceError as exc:
                raise _fail(str(exc)) from exc
    else:
        from judge_service.config import get_settings
        from judge_service.store import db
        from judge_service.store.experiments import ExperimentConflictError, ensure_experiment, experiment_view

        async def create(session: AsyncSession) -> ExperimentView:
            exp, created = await ensure_experiment(session, spec.name, spec.base_model, spec.ft_model, spec.metadata)
            return experiment_view(exp, created)

        try:
            view = asyncio.run(db.in_transaction(get_settings().database_url, create))
        except ExperimentConflictError as exc:
            raise _fail(str(exc)) from exc
    console.print(
        f"{'created' if view.created else 'exists:'} experiment {view.name!r} (id {view.id}): "
        f"{view.base_model} (Base) vs {view.ft_model} (FT)",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add the commands to the main CLI."""
    app.command()(submit)
    app.command()(export)
    app.add_typer(experiments_app, name="experiments")

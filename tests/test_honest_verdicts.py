"""Honest verdicts through the API: judges without signal never yield ft_better / base_better.

Each adversarial judge (tests/adversarial_judges.py) judges 40 pairs through POST /judge/pairwise;
GET /reports/win-rate must give the conclusion and warnings docs/statistics.md documents for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests import adversarial_judges as judges
from tests.conftest import Service, make_settings, pair_items, pairwise_body, start_service
from tests.fake_judge import FakeJudgeServer, Policy

N_PAIRS = 40
NO_VERDICT = {"ft_better", "base_better"}


@pytest.fixture
async def honest(database_url: str, fake_judge: FakeJudgeServer) -> AsyncIterator[Service]:
    """The app with room for 40 pairs in one synchronous request."""
    settings = make_settings(database_url, fake_judge.base_url, fake_judge.state.model, sync_max_items=64)
    async for svc in start_service(settings):
        yield svc


async def judge_with(
    svc: Service, fake: FakeJudgeServer, policy: Policy, items: list[dict[str, Any]] | None = None, **options: Any
) -> dict[str, Any]:
    fake.state.policy = policy
    body = pairwise_body(items or pair_items(N_PAIRS), options=options)
    reply = await svc.http.post("/judge/pairwise", json=body, headers=svc.auth("submit"))
    assert reply.status_code == 200, reply.text
    result: dict[str, Any] = reply.json()
    return result


async def win_rate(svc: Service, **params: Any) -> dict[str, Any]:
    reply = await svc.http.get("/reports/win-rate", params={"experiment": "exp-1", **params}, headers=svc.auth("read"))
    assert reply.status_code == 200, reply.text
    result: dict[str, Any] = reply.json()
    return result


def codes(block: dict[str, Any]) -> set[str]:
    return {w["code"] for w in block["warnings"]}


def blocking(block: dict[str, Any]) -> set[str]:
    return {w["code"] for w in block["warnings"] if w["blocking"]}


def assert_no_claim(report: dict[str, Any]) -> None:
    """Neither overall, nor any slice, nor any dimension claims a winner."""
    overall = report["overall"]
    assert overall["conclusion"] not in NO_VERDICT
    for part in [overall, *report["slices"]]:
        assert part["conclusion"] not in NO_VERDICT
        assert all(d["conclusion"] not in NO_VERDICT for d in part["per_dimension"])


async def test_always_a(honest: Service, fake_judge: FakeJudgeServer) -> None:
    judged = await judge_with(honest, fake_judge, judges.always_a)
    assert {item["outcome"] for item in judged["items"]} == {"tie"}
    report = await win_rate(honest)
    overall = report["overall"]
    assert (overall["wins"], overall["ties"], overall["losses"]) == (0, N_PAIRS, 0)
    assert overall["inconsistent"] == N_PAIRS and overall["position_consistency"] == 0.0
    assert overall["conclusion"] == "not_enough_evidence"
    assert codes(overall) == blocking(overall) == {"few_pairs", "low_position_consistency", "position_bias"}
    bias = next(w for w in overall["warnings"] if w["code"] == "position_bias")
    assert bias["value"] == 1.0 and bias["threshold"] == 0.65
    assert_no_claim(await win_rate(honest, group_by="category"))


async def test_coin_flip(honest: Service, fake_judge: FakeJudgeServer) -> None:
    await judge_with(honest, fake_judge, judges.coin_flip)
    overall = (await win_rate(honest))["overall"]
    assert overall["position_consistency"] < 0.6
    assert overall["conclusion"] == "not_enough_evidence"
    assert codes(overall) == {"low_position_consistency"}
    assert_no_claim(await win_rate(honest, group_by="category"))


async def test_soft_no_signal_fast_mode(honest: Service, fake_judge: FakeJudgeServer) -> None:
    judged = await judge_with(honest, fake_judge, judges.soft_no_signal, mode="fast")
    assert {item["outcome"] for item in judged["items"]} == {"tie"}
    report = await win_rate(honest, mode="fast")
    overall = report["overall"]
    # Every pair scores 0.5 (+ rounding): ties, not 40 wins with a zero-width CI.
    assert (overall["wins"], overall["ties"], overall["losses"]) == (0, N_PAIRS, 0)
    assert overall["win_rate"] == pytest.approx(50.0)
    assert overall["ci_low"] < 50 < overall["ci_high"] and overall["ci_high"] - overall["ci_low"] > 10
    assert overall["decisive"] == {
        "n": 0,
        "ft_share": None,
        "wilson_low": None,
        "wilson_high": None,
        "sign_test_p": None,
    }
    assert overall["conclusion"] == "not_enough_evidence"
    assert codes(overall) == blocking(overall) == {"few_pairs", "low_position_consistency", "position_bias"}
    # Even with no tie margin at all the trust checks hold the conclusion back.
    no_margin = (await win_rate(honest, mode="fast", tie_margin=0))["overall"]
    assert no_margin["tie_margin"] == 0 and no_margin["wins"] == N_PAIRS
    assert no_margin["conclusion"] == "not_enough_evidence"
    assert codes(no_margin) == {"low_position_consistency", "position_bias"}
    assert_no_claim(report)


async def test_one_order_failing(honest: Service, fake_judge: FakeJudgeServer) -> None:
    judged = await judge_with(honest, fake_judge, judges.one_order_failing)
    # One order never decides a pair: no score, no outcome.
    assert {(item["outcome"], item["score"]) for item in judged["items"]} == {(None, None)}
    report = await win_rate(honest)
    overall = report["overall"]
    assert (overall["n_complete_pairs"], overall["incomplete_pairs"]) == (0, N_PAIRS)
    assert overall["win_rate"] is None and overall["ci_low"] is None and overall["standard_error"] is None
    assert overall["conclusion"] == "not_enough_evidence"
    assert codes(overall) == {"few_pairs", "position_bias", "incomplete_pairs", "judge_failures"}
    assert blocking(overall) == {"few_pairs", "position_bias"}
    listed = await honest.http.get(
        "/reports/failures",
        params={"experiment": "exp-1", "kind": "incomplete", "limit": 100},
        headers=honest.auth("read"),
    )
    assert listed.status_code == 200, listed.text
    cases = listed.json()["cases"]
    assert len(cases) == N_PAIRS
    assert all(set(c["order_scores"]) == {"base_first"} and c["n_failed"] == 1 for c in cases)
    assert_no_claim(report)


async def test_uneven_repeats(honest: Service, fake_judge: FakeJudgeServer) -> None:
    judged = await judge_with(honest, fake_judge, judges.uneven_repeats, repeats=3)
    for item in judged["items"]:
        orders = [v["order"] for v in item["verdicts"]]
        assert sorted(orders) == ["base_first"] * 3 + ["ft_first"]
        # The mean of all four verdicts would be 0.75; each order weighs half.
        assert item["score"] == 0.5 and item["outcome"] == "tie" and item["inconsistent"]
    overall = (await win_rate(honest))["overall"]
    assert (overall["wins"], overall["ties"], overall["losses"]) == (0, N_PAIRS, 0)
    assert overall["repeat_agreement"] == 1.0  # the three base_first repeats agree
    assert overall["conclusion"] == "not_enough_evidence"
    assert codes(overall) == {"few_pairs", "low_position_consistency", "position_bias", "judge_failures"}
    bias = next(w for w in overall["warnings"] if w["code"] == "position_bias")
    assert bias["value"] == 0.0 and bias["threshold"] == 0.35 and bias["blocking"]


def signal_items() -> list[dict[str, Any]]:
    """32 pairs where FT is better, 4 where Base is, 4 where neither answer is GOOD."""
    items = pair_items(32, prefix="w") + pair_items(4, prefix="l", ft_good=False) + pair_items(4, prefix="t")
    for item in items[36:]:
        item["ft_output"] = item["ft_output"].replace("GOOD", "fine")
    return items


async def test_judge_with_signal(honest: Service, fake_judge: FakeJudgeServer) -> None:
    await judge_with(honest, fake_judge, judges.with_signal, signal_items(), tie_margin=0.2)
    report = await win_rate(honest)
    overall = report["overall"]
    assert overall["tie_margin"] == 0.2  # stored on the experiment by options.tie_margin
    assert overall["conclusion"] == report["conclusion"] == "ft_better"
    assert not blocking(overall)
    assert overall["ci_low"] > 50 and overall["decisive"]["n"] >= 10
    assert overall["decisive"]["ft_share"] > 50 and overall["decisive"]["sign_test_p"] < 0.05
    assert {d["conclusion"] for d in overall["per_dimension"]} == {"ft_better"}
    assert (await win_rate(honest, tie_margin=0.05))["overall"]["tie_margin"] == 0.05
    slices = (await win_rate(honest, group_by="category"))["slices"]
    assert [s["n_complete_pairs"] for s in slices] == [N_PAIRS // 2] * 2
    assert all(s["conclusion"] in ("ft_better", "not_enough_evidence") for s in slices)


async def test_rescore_replaces_scores_stored_by_the_old_rule(honest: Service, fake_judge: FakeJudgeServer) -> None:
    from sqlalchemy import select, update

    from judge_service.store.models import PairResult, ResultSet
    from judge_service.store.results import rebuild_rollups, rescore_judge_sets

    await judge_with(honest, fake_judge, judges.uneven_repeats, repeats=3)
    async with honest.ctx.sessions() as session, session.begin():
        set_id = (await session.execute(select(ResultSet.id).where(ResultSet.source == "judge"))).scalar_one()
        # What the old rule stored: the mean of all four judgments, 0.75, a "win".
        await session.execute(update(PairResult).values(score=0.75, repeat_verdicts=0, repeat_matched=0))
        await rebuild_rollups(session, set_id)
    stale = (await win_rate(honest))["overall"]
    assert stale["wins"] == N_PAIRS and stale["repeat_agreement"] is None
    async with honest.ctx.sessions() as session, session.begin():
        assert await rescore_judge_sets(session) == N_PAIRS
    fresh = (await win_rate(honest))["overall"]
    assert (fresh["wins"], fresh["ties"], fresh["repeat_agreement"]) == (0, N_PAIRS, 1.0)
    assert fresh["conclusion"] == "not_enough_evidence"
    async with honest.ctx.sessions() as session:
        from judge_service.store.aggregate import PairFilter, aggregate

        rollups = (await aggregate(session, set_id, PairFilter()))[None]
        raw = (await aggregate(session, set_id, PairFilter(), use_rollups=False))[None]
        assert rollups.sums == pytest.approx(raw.sums)

"""Fast mode with the fake judge: soft preferences from verdict-token log-probabilities."""

from __future__ import annotations

import math

import pytest

from judge_service.engine.fast import FastVerdictError, SoftVerdict, soft_verdict, to_ft
from tests.conftest import Service, pair_items, pairwise_body
from tests.fake_judge import FakeJudgeServer


def test_soft_verdict_renormalises_over_verdict_tokens() -> None:
    tops = [
        {"token": "A", "logprob": math.log(0.3)},
        {"token": "B", "logprob": math.log(0.5)},
        {"token": "t", "logprob": math.log(0.06)},  # "t" and "ti" can only begin "tie": its mass
        {"token": "tie", "logprob": math.log(0.03)},
        {"token": "ti", "logprob": math.log(0.01)},
        {"token": "Answer", "logprob": math.log(0.1)},  # forbidden by the grammar: dropped
        {"token": " A", "logprob": math.log(0.1)},
    ]
    soft = soft_verdict(tops)
    assert (soft.p_a, soft.p_b, soft.p_tie) == pytest.approx((1 / 3, 5 / 9, 1 / 9))
    assert soft.argmax == "B"
    base_first = to_ft(soft, "base_first")
    assert base_first.s_ft == pytest.approx(5 / 9 + 0.5 / 9) and base_first.winner == "ft"
    ft_first = to_ft(soft, "ft_first")
    assert ft_first.s_ft == pytest.approx(1 / 3 + 0.5 / 9) and ft_first.winner == "base"
    only_b = soft_verdict([{"token": "B", "logprob": -2.0}])
    assert only_b == SoftVerdict(0.0, 1.0, 0.0)


@pytest.mark.parametrize("tops", [None, [], [{"token": "x", "logprob": -0.1}]])
def test_soft_verdict_fails_visibly(tops: list[dict[str, object]] | None) -> None:
    with pytest.raises(FastVerdictError):
        soft_verdict(tops)  # type: ignore[arg-type]


async def test_fast_mode_end_to_end_with_fake(service: Service, fake_judge: FakeJudgeServer) -> None:
    body = pairwise_body(pair_items(3), options={"mode": "fast"})
    reply = await service.http.post("/judge/pairwise", json=body, headers=service.auth("submit"))
    assert reply.status_code == 200, reply.text
    for item in reply.json()["items"]:
        scores = sorted(v["s_ft"] for v in item["verdicts"])
        assert {v["order"] for v in item["verdicts"]} == {"base_first", "ft_first"}
        assert scores == pytest.approx([0.8, 0.8])  # 0.7 + 0.5 * 0.2 in both orders
        assert item["outcome"] == "win" and item["verdicts"][0]["scores"] == {}
    request = fake_judge.state.requests[-1]
    assert request["structured_outputs"] == {"choice": ["A", "B", "tie"]} and request["top_logprobs"] == 10
    assert "one word" in request["messages"][0]["content"]
    report = (
        await service.http.get(
            "/reports/win-rate", params={"experiment": "exp-1", "mode": "fast"}, headers=service.auth("read")
        )
    ).json()
    assert report["mode"] == "fast" and report["overall"]["win_rate"] == pytest.approx(80.0)
    # The reasoned judgments of the same pairs are a separate result set, never mixed in.
    reasoned = await service.http.post(
        "/judge/pairwise", json=pairwise_body(pair_items(3)), headers=service.auth("submit")
    )
    assert reasoned.status_code == 200
    fast_again = (
        await service.http.get(
            "/reports/win-rate", params={"experiment": "exp-1", "mode": "fast"}, headers=service.auth("read")
        )
    ).json()
    assert fast_again["overall"]["win_rate"] == pytest.approx(80.0)


@pytest.mark.parametrize("fault", ["no_logprobs", "no_verdict_tokens"])
async def test_fast_mode_without_logprobs_fails_not_falls_back(
    service: Service, fake_judge: FakeJudgeServer, fault: str
) -> None:
    fake_judge.state.mode = fault
    body = pairwise_body(pair_items(1), options={"mode": "fast"})
    reply = await service.http.post("/judge/pairwise", json=body, headers=service.auth("submit"))
    item = reply.json()["items"][0]
    assert item["outcome"] is None and item["verdicts"] == [] and len(item["failed"]) == 2
    assert all(f["failure_reason"].startswith("invalid fast reply") for f in item["failed"])
    assert all(f["raw_reply"] for f in item["failed"])


async def test_reports_default_to_reasoned_verdicts(service: Service) -> None:
    await service.http.post("/judge/pairwise", json=pairwise_body(pair_items(2)), headers=service.auth("submit"))
    fast = pairwise_body(pair_items(2), options={"mode": "fast"})
    await service.http.post("/judge/pairwise", json=fast, headers=service.auth("submit"))
    report = await service.http.get("/reports/win-rate", params={"experiment": "exp-1"}, headers=service.auth("read"))
    assert report.json()["mode"] == "reasoned" and report.json()["overall"]["win_rate"] == pytest.approx(100.0)

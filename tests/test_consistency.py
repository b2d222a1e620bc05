"""Consistency report, scheduled re-judging, drift alerts and /metrics (fake judge)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select

from judge_service.reports.consistency import repeat_agreement, repeat_kappa
from judge_service.store.models import Alert, Judgment
from tests.conftest import Service, pair_items, pairwise_body
from tests.fake_judge import FakeJudgeServer


def test_repeat_agreement_and_kappa_by_hand() -> None:
    groups = {
        (1, "base_first"): ["ft", "ft", "ft"],
        (1, "ft_first"): ["ft", "base", "ft"],
        (2, "base_first"): ["base", "base", "tie"],
        (2, "ft_first"): ["tie", "tie", "tie"],
        (3, "base_first"): ["ft"],  # a single verdict has nothing to agree with
    }
    agreement, n = repeat_agreement(groups)  # type: ignore[arg-type]
    assert n == 12 and agreement == pytest.approx((3 + 2 + 2 + 3) / 12)
    kappa, items, raters = repeat_kappa(groups)  # type: ignore[arg-type]
    assert (items, raters) == (4, 3)
    # Fleiss by hand: per item P_i = (sum n_ij^2 - 3) / 6; p_j over 12 ratings.
    p_i = [(9 - 3) / 6, (4 + 1 - 3) / 6, (4 + 1 - 3) / 6, (9 - 3) / 6]
    p_j = [4 / 12, 5 / 12, 3 / 12]  # base, ft, tie
    p_bar, p_e = sum(p_i) / 4, sum(p * p for p in p_j)
    assert kappa == pytest.approx((p_bar - p_e) / (1 - p_e))


async def test_consistency_report(service: Service, fake_judge: FakeJudgeServer) -> None:
    body = pairwise_body(pair_items(4), options={"repeats": 2})
    assert (await service.http.post("/judge/pairwise", json=body, headers=service.auth("submit"))).status_code == 200
    fake_judge.state.mode = "always_a"
    body = pairwise_body(pair_items(2, prefix="q"), options={"repeats": 2})
    assert (await service.http.post("/judge/pairwise", json=body, headers=service.auth("submit"))).status_code == 200
    rep = (
        await service.http.get("/reports/consistency", params={"experiment": "exp-1"}, headers=service.auth("read"))
    ).json()
    assert rep["pairs"] == 6 and rep["pairs_with_both_orders"] == 6
    assert rep["position_consistency"] == pytest.approx(4 / 6) and rep["inconsistent_pairs"] == 2
    bias = rep["position_bias"]
    assert bias["slot_a_rate"] == pytest.approx((8 + 8) / 24) and bias["ci_low"] < bias["slot_a_rate"] < bias["ci_high"]
    assert rep["repeat_agreement"] == 1.0 and rep["repeat_fleiss_kappa"] == pytest.approx(1.0)
    assert [f["id"] for f in rep["most_flipped"]] == ["q0", "q1"] and rep["most_flipped"][0]["flip_share"] == 0.5
    assert rep["score_spread"]["accuracy"]["ft"] > 0  # the biased pairs' FT score moved with the order


async def wait_runs(svc: Service, run_ids: list[str]) -> None:
    for run_id in run_ids:
        await svc.ctx.executor.wait_run(run_id)


async def test_schedule_fires_rejudges_and_alerts(service: Service, fake_judge: FakeJudgeServer) -> None:
    items = pair_items(12)  # FT better on every pair: the original CI is tight around 100
    assert (
        await service.http.post("/judge/pairwise", json=pairwise_body(items), headers=service.auth("submit"))
    ).status_code == 200
    original = (
        await service.http.get("/reports/win-rate", params={"experiment": "exp-1"}, headers=service.auth("read"))
    ).json()
    async with service.ctx.sessions() as session:
        originals = (await session.execute(select(func.count()).select_from(Judgment))).scalar_one()

    spec = {"name": "every-second", "experiments": ["exp-1"], "sample_size": 12, "interval_seconds": 1}
    assert (await service.http.post("/schedules", json=spec, headers=service.auth("read"))).status_code == 403
    created = await service.http.post("/schedules", json=spec, headers=service.auth("admin"))
    assert created.status_code == 201, created.text
    schedule_id = created.json()["id"]
    history: dict[str, Any] = {}
    for _ in range(100):  # the scheduler fires by itself within a few seconds
        await asyncio.sleep(0.1)
        history = (
            await service.http.get("/reports/rejudge", params={"experiment": "exp-1"}, headers=service.auth("read"))
        ).json()
        if history["runs"] and history["runs"][0]["status"] == "done":
            break
    assert (await service.http.delete(f"/schedules/{schedule_id}", headers=service.auth("admin"))).status_code == 204
    first = history["runs"][0]
    assert first["status"] == "done" and first["schedule_id"] == schedule_id and first["sampled_pairs"] == 12
    # Every verdict "ft" twice: perfect agreement, and κ undefined (expected agreement is 1).
    assert first["agreement"] == 1.0 and first["cohen_kappa"] is None
    assert first["fingerprint_changed"] is False and first["alerts"] == []
    assert first["rejudged"]["win_rate"] == pytest.approx(first["original"]["win_rate"])
    async with service.ctx.sessions() as session:
        purposes = dict(
            (await session.execute(select(Judgment.purpose, func.count()).group_by(Judgment.purpose))).all()
        )
        assert purposes["judge"] == originals and purposes["rejudge"] >= 24
    after = (
        await service.http.get("/reports/win-rate", params={"experiment": "exp-1"}, headers=service.auth("read"))
    ).json()
    assert after["overall"] == original["overall"]  # re-judgments never mix into the original win rate

    # Now the judge flips every verdict: a manual firing must raise alerts.
    fake_judge.state.mode = "always_a"
    spec = {"name": "manual", "experiments": ["exp-1"], "sample_fraction": 1.0, "cron": "0 3 * * *"}
    manual = (await service.http.post("/schedules", json=spec, headers=service.auth("admin"))).json()
    fired = await service.http.post(f"/schedules/{manual['id']}/run", headers=service.auth("admin"))
    await wait_runs(service, fired.json()["run_ids"])
    history = (
        await service.http.get("/reports/rejudge", params={"experiment": "exp-1"}, headers=service.auth("read"))
    ).json()
    latest = history["runs"][-1]
    kinds = {a["kind"] for a in latest["alerts"]}
    assert {"win_rate_drift", "low_agreement"} <= kinds and latest["agreement"] < 0.8
    assert {a["kind"] for a in history["alerts"]} >= {"win_rate_drift", "low_agreement"}
    async with service.ctx.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(Alert))).scalar_one() >= 2
    metrics = (await service.http.get("/metrics")).text
    assert 'judge_rejudge_alerts_total{experiment="exp-1",kind="low_agreement"}' in metrics


async def test_schedule_validation(service: Service) -> None:
    await service.http.post("/judge/pairwise", json=pairwise_body(pair_items(1)), headers=service.auth("submit"))
    cases = [
        ({"name": "x", "experiments": ["exp-1"]}, 422),
        ({"name": "x", "experiments": ["exp-1"], "cron": "not cron"}, 422),
        ({"name": "x", "experiments": ["nope"], "cron": "0 3 * * *"}, 422),
        ({"name": "x", "experiments": ["exp-1"], "cron": "0 3 * * *", "sample_size": 1, "sample_fraction": 0.5}, 422),
    ]
    for spec, status in cases:
        assert (await service.http.post("/schedules", json=spec, headers=service.auth("admin"))).status_code == status
    ok = {"name": "x", "experiments": ["exp-1"], "cron": "0 3 * * *"}
    assert (await service.http.post("/schedules", json=ok, headers=service.auth("admin"))).status_code == 201
    assert (await service.http.post("/schedules", json=ok, headers=service.auth("admin"))).status_code == 409
    listed = (await service.http.get("/schedules", headers=service.auth("read"))).json()
    assert [s["name"] for s in listed] == ["x"]
    assert (await service.http.post("/schedules/999/run", headers=service.auth("admin"))).status_code == 404


async def test_rejudge_keeps_the_original_orders(service: Service) -> None:
    body = pairwise_body(pair_items(4), options={"swap": False})
    assert (await service.http.post("/judge/pairwise", json=body, headers=service.auth("submit"))).status_code == 200
    spec = {"name": "one-order", "experiments": ["exp-1"], "cron": "0 3 * * *"}
    schedule = (await service.http.post("/schedules", json=spec, headers=service.auth("admin"))).json()
    fired = (await service.http.post(f"/schedules/{schedule['id']}/run", headers=service.auth("admin"))).json()
    await wait_runs(service, fired["run_ids"])
    async with service.ctx.sessions() as session:
        orders = (await session.execute(select(Judgment.order).where(Judgment.purpose == "rejudge"))).scalars().all()
    assert sorted(orders) == ["base_first"] * 4

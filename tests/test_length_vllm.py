"""The length-controlled win rate and clustered slot-A share in a real judge's report (vLLM CPU judge, fast mode)."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm  # type: ignore[import-untyped]
from scipy.special import expit

from judge_service.judge_model.serve import VllmServer
from tests.conftest import make_settings, pairwise_body, start_service
from tests.test_e2e_vllm import example_items

pytestmark = pytest.mark.vllm


async def test_length_controlled_block_from_real_soft_verdicts(database_url: str, vllm_judge: VllmServer) -> None:
    settings = make_settings(database_url, vllm_judge.base_url, vllm_judge.settings.model, request_timeout_s=120.0)
    items = example_items("customer_service", 8) + example_items("copywriting", 8)
    async for svc in start_service(settings):
        body = pairwise_body(items, options={"mode": "fast"})
        reply = await svc.http.post("/judge/pairwise", json=body, headers=svc.auth("submit"))
        assert reply.status_code == 200, reply.text
        result = reply.json()
        report = await svc.http.get(
            "/reports/win-rate", params={"experiment": "exp-1", "mode": "fast"}, headers=svc.auth("read")
        )
        overall = report.json()["overall"]
    sent = {i["id"]: i for i in items}
    d, y = [], []
    for item in result["items"]:
        orders: dict[str, list[float]] = {}
        for v in item["verdicts"]:
            orders.setdefault(v["order"], []).append(v["s_ft"])
        if len(orders) == 2:  # every order answered: the pair counts
            pair = sent[item["id"]]
            b, f = len(pair["base_output"]), len(pair["ft_output"])
            d.append((f - b) / (f + b))
            y.append(float(np.mean([np.mean(s) for s in orders.values()])))
    lc = overall["length_controlled"]
    assert lc["n"] == len(y) >= 14
    assert set(lc) == {"win_rate", "ci_low", "ci_high", "length_coef", "n"}
    fit = sm.GLM(np.array(y), sm.add_constant(np.array(d)), family=sm.families.Binomial()).fit()
    low, high = fit.conf_int()[0]
    # Soft scores from real log-probabilities: non-integer data through the grouped fit, against a per-pair fit.
    assert lc["win_rate"] == pytest.approx(100 * expit(fit.params[0]), abs=1.5)
    assert lc["ci_low"] == pytest.approx(100 * expit(low), abs=2.0)
    assert lc["ci_high"] == pytest.approx(100 * expit(high), abs=2.0)
    assert lc["ci_low"] < lc["win_rate"] < lc["ci_high"]
    assert overall["position_a_ci_low"] <= overall["position_a_rate"] <= overall["position_a_ci_high"]

"""A labelling task over pairs the real vLLM judge judged: the judge's verdicts held against two raters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from judge_service.judge_model.serve import VllmServer
from tests.conftest import make_settings, start_service
from tests.labeling_plan import BASE_MODEL, DIMS, FT_MODEL, blind, plan
from tests.test_e2e_vllm import example_items

pytestmark = pytest.mark.vllm


def verdict_of(score: float) -> str:
    return "ft" if score > 0.5 else "base" if score < 0.5 else "tie"


async def test_judge_held_against_raters_with_the_real_judge(tmp_path: Path, vllm_judge: VllmServer) -> None:
    settings = make_settings(
        f"sqlite:///{tmp_path / 'v.db'}",
        vllm_judge.base_url,
        vllm_judge.settings.model,
        request_timeout_s=600.0,  # the CPU judge is slow when the machine is shared
        max_tokens=400,
    )
    items = example_items("customer_service", 2)
    async for svc in start_service(settings):
        body = {
            "experiment": {"name": "vllm-people", "base_model": BASE_MODEL, "ft_model": FT_MODEL},
            "rubric": "customer_service",
            "items": items,
        }
        reply = await svc.http.post("/judge/pairwise", json=body, headers=svc.auth("submit"))
        assert reply.status_code == 200, reply.text
        judged = {i["id"]: verdict_of(i["score"]) for i in reply.json()["items"] if i.get("score") is not None}
        failed = [f for i in reply.json()["items"] for f in i["failed"]]
        assert judged, f"the real judge gave no valid verdict: {failed}"
        task_body = {"experiment": "vllm-people", "raters": ["alice", "bob"], "issue_keys": True}
        task = (await svc.http.post("/labeling/tasks", json=task_body, headers=svc.auth("admin"))).json()
        by_text = {(it["base_output"], it["ft_output"]): it for it in items}
        for rater in ("alice", "bob"):
            headers = {"Authorization": f"Bearer {task['keys'][rater]}"}
            queue = (await svc.http.get("/labeling/assignments", headers=headers)).json()
            assert vllm_judge.settings.model not in str(queue)
            for item in queue["items"]:
                first_is_ft = (item["answer_2"], item["answer_1"]) in by_text
                pair = by_text[
                    (item["answer_2"], item["answer_1"]) if first_is_ft else (item["answer_1"], item["answer_2"])
                ]
                scores, pref = blind(*plan(rater, pair), first_is_ft)
                put = await svc.http.put(
                    f"/labeling/assignments/{item['token']}",
                    json={"scores": scores, "preference": pref},
                    headers=headers,
                )
                assert put.json()["status"] == "done"
        results = (await svc.http.get(f"/labeling/tasks/{task['id']}/results", headers=svc.auth("read"))).json()
        humans: dict[str, Any] = {}
        for it in items:
            s = [{"ft": 1.0, "base": 0.0, "tie": 0.5}[plan(r, it)[2]] for r in ("alice", "bob")]
            humans[it["id"]] = verdict_of(sum(s) / 2)
        for entry in results["pairs"]:
            assert entry["judge"] == judged.get(entry["id"])
            assert entry["human"] == humans[entry["id"]]
        overall = results["judge_vs_human"]["overall"]
        assert overall["n"] == len(judged)
        assert overall["agreement"] == pytest.approx(sum(judged[p] == humans[p] for p in judged) / len(judged))
        # customer_service shares only `compliance` with human_review: the other dimensions have no judge side.
        assert set(results["judge_vs_human"]) == {"overall", *DIMS}
        for d in DIMS:
            assert results["judge_vs_human"][d]["n"] == (len(judged) if d == "compliance" else 0), d

"""End to end against the real vLLM CPU judge serving the embedded default model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from judge_service.judge_model.serve import VllmServer
from judge_service.rubrics.render import messages_hash, render_pair
from judge_service.store import repo
from judge_service.store.models import Judgment, JudgmentScore, Pair, RubricVersionRow
from tests.conftest import ROOT, make_settings, pairwise_body, start_service

pytestmark = pytest.mark.vllm


def example_items(category: str, n: int) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (ROOT / "examples/pairs.jsonl").read_text().splitlines() if line.strip()]
    picked = [r for r in rows if r["category"] == category][:n]
    keys = ("id", "prompt", "base_output", "ft_output", "reference", "tags", "metadata")
    return [{k: r[k] for k in keys} for r in picked]


async def test_judges_pairs_in_both_orders_and_stores_rows(database_url: str, vllm_judge: VllmServer) -> None:
    settings = make_settings(
        database_url, vllm_judge.base_url, vllm_judge.settings.model, request_timeout_s=120.0, max_tokens=400
    )
    items = example_items("customer_service", 5)
    async for svc in start_service(settings):
        health = (await svc.http.get("/healthz")).json()
        assert health["status"] == "ok" and health["judge"]["backend_version"] == "0.32.0"
        reply = await svc.http.post(
            "/judge/pairwise", json=pairwise_body(items), headers={**svc.auth("submit"), "Idempotency-Key": "e2e"}
        )
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["status"] == "done" and body["judge"]["model"] == vllm_judge.settings.model
        counts = body["counts"]
        assert counts["pending"] == 0 and counts["done"] + counts["failed"] == 10
        assert counts["done"] >= 8, body  # schema-forced output: failures must be rare
        for item in body["items"]:
            orders = {v["order"] for v in item["verdicts"] + item["failed"]}
            assert orders == {"base_first", "ft_first"}
            for verdict in item["verdicts"]:
                assert verdict["winner"] in ("base", "ft", "tie") and verdict["winner_slot"] in ("A", "B", "tie")
                assert set(verdict["scores"]) == {"accuracy", "resolution", "tone", "compliance", "concision"}
            if item["score"] is not None:
                assert item["outcome"] in ("win", "tie", "loss") and 0.0 <= item["score"] <= 1.0
            else:  # an order without a valid verdict: the pair is incomplete, never decided by the other order
                assert item["outcome"] is None and item["failed"]
        async with svc.ctx.sessions() as session:
            judgments = list((await session.execute(select(Judgment))).scalars())
            assert len(judgments) == 10
            n_scores = (await session.execute(select(func.count()).select_from(JudgmentScore))).scalar_one()
            assert n_scores == 5 * sum(j.status == "done" for j in judgments)
            for judgment in judgments:
                assert judgment.raw_reply and judgment.messages_hash and judgment.latency_ms
                pair = await session.get(Pair, judgment.pair_id)
                rubric_row = await session.get(repo.RubricVersionRow, judgment.rubric_version_id)
                assert pair is not None and rubric_row is not None
                order = "base_first" if judgment.order == "base_first" else "ft_first"
                again = render_pair(
                    repo.version_from_row(rubric_row),
                    order,
                    prompt=pair.prompt,
                    base_output=pair.base_output,
                    ft_output=pair.ft_output,
                    reference=pair.reference,
                    nonce=(judgment.defences or {}).get("nonce"),
                )
                assert messages_hash(again) == judgment.messages_hash
                if judgment.status == "done":
                    assert judgment.prompt_tokens and judgment.prompt_tokens > 300 and judgment.completion_tokens
                    assert (judgment.winner_slot == "tie") == (judgment.winner == "tie")
                else:
                    assert judgment.failure_reason
        # The same request again: no new judge calls, same answer.
        again_reply = await svc.http.post(
            "/judge/pairwise", json=pairwise_body(items), headers={**svc.auth("submit"), "Idempotency-Key": "e2e"}
        )
        assert again_reply.json() == body
        async with svc.ctx.sessions() as session:
            assert (await session.execute(select(func.count()).select_from(Judgment))).scalar_one() == 10

        # Reports, consistency and one re-judge run over the real judge's verdicts.
        read = svc.auth("read")
        report = (await svc.http.get("/reports/win-rate", params={"experiment": "exp-1"}, headers=read)).json()
        assert report["overall"]["n_pairs"] == sum(i["score"] is not None for i in body["items"])
        assert report["judge_model"] == vllm_judge.settings.model and len(report["overall"]["per_dimension"]) == 5
        # 5 pairs can never support a claim, whatever the judge said.
        assert report["conclusion"] == report["overall"]["conclusion"] == "not_enough_evidence"
        assert "few_pairs" in {w["code"] for w in report["overall"]["warnings"]}
        consistency = (await svc.http.get("/reports/consistency", params={"experiment": "exp-1"}, headers=read)).json()
        assert 0.0 <= consistency["position_bias"]["slot_a_rate"] <= 1.0
        spec = {"name": "nightly", "experiments": ["exp-1"], "sample_size": 3, "cron": "0 3 * * *"}
        schedule = (await svc.http.post("/schedules", json=spec, headers=svc.auth("admin"))).json()
        fired = (await svc.http.post(f"/schedules/{schedule['id']}/run", headers=svc.auth("admin"))).json()
        for run_id in fired["run_ids"]:
            await svc.ctx.executor.wait_run(run_id)
        history = (await svc.http.get("/reports/rejudge", params={"experiment": "exp-1"}, headers=read)).json()
        [rerun] = history["runs"]
        assert rerun["status"] == "done" and rerun["sampled_pairs"] == 3 and rerun["fingerprint_changed"] is False
        assert rerun["compared_pairs"] <= 3 and (rerun["agreement"] is None or 0.0 <= rerun["agreement"] <= 1.0)
        async with svc.ctx.sessions() as session:
            purposes = dict(
                (await session.execute(select(Judgment.purpose, func.count()).group_by(Judgment.purpose))).all()
            )
            assert purposes == {"judge": 10, "rejudge": 6}


async def test_too_long_for_judge_context_is_refused(tmp_path: Path, vllm_judge: VllmServer) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'ctx.db'}", vllm_judge.base_url, vllm_judge.settings.model)
    items = example_items("copywriting", 2)
    items[1]["ft_output"] = "lorem ipsum dolor sit amet " * 700
    async for svc in start_service(settings):
        reply = await svc.http.post("/judge/pairwise", json=pairwise_body(items), headers=svc.auth("submit"))
        assert reply.status_code == 422
        detail = reply.json()["detail"][0]
        assert detail["loc"] == ["body", "items", 1] and "exceeds the judge context of 4096 tokens" in detail["msg"]


async def test_fast_mode_soft_scores_from_real_logprobs(database_url: str, vllm_judge: VllmServer) -> None:
    settings = make_settings(database_url, vllm_judge.base_url, vllm_judge.settings.model, request_timeout_s=120.0)
    items = example_items("copywriting", 4)
    async for svc in start_service(settings):
        body = pairwise_body(items, options={"mode": "fast"})
        reply = await svc.http.post("/judge/pairwise", json=body, headers=svc.auth("submit"))
        assert reply.status_code == 200, reply.text
        result = reply.json()
        assert result["counts"] == {"done": 8, "failed": 0, "pending": 0}, result
        for item in result["items"]:
            assert {v["order"] for v in item["verdicts"]} == {"base_first", "ft_first"}
            for verdict in item["verdicts"]:
                assert 0.0 <= verdict["s_ft"] <= 1.0 and verdict["winner_slot"] in ("A", "B", "tie")
            assert 0.0 <= item["score"] <= 1.0
        async with svc.ctx.sessions() as session:
            judgments = list((await session.execute(select(Judgment))).scalars())
            assert {j.mode for j in judgments} == {"fast"} and len(judgments) == 8
            for judgment in judgments:
                raw = json.loads(judgment.raw_reply or "{}")
                assert raw["top_logprobs"] and judgment.completion_tokens and judgment.completion_tokens <= 3
        report = await svc.http.get(
            "/reports/win-rate", params={"experiment": "exp-1", "mode": "fast"}, headers=svc.auth("read")
        )
        assert report.json()["mode"] == "fast" and 0 <= report.json()["overall"]["win_rate"] <= 100


async def test_real_judge_report_carries_conclusion_and_warnings(tmp_path: Path, vllm_judge: VllmServer) -> None:
    """24 pairs in fast mode: the 135M judge is position-biased, so its report concludes nothing and says why."""
    settings = make_settings(
        f"sqlite:///{tmp_path / 'honest.db'}", vllm_judge.base_url, vllm_judge.settings.model, request_timeout_s=120.0
    )
    items = example_items("customer_service", 24)
    async for svc in start_service(settings):
        body = pairwise_body(items, options={"mode": "fast"})
        reply = await svc.http.post("/judge/pairwise", json=body, headers=svc.auth("submit"))
        assert reply.status_code == 200, reply.text
        report = await svc.http.get(
            "/reports/win-rate", params={"experiment": "exp-1", "mode": "fast"}, headers=svc.auth("read")
        )
        assert report.status_code == 200, report.text
        overall = report.json()["overall"]
        codes = {w["code"] for w in overall["warnings"]}
        blocking = {w["code"] for w in overall["warnings"] if w["blocking"]}
        print(f"real judge: conclusion={overall['conclusion']} warnings={sorted(codes)}")
        print(
            f"  position_consistency={overall['position_consistency']} position_a_rate={overall['position_a_rate']}"
            f" decisive={overall['decisive']} win_rate={overall['win_rate']}"
        )
        assert overall["conclusion"] == "not_enough_evidence"
        assert blocking & {"low_position_consistency", "position_bias"}, overall["warnings"]
        for warning in overall["warnings"]:
            assert set(warning) == {"code", "message", "value", "threshold", "blocking"} and warning["message"]


async def test_a_rubric_added_at_run_time_drives_the_real_judge(database_url: str, vllm_judge: VllmServer) -> None:
    """POST /rubrics, then judge with it at once: the real judge's structured output must follow a schema
    built from the new rubric's own dimension keys (the fake judge answers whatever it is asked)."""
    from tests.test_rubrics_runtime import rubric_text

    settings = make_settings(
        database_url, vllm_judge.base_url, vllm_judge.settings.model, request_timeout_s=120.0, max_tokens=400
    )
    async for svc in start_service(settings):
        added = await svc.http.post("/rubrics", json={"rubric_text": rubric_text()}, headers=svc.auth("admin"))
        assert added.status_code == 201, added.text
        body = pairwise_body(example_items("customer_service", 2), rubric="team_support@v1")
        reply = await svc.http.post("/judge/pairwise", json=body, headers=svc.auth("submit"))
        assert reply.status_code == 200, reply.text
        counts = reply.json()["counts"]
        assert counts["pending"] == 0 and counts["done"] >= 3, reply.json()  # schema-forced: failures rare
        async with svc.ctx.sessions() as session:
            dims = set((await session.execute(select(JudgmentScore.dimension).distinct())).scalars())
            hashes = set(
                (
                    await session.execute(
                        select(RubricVersionRow.content_hash)
                        .join(Judgment, Judgment.rubric_version_id == RubricVersionRow.id)
                        .distinct()
                    )
                ).scalars()
            )
        assert dims == {"zorblax", "tone"}
        assert hashes == {added.json()["content_hash"]}

"""The replica pool against the real vLLM CPU judge, reached through two URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from judge_service.engine.client import JudgeClient
from judge_service.judge_model.serve import VllmServer
from tests.conftest import make_settings, pairwise_body, start_service
from tests.test_dtype import this_cpu_has_native_bf16
from tests.test_e2e_vllm import example_items

pytestmark = pytest.mark.vllm


async def test_two_urls_to_the_real_judge_share_calls_and_fingerprint(tmp_path: Path, vllm_judge: VllmServer) -> None:
    model = vllm_judge.settings.model
    one = vllm_judge.base_url
    two = one + "/"  # the same server by a second path: the pool sees two replicas
    expected_dtype = "bfloat16" if this_cpu_has_native_bf16() else "float32"
    settings = make_settings(
        f"sqlite:///{tmp_path / 'pool.db'}",
        f"{one},{two}",
        model,
        request_timeout_s=120.0,
        replica_concurrency=4,
        concurrency=8,
    )
    single = JudgeClient(make_settings("sqlite://", one, model))
    try:
        alone = await single.fingerprint()
    finally:
        await single.aclose()
    async for svc in start_service(settings):
        health = (await svc.http.get("/healthz")).json()
        judge = health["judge"]
        assert health["status"] == "ok" and judge["backend_version"] == "0.32.0"
        assert [(r["index"], r["state"], r["dtype"]) for r in judge["replicas"]] == [
            (0, "ok", expected_dtype),
            (1, "ok", expected_dtype),
        ]
        # vLLM reports the dtype it serves (dev mode /server_info); it is the one chosen for this CPU.
        assert judge["dtype"] == expected_dtype and judge["dtype_source"] == "server"
        items = example_items("copywriting", 4)
        reply = await svc.http.post(
            "/judge/pairwise", json=pairwise_body(items, options={"mode": "fast"}), headers=svc.auth("submit")
        )
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["counts"] == {"done": 8, "failed": 0, "pending": 0}, body
        assert body["judge"]["fingerprint"] == alone.hash and body["judge"]["dtype"] == expected_dtype
        calls = [r.started for r in svc.ctx.client.pool.replicas]
        assert sum(calls) == 8 and min(calls) >= 2, calls  # 8 at once over 2 replicas of 4 slots
    assert vllm_judge.log_path is not None
    assert f"dtype=torch.{expected_dtype}" in vllm_judge.log_path.read_text()

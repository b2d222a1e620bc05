"""API and store, against SQLite and PostgreSQL, judging with the fake judge."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select

from judge_service.rubrics.render import messages_hash, render_pair
from judge_service.store import repo
from judge_service.store.models import Experiment, Judgment, JudgmentScore, Pair, Run
from tests.conftest import Service, pair_items, pairwise_body


async def count(svc: Service, model: Any) -> int:
    async with svc.ctx.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_sync_judging_stores_both_orders_and_maps_ab(service: Service) -> None:
    items = pair_items(3) + pair_items(1, prefix="b", ft_good=False)
    reply = await service.http.post("/judge/pairwise", json=pairwise_body(items), headers=service.auth("submit"))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] == "done"
    assert body["counts"] == {"done": 8, "failed": 0, "pending": 0}
    outcomes = {i["id"]: i for i in body["items"]}
    for i in range(3):
        item = outcomes[f"p{i}"]
        assert item["outcome"] == "win" and item["score"] == 1.0 and not item["inconsistent"]
        assert {v["order"] for v in item["verdicts"]} == {"base_first", "ft_first"}
        # FT sat in slot B for base_first and in slot A for ft_first; the fake picked it both times.
        slots = {v["order"]: v["winner_slot"] for v in item["verdicts"]}
        assert slots == {"base_first": "B", "ft_first": "A"}
        assert item["dimensions"]["accuracy"] == {"base": 2.0, "ft": 5.0, "diff": 3.0}
        assert item["failure_tags"] == {"base": ["factual_error"], "ft": []}
    assert outcomes["b0"]["outcome"] == "loss" and outcomes["b0"]["score"] == 0.0
    assert await count(service, Judgment) == 8
    assert await count(service, JudgmentScore) == 8 * 5
    async with service.ctx.sessions() as session:
        judgment = (await session.execute(select(Judgment).limit(1))).scalar_one()
        pair = await session.get(Pair, judgment.pair_id)
        rubric_row = await session.get(repo.RubricVersionRow, judgment.rubric_version_id)
        fingerprint = await session.get(repo.JudgeFingerprint, judgment.fingerprint_id)
        assert pair is not None and rubric_row is not None and fingerprint is not None
        # Reproducible from what is stored: the stored rubric text re-renders the same messages.
        version = repo.version_from_row(rubric_row)
        order = "base_first" if judgment.order == "base_first" else "ft_first"
        # Defended templates: the nonce the rendering drew is recorded with the judgment.
        assert judgment.defences and judgment.defences["template"] == "pairwise@v2"
        nonce = judgment.defences["nonce"]
        again = render_pair(
            version, order, prompt=pair.prompt, base_output=pair.base_output, ft_output=pair.ft_output, nonce=nonce
        )
        assert messages_hash(again) == judgment.messages_hash
        assert judgment.messages == again
        assert judgment.raw_reply and judgment.seed == 0 and judgment.attempts == 1
        assert fingerprint.model == "fake-judge" and fingerprint.revision == "test-rev"
        assert fingerprint.backend_version == "fake-1" and fingerprint.decoding["temperature"] == 0.0


async def test_position_biased_judge_is_flagged_inconsistent(service: Service, fake_judge: Any) -> None:
    fake_judge.state.mode = "always_a"
    reply = await service.http.post(
        "/judge/pairwise", json=pairwise_body(pair_items(2)), headers=service.auth("submit")
    )
    assert reply.status_code == 200
    for item in reply.json()["items"]:
        assert item["inconsistent"] is True
        assert item["outcome"] == "tie" and item["score"] == 0.5


async def test_idempotency_key_replays_first_answer(service: Service, fake_judge: Any) -> None:
    body = pairwise_body(pair_items(2))
    headers = {**service.auth("submit"), "Idempotency-Key": "batch-7"}
    first = await service.http.post("/judge/pairwise", json=body, headers=headers)
    calls = fake_judge.state.calls
    second = await service.http.post("/judge/pairwise", json=body, headers=headers)
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert fake_judge.state.calls == calls
    assert await count(service, Judgment) == 4 and await count(service, Run) == 1
    changed = pairwise_body(pair_items(3))
    reused = await service.http.post("/judge/pairwise", json=changed, headers=headers)
    assert reused.status_code == 422
    assert reused.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]


async def test_resent_pair_creates_no_new_judgments(service: Service, fake_judge: Any) -> None:
    await service.http.post("/judge/pairwise", json=pairwise_body(pair_items(2)), headers=service.auth("submit"))
    calls = fake_judge.state.calls
    again = await service.http.post(
        "/judge/pairwise", json=pairwise_body(pair_items(3)), headers=service.auth("submit")
    )
    assert again.status_code == 200
    assert [i["id"] for i in again.json()["items"]] == ["p0", "p1", "p2"]
    assert fake_judge.state.calls == calls + 2  # only the new pair, in two orders
    assert await count(service, Judgment) == 6 and await count(service, Pair) == 3
    # More repeats later add only the missing repeats.
    more = await service.http.post(
        "/judge/pairwise", json=pairwise_body(pair_items(1), options={"repeats": 3}), headers=service.auth("submit")
    )
    assert more.status_code == 200
    item = more.json()["items"][0]
    assert sorted((v["order"], v["repeat"], v["seed"]) for v in item["verdicts"]) == sorted(
        (o, r, r) for o in ("base_first", "ft_first") for r in range(3)
    )
    assert await count(service, Judgment) == 10


async def test_changed_pair_under_same_id_is_refused(service: Service) -> None:
    await service.http.post("/judge/pairwise", json=pairwise_body(pair_items(1)), headers=service.auth("submit"))
    items = pair_items(2)
    items[0]["ft_output"] = "something else entirely"
    reply = await service.http.post("/judge/pairwise", json=pairwise_body(items), headers=service.auth("submit"))
    assert reply.status_code == 409
    assert reply.json()["detail"][0]["loc"] == ["body", "items", 0, "id"]
    assert await count(service, Pair) == 1  # p1 was not stored either: all or nothing


async def test_bad_input_names_the_field_and_stores_nothing(service: Service) -> None:
    await service.http.post("/judge/pairwise", json=pairwise_body(pair_items(1)), headers=service.auth("submit"))
    before = (await count(service, Pair), await count(service, Judgment), await count(service, Run))
    headers = service.auth("submit")
    cases: list[tuple[dict[str, Any] | str, int, list[Any]]] = []
    missing = pairwise_body(pair_items(2, prefix="m"))
    del missing["items"][1]["ft_output"]
    cases.append((missing, 422, ["body", "items", 1, "ft_output"]))
    empty = pairwise_body(pair_items(1, prefix="e"))
    empty["items"][0]["base_output"] = "   "
    cases.append((empty, 422, ["body", "items", 0, "base_output"]))
    cases.append((pairwise_body(pair_items(1, prefix="r"), rubric="no_such_rubric"), 422, ["body", "rubric"]))
    cases.append((pairwise_body(pair_items(1, prefix="r"), rubric="customer_service@v99"), 422, ["body", "rubric"]))
    huge = pairwise_body(pair_items(2, prefix="h"))
    huge["items"][1]["prompt"] = "x" * (service.settings.max_text_chars + 1)
    cases.append((huge, 413, ["body", "items", 1, "prompt"]))
    dup = pairwise_body(pair_items(1, prefix="d") + pair_items(1, prefix="d"))
    cases.append((dup, 422, ["body", "items", 1, "id"]))
    cases.append((pairwise_body([]), 422, ["body", "items"]))
    no_exp = pairwise_body(pair_items(1, prefix="n"))
    del no_exp["experiment"]["ft_model"]
    cases.append((no_exp, 422, ["body", "experiment", "ft_model"]))
    other_model = pairwise_body(pair_items(1, prefix="o"))
    other_model["experiment"]["ft_model"] = "another-ft"
    cases.append((other_model, 409, ["body", "experiment", "ft_model"]))
    # About 4 characters per token in the fake's tokenizer: this cannot fit 4096 tokens.
    long_item = pairwise_body(pair_items(2, prefix="l"))
    long_item["items"][1]["base_output"] = "word " * 3500
    cases.append((long_item, 422, ["body", "items", 1]))
    for body, status, loc in cases:
        reply = await service.http.post("/judge/pairwise", json=body, headers=headers)
        assert reply.status_code == status, (loc, reply.text)
        detail = reply.json()["detail"]
        assert any(d["loc"] == loc for d in detail), (loc, detail)
    malformed = await service.http.post(
        "/judge/pairwise", content=b'{"experiment": ', headers={**headers, "Content-Type": "application/json"}
    )
    assert malformed.status_code == 422 and malformed.json()["detail"][0]["type"] == "json_invalid"
    after = (await count(service, Pair), await count(service, Judgment), await count(service, Run))
    assert after == before


async def test_auth_scopes(service: Service) -> None:
    body = pairwise_body(pair_items(1))
    assert (await service.http.post("/judge/pairwise", json=body)).status_code == 401
    bad = {"Authorization": "Bearer js_nope_nope"}
    assert (await service.http.post("/judge/pairwise", json=body, headers=bad)).status_code == 401
    assert (await service.http.post("/judge/pairwise", json=body, headers=service.auth("read"))).status_code == 403
    assert (await service.http.get("/experiments", headers=service.auth("submit"))).status_code == 403
    assert (await service.http.get("/experiments", headers=service.auth("read"))).status_code == 200
    assert (await service.http.get("/experiments", headers=service.auth("admin"))).status_code == 200
    assert (await service.http.get("/healthz")).status_code == 200
    async with service.ctx.sessions() as session, session.begin():
        rows = await repo.list_api_keys(session)
        read_prefix = next(r.prefix for r in rows if r.name == "test-read")
        assert await repo.revoke_api_key(session, read_prefix) is not None
    assert (await service.http.get("/experiments", headers=service.auth("read"))).status_code == 401


async def test_async_run_polling_and_reads(service: Service) -> None:
    body = pairwise_body(pair_items(5), **{"async": True})
    reply = await service.http.post("/judge/pairwise", json=body, headers=service.auth("submit"))
    assert reply.status_code == 202
    run_id = reply.json()["run_id"]
    for _ in range(200):
        status = (await service.http.get(f"/runs/{run_id}", headers=service.auth("read"))).json()
        if status["status"] == "done":
            break
        await asyncio.sleep(0.05)
    assert status["status"] == "done" and status["counts"]["done"] == 10
    assert len(status["items"]) == 5 and all(i["outcome"] == "win" for i in status["items"])
    page = (await service.http.get(f"/runs/{run_id}?offset=3&limit=1", headers=service.auth("read"))).json()
    assert [i["id"] for i in page["items"]] == ["p3"]
    assert (await service.http.get("/runs/nope", headers=service.auth("read"))).status_code == 404
    experiments = (await service.http.get("/experiments", headers=service.auth("read"))).json()
    assert experiments[0]["name"] == "exp-1" and experiments[0]["pairs"] == 5 and experiments[0]["judgments"] == 10
    for ref in ("exp-1", str(experiments[0]["id"])):
        pair = (await service.http.get(f"/experiments/{ref}/pairs/p2", headers=service.auth("read"))).json()
        assert pair["id"] == "p2" and len(pair["judgments"]) == 2
        assert pair["judgments"][0]["rubric"] == "customer_service@v2"
        assert pair["judgments"][0]["judge_fingerprint"]
    assert (await service.http.get("/experiments/exp-1/pairs/zzz", headers=service.auth("read"))).status_code == 404


async def test_large_batch_goes_async(service: Service) -> None:
    items = pair_items(service.settings.sync_max_items + 1)
    reply = await service.http.post("/judge/pairwise", json=pairwise_body(items), headers=service.auth("submit"))
    assert reply.status_code == 202
    await service.ctx.executor.wait_run(reply.json()["run_id"])
    assert await count(service, Judgment) == 2 * len(items)


async def test_rubric_endpoints(service: Service) -> None:
    listing = (await service.http.get("/rubrics", headers=service.auth("read"))).json()
    names = {r["name"] for r in listing}
    assert {"general", "customer_service", "copywriting", "sft_regression"} <= names
    one = (await service.http.get("/rubrics/general/v1", headers=service.auth("read"))).json()
    assert one["ref"] == "general@v1" and len(one["content_hash"]) == 64
    assert "helpfulness_a" in one["verdict_schema"]["properties"]
    latest = (await service.http.get("/rubrics/general/latest", headers=service.auth("read"))).json()
    assert latest["ref"] == "general@v2" and latest["content_hash"] != one["content_hash"]
    assert (await service.http.get("/rubrics/general/v9", headers=service.auth("read"))).status_code == 404


async def test_experiment_metadata_kept(service: Service) -> None:
    body = pairwise_body(pair_items(1))
    body["experiment"]["metadata"] = {"checkpoint": "step-10k"}
    await service.http.post("/judge/pairwise", json=body, headers=service.auth("submit"))
    async with service.ctx.sessions() as session:
        exp = (await session.execute(select(Experiment))).scalar_one()
        assert exp.meta == {"checkpoint": "step-10k"}

"""The Python client (`judge_service.client`) and the walkthrough script, against a live service."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import csv
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from judge_service.api.app import create_app
from judge_service.client import AsyncJudgeClient, JudgeClient, JudgeServiceError, Progress, idempotency_key, join_files
from judge_service.config import Settings
from judge_service.contract.reports import AgreementReport
from judge_service.store import db, repo
from judge_service.store.models import Judgment, Pair, Run
from tests.conftest import ROOT, make_settings, pair_items
from tests.fake_judge import Decision, FakeJudgeServer, JudgeCall, free_port


@dataclass
class Live:
    """The app under uvicorn in a thread, with a submit+read key."""

    url: str
    key: str
    settings: Settings

    def client(self, **kwargs: Any) -> JudgeClient:
        """A client of this service with short waits."""
        return JudgeClient(self.url, self.key, poll_interval=0.05, backoff=0.01, **kwargs)

    def query(self, action: Any) -> Any:
        """Run `action(session)` on the service's database, on a loop of its own."""
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, db.in_transaction(self.settings.database_url, action)).result()


def serve(settings: Settings) -> Iterator[Live]:
    """Migrate, create a key, run the app on a free port until the test ends."""
    live = Live("", "", settings)
    live.key = live.query(lambda s: repo.create_api_key(s, "client-test", ["submit", "read"]))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "the server thread died during start-up"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    live.url = f"http://127.0.0.1:{port}"
    try:
        yield live
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def live(tmp_path: Path, fake_judge: FakeJudgeServer) -> Iterator[Live]:
    """The service on a temp SQLite file, judging with the fake judge."""
    settings = make_settings(f"sqlite:///{tmp_path / 'client.db'}", fake_judge.base_url, fake_judge.state.model)
    yield from serve(settings)


def count(live: Live, model: Any) -> int:
    """Rows of a table."""
    return int(live.query(lambda s: _scalar(s, select(func.count()).select_from(model))))


async def _scalar(session: Any, stmt: Any) -> Any:
    return (await session.execute(stmt)).scalar_one()


MODELS = {"base_model": "base-7b", "ft_model": "ft-7b-sft"}


def test_idempotent_retry_gives_one_run_and_no_duplicate_judgments(live: Live) -> None:
    items = pair_items(6)
    with live.client() as client:
        first = client.submit("exp-idem", items, rubric="customer_service", **MODELS, batch_size=4)
        assert len(first.run_ids) == 2
        judgments = count(live, Judgment)
        assert judgments == 6 * 2  # both orders, one repeat
        again = client.submit("exp-idem", items, rubric="customer_service", **MODELS, batch_size=4)
    assert again.run_ids == first.run_ids  # the same content-derived keys replay the same runs
    assert count(live, Run) == 2 and count(live, Judgment) == judgments and count(live, Pair) == 6
    assert [i.outcome for i in again.items] == ["win"] * 6
    # The key covers experiment, rubric, options and items: any change is a new submission.
    body = {"experiment": {"name": "e"}, "rubric": "r", "options": {}, "items": items}
    assert idempotency_key(body) == idempotency_key(json.loads(json.dumps(body)))
    assert idempotency_key(body) != idempotency_key({**body, "options": {"repeats": 2}})
    assert idempotency_key(body) != idempotency_key({**body, "items": items[:5]})


class Flaky(httpx.BaseTransport):
    """Answers the first `failures` requests with 503 (with Retry-After), then passes them to the service."""

    def __init__(self, failures: int, retry_after: str | None = "0") -> None:
        self.inner = httpx.HTTPTransport()
        self.failures = failures
        self.retry_after = retry_after
        self.seen: list[tuple[str, str | None]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.url.path, request.headers.get("Idempotency-Key")))
        if self.failures > 0:
            self.failures -= 1
            headers = {"Retry-After": self.retry_after} if self.retry_after is not None else {}
            return httpx.Response(503, json={"detail": "judge unavailable"}, headers=headers)
        return self.inner.handle_request(request)


def test_retries_on_503_then_succeeds_with_the_same_key(live: Live) -> None:
    flaky = Flaky(failures=2)
    with live.client(transport=flaky) as client:
        done = client.submit("exp-503", pair_items(3), rubric="customer_service", **MODELS)
    posts = [key for path, key in flaky.seen if path == "/judge/pairwise"]
    assert len(posts) == 3 and len(set(posts)) == 1 and posts[0]
    assert done.results[0].status == "done" and count(live, Run) == 1


def test_gives_up_after_the_retries_with_the_servers_detail(live: Live) -> None:
    flaky = Flaky(failures=10, retry_after=None)
    with live.client(transport=flaky, retries=2) as client, pytest.raises(JudgeServiceError) as caught:
        client.create_experiment("never", **MODELS)
    assert caught.value.status == 503 and caught.value.detail == "judge unavailable"
    assert len(flaky.seen) == 3  # one try and two retries


def test_retry_after_is_honoured(live: Live) -> None:
    flaky = Flaky(failures=1, retry_after="1")
    started = time.monotonic()
    with live.client(transport=flaky) as client:
        client.create_experiment("patient", **MODELS)
    assert time.monotonic() - started >= 0.9


def test_connection_errors_are_retried() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) < 3:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(
            201,
            json={
                "id": 1,
                "name": "x",
                "base_model": "b",
                "ft_model": "f",
                "metadata": {},
                "created_at": None,
                "created": True,
            },
        )

    with JudgeClient("http://judge.invalid", "k", backoff=0.01, transport=httpx.MockTransport(handler)) as client:
        view = client.create_experiment("x", base_model="b", ft_model="f")
    assert view.created and len(calls) == 3
    assert calls[0].headers["Authorization"] == "Bearer k"


def test_422_carries_the_servers_detail_and_is_not_retried(live: Live) -> None:
    flaky = Flaky(failures=0)
    bad = pair_items(2)
    bad[1]["prompt"] = "   "
    with live.client(transport=flaky) as client, pytest.raises(JudgeServiceError) as caught:
        client.submit("exp-422", bad, rubric="customer_service", **MODELS)
    error = caught.value
    assert error.status == 422 and len(flaky.seen) == 1
    locs = [entry["loc"] for entry in error.detail]
    assert ["body", "items", 1, "prompt"] in locs
    assert "items.1.prompt" in str(error)
    with live.client() as client, pytest.raises(JudgeServiceError) as caught:
        client.submit("exp-422", pair_items(1), rubric="no_such_rubric", **MODELS)
    assert caught.value.status == 422 and "no_such_rubric" in str(caught.value.detail)


def test_progress_callback_sees_the_judgments_complete(live: Live, fake_judge: FakeJudgeServer) -> None:
    fake_judge.state.delay_s = 0.05
    seen: list[Progress] = []
    with live.client() as client:
        done = client.submit(
            "exp-progress", pair_items(8), rubric="customer_service", **MODELS, batch_size=3, progress=seen.append
        )
    assert len(done.run_ids) == 3 and len(done.items) == 8
    assert seen and all(p.runs == 3 and p.total == 16 for p in seen)
    assert seen[-1].completed == 16 and seen[-1].finished_runs == 3 and seen[-1].pending == 0
    completed = [p.completed for p in seen]
    assert completed == sorted(completed)


def test_csv_export_matches_the_judgments_in_the_database(live: Live, tmp_path: Path) -> None:
    items = pair_items(5) + pair_items(3, prefix="b", ft_good=False)
    with live.client() as client:
        client.submit("exp-export", items, rubric="customer_service", **MODELS)
        client.export_csv("exp-export", tmp_path / "pairs.csv")
    rows = list(csv.DictReader((tmp_path / "pairs.csv").open(encoding="utf-8")))

    async def stored(session: Any) -> dict[str, list[Judgment]]:
        from sqlalchemy.orm import selectinload

        result = await session.execute(
            select(Judgment).options(selectinload(Judgment.scores), selectinload(Judgment.pair))
        )
        out: dict[str, list[Judgment]] = {}
        for j in result.scalars():
            out.setdefault(j.pair.external_id, []).append(j)
        return out

    judged = live.query(stored)
    assert sorted(r["id"] for r in rows) == sorted(i["id"] for i in items)
    by_id = {i["id"]: i for i in items}
    for row in rows:
        js = judged[row["id"]]
        assert row["prompt"] == by_id[row["id"]]["prompt"] and row["ft_output"] == by_id[row["id"]]["ft_output"]
        winners = {j.winner for j in js}
        assert len(winners) == 1  # the fake judge is consistent across orders
        assert row["outcome"] == {"ft": "win", "base": "loss", "tie": "tie"}[winners.pop()]
        assert float(row["score"]) == pytest.approx(sum(j.s_ft for j in js) / len(js))
        assert int(row["judgments"]) == len(js)
        for dim in ("accuracy", "resolution", "tone", "compliance", "concision"):
            base = sum(s.base_score for j in js for s in j.scores if s.dimension == dim) / len(js)
            ft = sum(s.ft_score for j in js for s in j.scores if s.dimension == dim) / len(js)
            assert float(row[f"{dim}_base"]) == pytest.approx(base)
            assert float(row[f"{dim}_ft"]) == pytest.approx(ft)
            assert float(row[f"{dim}_diff"]) == pytest.approx(ft - base)
        assert row["rationales"].split("\n---\n") == [j.rationale for j in sorted(js, key=lambda j: j.id)]


def test_to_pandas_of_export_and_report(live: Live) -> None:
    pd = pytest.importorskip("pandas")
    with live.client() as client:
        client.submit("exp-pd", pair_items(4), rubric="customer_service", **MODELS)
        frame = client.export("exp-pd").to_pandas()
        report = client.win_rate("exp-pd", group_by="category")
    assert isinstance(frame, pd.DataFrame) and list(frame["id"]) == ["p0", "p1", "p2", "p3"]
    assert list(frame["outcome"]) == ["win"] * 4
    from judge_service.client import to_pandas

    table = to_pandas(report)
    assert list(table["slice"]) == ["overall", "account", "billing"]
    assert list(table["wins"]) == [4, 2, 2] and "decisive.ft_share" in table.columns


def test_experiment_create_statuses(live: Live) -> None:
    headers = {"Authorization": f"Bearer {live.key}"}
    body = {"name": "made-by-hand", "base_model": "b-1", "ft_model": "f-1"}
    first = httpx.post(f"{live.url}/experiments", json=body, headers=headers)
    assert first.status_code == 201 and first.json()["created"] is True
    same = httpx.post(f"{live.url}/experiments", json=body, headers=headers)
    assert same.status_code == 200 and same.json()["created"] is False and same.json()["id"] == first.json()["id"]
    other = httpx.post(f"{live.url}/experiments", json={**body, "ft_model": "f-2"}, headers=headers)
    assert other.status_code == 409 and other.json()["detail"][0]["loc"] == ["body", "ft_model"]
    bad = httpx.post(f"{live.url}/experiments", json={**body, "name": "a\x00b"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "name"]
    missing = httpx.post(f"{live.url}/experiments", json={"name": "x", "base_model": "b"}, headers=headers)
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "ft_model"]


def test_export_route_edges(live: Live) -> None:
    headers = {"Authorization": f"Bearer {live.key}"}
    with live.client() as client:
        client.create_experiment("team/labels-only", **MODELS)
        client.upload_labels(
            "team/labels-only",
            [
                {
                    "pair_id": "x/1",
                    "annotator": "a",
                    "verdict": "ft",
                    "prompt": "P",
                    "base_output": "B",
                    "ft_output": "F",
                }
            ],
            source="human",
        )
        [pair] = client.export("team/labels-only")  # a name with '/', a pair id with '/', never judged
        assert (pair.id, pair.outcome, pair.judgments, pair.rationales) == ("x/1", None, 0, [])
        client.submit("paged", pair_items(7), rubric="customer_service", **MODELS)
        assert [p.id for p in client.export("paged", page_size=3)] == [f"p{i}" for i in range(7)]
    page = httpx.get(f"{live.url}/experiments/paged/export", params={"offset": 5, "limit": 10}, headers=headers)
    assert (
        page.status_code == 200
        and page.json()["total"] == 7
        and [p["id"] for p in page.json()["items"]]
        == [
            "p5",
            "p6",
        ]
    )
    bad = httpx.get(f"{live.url}/experiments/paged/export", params={"rubric": "a@vx"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "rubric"]
    missing = httpx.get(f"{live.url}/experiments/nope/export", headers=headers)
    assert missing.status_code == 404


def test_experiment_create_needs_the_submit_scope(live: Live) -> None:
    read_key = live.query(lambda s: repo.create_api_key(s, "reader", ["read"]))
    with JudgeClient(live.url, read_key) as client, pytest.raises(JudgeServiceError) as caught:
        client.create_experiment("x", **MODELS)
    assert caught.value.status == 403


def test_async_client_retries_503_with_retry_after_date() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            past = "Wed, 21 Oct 2015 07:28:00 GMT"  # an HTTP date already passed: retry at once
            return httpx.Response(503, json={"detail": "busy"}, headers={"Retry-After": past})
        if len(calls) == 2:
            return httpx.Response(429, json={"detail": "slow down"})
        body = {"experiment": "e", "sources": [], "judge_result_set": None, "comparisons": [], "fleiss": []}
        return httpx.Response(200, json=body)

    async def main() -> Any:
        transport = httpx.MockTransport(handler)
        async with AsyncJudgeClient("http://judge.invalid", "k", backoff=0.01, transport=transport) as client:
            return await client.report("agreement", experiment="e")

    report = asyncio.run(main())
    assert isinstance(report, AgreementReport) and report.experiment == "e" and len(calls) == 3
    assert calls[0].url.params["experiment"] == "e"


def test_async_client_submits_and_reads(live: Live) -> None:
    async def main() -> tuple[list[str], float | None]:
        async with AsyncJudgeClient(live.url, live.key, poll_interval=0.05) as client:
            done = await client.submit("exp-async", pair_items(4, ft_good=False), rubric="customer_service", **MODELS)
            report = await client.win_rate("exp-async")
            pairs = await client.export("exp-async")
            return [p.outcome or "" for p in pairs], report.overall.win_rate if done.results else None

    outcomes, win_rate = asyncio.run(main())
    assert outcomes == ["loss"] * 4 and win_rate == 0.0


def test_join_files_reports_one_sided_ids_and_prompt_mismatches(tmp_path: Path) -> None:
    base = tmp_path / "base.jsonl"
    ft = tmp_path / "ft.jsonl"
    base.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"id": "a", "prompt": "P", "output": "b-a", "model": "m-base", "params": {"t": 0}},
                {"id": "b", "prompt": "Q", "output": "b-b", "model": "m-base"},
                {"id": "c", "prompt": "R", "output": "b-c", "model": "m-base"},
            ]
        )
    )
    ft.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"id": "a", "prompt": "P", "base_output": "x", "ft_output": "f-a", "model": "m-ft"},
                {"id": "b", "prompt": "Q changed", "output": "f-b", "model": "m-ft"},
                {"id": "d", "prompt": "S", "output": "f-d", "model": "m-ft"},
            ]
        )
    )
    joined = join_files(base, ft)
    assert joined.items == [
        {"id": "a", "prompt": "P", "base_output": "b-a", "ft_output": "f-a", "metadata": {"base_params": {"t": 0}}}
    ]
    assert (joined.base_model, joined.ft_model) == ("m-base", "m-ft")
    assert (joined.only_base, joined.only_ft, joined.prompt_mismatch) == (["c"], ["d"], ["b"])
    assert len(joined.problems) == 3


def run_walkthrough(live: Live, out: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """The example script in its own process, as a user runs it."""
    env = {
        **os.environ,
        "JUDGE_SERVICE_URL": live.url,
        "JUDGE_SERVICE_KEY": live.key,
        "WALKTHROUGH_OUT": str(out),
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / "client_walkthrough.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def example_pairs() -> dict[str, tuple[str, str]]:
    """id -> (base output, ft output), read from the example files here, independently of the client."""
    base = {r["id"]: r["output"] for r in map(json.loads, (ROOT / "examples/base.jsonl").read_text().splitlines())}
    ft = {r["id"]: r["output"] for r in map(json.loads, (ROOT / "examples/ft.jsonl").read_text().splitlines())}
    assert set(base) == set(ft) and len(base) == 12
    return {k: (base[k], ft[k]) for k in base}


def test_walkthrough_script_with_the_fake_judge(live: Live, fake_judge: FakeJudgeServer, tmp_path: Path) -> None:
    # A judge that prefers the longer answer, so the expected outcome of each pair is known here.
    def longer(call: JudgeCall) -> Decision:
        a, b = len(call.answer_a.strip()), len(call.answer_b.strip())
        return Decision("A" if a > b else "B" if b > a else "tie")

    fake_judge.state.policy = longer
    out = tmp_path / "pairs.csv"
    done = run_walkthrough(live, out, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    pairs = example_pairs()
    expected = {k: "win" if len(f) > len(b) else "loss" for k, (b, f) in pairs.items()}
    wins = sum(v == "win" for v in expected.values())
    assert f"FT wins {wins}, ties 0, losses {12 - wins} of 12 complete pairs" in done.stdout
    assert f"win rate {100 * wins / 12:.1f}%" in done.stdout
    assert "judged 24/24 (0 failed), runs finished 3/3" in done.stdout  # the progress callback's last line
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert {r["id"]: r["outcome"] for r in rows} == expected
    assert all(r["rationales"] for r in rows)
    assert count(live, Run) == 3


@pytest.mark.vllm
def test_walkthrough_script_with_the_embedded_judge(tmp_path: Path, vllm_judge: Any) -> None:
    settings = make_settings(
        f"sqlite:///{tmp_path / 'walk.db'}",
        vllm_judge.base_url,
        vllm_judge.settings.model,
        request_timeout_s=120.0,
        max_tokens=400,
    )
    with contextlib.contextmanager(serve)(settings) as live:
        out = tmp_path / "pairs.csv"
        done = run_walkthrough(live, out, timeout=1800)
        print(done.stdout)  # the walkthrough's own report, for the record (-s)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "judged 24/24" in done.stdout
        rows = list(csv.DictReader(out.open(encoding="utf-8")))
        assert sorted(r["id"] for r in rows) == sorted(example_pairs())
        decided = [r for r in rows if r["outcome"]]
        assert len(decided) >= 9, rows  # schema-forced output: failed judgments are rare
        assert all(r["outcome"] in ("win", "tie", "loss") and r["rationales"] for r in decided)

        async def judged(session: Any) -> int:
            return int(
                (
                    await session.execute(select(func.count()).select_from(Judgment).where(Judgment.status == "done"))
                ).scalar_one()
            )

        assert sum(int(r["judgments"]) for r in rows) == live.query(judged)


@pytest.fixture
def live_any(database_url: str, fake_judge: FakeJudgeServer) -> Iterator[Live]:
    """The service on each kind of database (SQLite, and PostgreSQL when reachable)."""
    yield from serve(make_settings(database_url, fake_judge.base_url, fake_judge.state.model))


def test_create_submit_export_on_each_database(live_any: Live) -> None:
    with live_any.client() as client:
        assert client.create_experiment("db-exp", **MODELS).created
        assert not client.create_experiment("db-exp", **MODELS).created
        with pytest.raises(JudgeServiceError) as caught:
            client.create_experiment("db-exp", base_model="other", ft_model="ft-7b-sft")
        assert caught.value.status == 409
        first = client.submit("db-exp", pair_items(3), rubric="customer_service", **MODELS)
        again = client.submit("db-exp", pair_items(3), rubric="customer_service", **MODELS)
        assert again.run_ids == first.run_ids
        assert [p.outcome for p in client.export("db-exp")] == ["win"] * 3
    assert count(live_any, Run) == 1 and count(live_any, Judgment) == 6

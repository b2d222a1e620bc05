"""Rubrics added at run time (issue 10, item 6): `POST /rubrics`, `judge-service rubrics add|preview`.

A version added through the API is used by a judgment at once, and by a queue worker that was
started before it existed; other text under an existing version is a 409 with the diff.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from judge_service.cli import app
from judge_service.config import get_settings
from judge_service.store.models import Judgment, JudgmentScore, RubricVersionRow, Run
from tests.cluster import processes, service_env, spawn
from tests.conftest import (
    ROOT,
    Service,
    _pg_database,
    make_settings,
    pair_items,
    pairwise_body,
    pg_problem,
    skip_or_fail,
    start_service,
)
from tests.fake_judge import FakeJudgeServer


def rubric_text(name: str = "team_support", version: int = 1, title: str = "Zorblax clarity") -> str:
    """A rubric file in the format of `rubrics/<name>/v<N>.yaml`, with a dimension no built-in has."""
    return f"""name: {name}
version: {version}
description: A team's own rubric, added without a deploy.
prompt: pairwise@v2
decision:
  method: holistic
dimensions:
  - key: zorblax
    title: {title}
    description: Whether the answer states the fix in its first sentence.
    anchors:
      1: No fix anywhere.
      2: A fix, buried.
      3: A fix in the middle.
      4: A fix early on.
      5: The fix is the first sentence.
  - key: tone
    title: Tone
    description: Polite and calm.
    anchors:
      1: Rude.
      2: Curt.
      3: Neutral.
      4: Friendly.
      5: Warm and professional.
"""


async def add(service: Service, text: str) -> tuple[int, dict[str, object]]:
    reply = await service.http.post("/rubrics", json={"rubric_text": text}, headers=service.auth("admin"))
    return reply.status_code, reply.json()


async def test_added_rubric_judges_at_once_and_is_recorded_by_hash(service: Service) -> None:
    status, added = await add(service, rubric_text())
    assert status == 201, added
    assert added["ref"] == "team_support@v1" and added["created"] is True and added["origin"] == "added"
    body = pairwise_body(pair_items(2), experiment="runtime-rubric", rubric="team_support")
    judged = await service.http.post("/judge/pairwise", json=body, headers=service.auth("submit"))
    assert judged.status_code == 200 and judged.json()["status"] == "done", judged.text
    async with service.ctx.sessions() as session:
        judgments = (await session.execute(select(Judgment).where(Judgment.status == "done"))).scalars().all()
        rows = {j.rubric_version_id for j in judgments}
        assert len(judgments) == 4 and len(rows) == 1
        row = await session.get(RubricVersionRow, rows.pop())
        assert row is not None and row.content_hash == added["content_hash"] and row.origin == "added"
        dims = set((await session.execute(select(JudgmentScore.dimension))).scalars())
    assert dims == {"zorblax", "tone"}
    # The judge was sent the new rubric's text.
    assert all("Zorblax clarity" in (j.messages or [{}])[0]["content"] for j in judgments)
    # Listed and shown with the built-in ones.
    listing = (await service.http.get("/rubrics", headers=service.auth("read"))).json()
    mine = next(r for r in listing if r["name"] == "team_support")
    assert mine["newest"] == "team_support@v1" and mine["versions"][0]["origin"] == "added"
    assert any(r["name"] == "general" and r["versions"][0]["origin"] == "file" for r in listing)
    one = (await service.http.get("/rubrics/team_support/v1", headers=service.auth("read"))).json()
    assert one["rubric_text"] == rubric_text() and one["content_hash"] == added["content_hash"]
    assert "zorblax_a" in one["verdict_schema"]["properties"]


async def test_same_text_is_idempotent_and_other_text_is_a_409_with_the_diff(service: Service) -> None:
    assert (await add(service, rubric_text()))[0] == 201
    again_status, again = await add(service, rubric_text())
    assert again_status == 200 and again["created"] is False
    status, refused = await add(service, rubric_text(title="Zorblax brevity"))
    assert status == 409
    detail = refused["detail"][0]
    assert detail["loc"] == ["body", "rubric_text"]
    assert "-    title: Zorblax clarity\n" in detail["diff"] and "+    title: Zorblax brevity\n" in detail["diff"]
    assert "Zorblax brevity" in detail["msg"]
    # The stored version did not change.
    one = (await service.http.get("/rubrics/team_support/v1", headers=service.auth("read"))).json()
    assert "Zorblax clarity" in one["rubric_text"]


async def test_builtin_version_cannot_be_overridden(service: Service) -> None:
    builtin = (ROOT / "rubrics" / "general" / "v2.yaml").read_text(encoding="utf-8")
    same_status, same = await add(service, builtin)
    assert same_status == 200 and same["created"] is False and same["origin"] == "file"
    status, refused = await add(service, builtin.replace("Default rubric", "Changed rubric"))
    assert status == 409
    assert "+  Changed rubric" in refused["detail"][0]["diff"]


async def test_name_without_version_picks_up_a_newer_added_version(service: Service) -> None:
    assert (await add(service, rubric_text()))[0] == 201
    first = (await service.http.get("/rubrics/team_support/latest", headers=service.auth("read"))).json()
    assert first["ref"] == "team_support@v1"
    # Stored by another process: straight into SQL, not through this process's registry.
    from judge_service.rubrics.registry import RubricRegistry
    from judge_service.store.rubric_store import add_rubric

    other = RubricRegistry.load(service.settings.rubrics_dir, service.settings.prompts_dir)
    async with service.ctx.sessions() as session, session.begin():
        await add_rubric(session, other, rubric_text(version=2, title="Zorblax v2"))
    latest = (await service.http.get("/rubrics/team_support/latest", headers=service.auth("read"))).json()
    assert latest["ref"] == "team_support@v2"


@pytest.mark.parametrize(
    ("text", "loc"),
    [
        (rubric_text().replace("prompt: pairwise@v2", "prompt: pairwise@v9"), ["prompt"]),
        (rubric_text().replace("      5: Warm and professional.\n", ""), ["dimensions", 1, "anchors"]),
        (rubric_text().replace("name: team_support", "name: Team-Support"), ["name"]),
        (rubric_text().replace("description: A team", "colour: red\ndescription: A team"), ["colour"]),
        ("name: [unclosed", []),
        ("[" * 20_000, []),  # deeper than the YAML parser can recurse
        (rubric_text().replace("description: A team", "description: &d A team") + "extra: *d\n", []),  # aliases
        ("- just\n- a list\n", []),
    ],
)
async def test_invalid_rubric_is_a_422_naming_the_field(service: Service, text: str, loc: list[object]) -> None:
    status, refused = await add(service, text)
    assert status == 422, refused
    assert refused["detail"][0]["loc"] == ["body", "rubric_text", *loc]


async def test_request_bounds(service: Service) -> None:
    big = rubric_text() + "#" * 70_000
    assert (await add(service, big))[0] == 422
    assert (await add(service, "   "))[0] == 422
    assert (await add(service, rubric_text() + "\x00"))[0] == 422
    reply = await service.http.post("/rubrics", json={"rubric_text": rubric_text()}, headers=service.auth("submit"))
    assert reply.status_code == 403


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    problem = pg_problem()
    if problem:
        skip_or_fail(problem)
    async for url in _pg_database():
        yield url


@pytest.mark.postgres
async def test_worker_started_before_the_rubric_judges_with_it(
    pg_url: str, fake_judge: FakeJudgeServer, tmp_path: Path
) -> None:
    settings = make_settings(pg_url, fake_judge.base_url, "fake-judge", executor="queue", scheduler_enabled=False)
    async for svc in start_service(settings):
        env = service_env(pg_url, fake_judge.base_url, tmp_path)
        with processes() as procs:
            procs.append(spawn(["worker"], env, tmp_path / "worker.log"))
            # The worker prints "judging queue" after build_service loaded its registry: wait for that, so the
            # rubric is surely added after the registry exists (a fixed sleep could let a slow worker start later).
            log, deadline = tmp_path / "worker.log", asyncio.get_running_loop().time() + 90
            while "judging queue" not in (log.read_text(errors="replace") if log.exists() else ""):
                assert procs[0].poll() is None, log.read_text()
                assert asyncio.get_running_loop().time() < deadline, log.read_text()
                await asyncio.sleep(0.2)
            status, added = await add(svc, rubric_text())
            assert status == 201, added
            body = pairwise_body(pair_items(3), experiment="queued", rubric="team_support@v1", **{"async": True})
            submitted = await svc.http.post("/judge/pairwise", json=body, headers=svc.auth("submit"))
            assert submitted.status_code == 202, submitted.text
            run_id = submitted.json()["run_id"]
            deadline = time.monotonic() + 60
            status_now = None
            while time.monotonic() < deadline and status_now not in ("done", "failed"):
                await asyncio.sleep(0.5)
                async with svc.ctx.sessions() as session:
                    status_now = (await session.execute(select(Run.status).where(Run.id == run_id))).scalar_one()
            log = (tmp_path / "worker.log").read_text()
            assert status_now == "done", log
        async with svc.ctx.sessions() as session:
            judgments = (await session.execute(select(Judgment))).scalars().all()
            owners = {j.rubric_version_id for j in judgments}
            row = await session.get(RubricVersionRow, owners.pop())
        assert len(judgments) == 6 and all(j.status == "done" for j in judgments) and not owners
        assert row is not None and row.content_hash == added["content_hash"]
        assert all("Zorblax clarity" in (j.messages or [{}])[0]["content"] for j in judgments)


# -- the CLI ------------------------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("JUDGE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("JUDGE_RUBRICS_DIR", str(ROOT / "rubrics"))
    monkeypatch.setenv("JUDGE_PROMPTS_DIR", str(ROOT / "prompts"))
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_cli_add_then_preview(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "team_support.yaml"
    path.write_text(rubric_text(), encoding="utf-8")
    added = cli.invoke(app, ["rubrics", "add", str(path)])
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["created"] is True
    again = cli.invoke(app, ["rubrics", "add", str(path)])
    assert again.exit_code == 0 and json.loads(again.stdout)["created"] is False
    path.write_text(rubric_text(title="Other title"), encoding="utf-8")
    conflict = cli.invoke(app, ["rubrics", "add", str(path)])
    assert conflict.exit_code == 1
    assert "+    title: Other title" in conflict.stderr and "-    title: Zorblax clarity" in conflict.stderr
    path.write_text(rubric_text().replace("pairwise@v2", "nothing@v1"), encoding="utf-8")
    invalid = cli.invoke(app, ["rubrics", "add", str(path)])
    assert invalid.exit_code == 2 and "prompt" in invalid.stderr

    pair = tmp_path / "pair.json"
    pair.write_text(
        json.dumps({"prompt": "How do I reset?", "base_output": "BASE-TEXT here", "ft_output": "FT-TEXT here"}),
        encoding="utf-8",
    )
    args = ["rubrics", "preview", "team_support", "--pair", str(pair), "--seed", "7"]
    shown = cli.invoke(app, args)
    assert shown.exit_code == 0, shown.output
    out = shown.stdout
    assert "team_support@v1 (added)" in out and "Zorblax clarity" in out
    base_first, ft_first = out.split("===== order ft_first")
    assert "===== order base_first" in base_first
    # Answer A is Base in the first order and FT in the second, inside nonce-tagged blocks.
    assert re.search(r"<<<ANSWER_A (\w+)>>>\s*BASE-TEXT here\s*<<<END_ANSWER_A \1>>>", base_first)
    assert re.search(r"<<<ANSWER_A (\w+)>>>\s*FT-TEXT here\s*<<<END_ANSWER_A \1>>>", ft_first)
    assert cli.invoke(app, args).stdout == out  # the seed fixes the nonces
    unseeded = cli.invoke(app, ["rubrics", "preview", "team_support@v1", "--pair", str(pair)])
    assert unseeded.exit_code == 0 and "nonce is drawn afresh" in unseeded.stdout
    unknown = cli.invoke(app, ["rubrics", "preview", "nope", "--pair", str(pair)])
    assert unknown.exit_code == 2

    # Other commands that take a rubric see the added one too (the experiment check comes after it).
    schedule = ["schedules", "create", "--name", "s", "--experiment", "exp-x", "--interval-seconds", "3600"]
    added_ok = cli.invoke(app, [*schedule, "--rubric", "team_support@v1"])
    assert added_ok.exit_code == 2 and "no experiment 'exp-x'" in added_ok.output
    missing = cli.invoke(app, [*schedule, "--rubric", "team_support@v7"])
    assert missing.exit_code == 2 and "unknown rubric version" in missing.output
    labeling = ["labeling", "create", "--experiment", "exp-x", "--raters", "a,b"]
    task_missing = cli.invoke(app, [*labeling, "--rubric", "team_support@v7"])
    assert task_missing.exit_code == 2 and "unknown rubric version" in task_missing.output
    task_added = cli.invoke(app, [*labeling, "--rubric", "team_support@v1"])
    assert task_added.exit_code == 2 and "no experiment 'exp-x'" in task_added.output

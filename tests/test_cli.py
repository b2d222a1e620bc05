"""The `judge-service` CLI: migrations and API keys."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from judge_service.cli import app
from judge_service.config import get_settings
from tests.conftest import make_settings, pair_items, pairwise_body, start_service
from tests.fake_judge import FakeJudgeServer


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("JUDGE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_db_upgrade_and_keys(cli_env: CliRunner) -> None:
    upgraded = cli_env.invoke(app, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    created = cli_env.invoke(app, ["keys", "create", "--name", "pipeline", "--scopes", "submit,read"])
    assert created.exit_code == 0, created.output
    key = created.output.strip().splitlines()[-1]
    assert key.startswith("js_") and len(key) > 40
    prefix = key.split("_")[1]
    listed = cli_env.invoke(app, ["keys", "list"])
    assert prefix in listed.output and "pipeline" in listed.output and key not in listed.output
    assert cli_env.invoke(app, ["keys", "revoke", prefix]).exit_code == 0
    assert cli_env.invoke(app, ["keys", "revoke", prefix]).exit_code == 1
    bad = cli_env.invoke(app, ["keys", "create", "--name", "x", "--scopes", "submit,root"])
    assert bad.exit_code == 2 and "scopes" in bad.output


async def test_schedules_and_consistency_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_judge: FakeJudgeServer
) -> None:
    url = f"sqlite:///{tmp_path / 'sched.db'}"
    async for svc in start_service(make_settings(url, fake_judge.base_url, "fake-judge")):
        body = pairwise_body(pair_items(6))
        assert (await svc.http.post("/judge/pairwise", json=body, headers=svc.auth("submit"))).status_code == 200
    monkeypatch.setenv("JUDGE_DATABASE_URL", url)
    monkeypatch.setenv("JUDGE_BASE_URL", fake_judge.base_url)
    monkeypatch.setenv("JUDGE_MODEL", "fake-judge")
    monkeypatch.setenv("JUDGE_MODEL_REVISION", "test-rev")
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        # The CLI runs its own event loop; keep it off this test's loop.
        return asyncio.get_running_loop().run_in_executor(None, lambda: runner.invoke(app, list(args)))

    try:
        created = await invoke(
            "schedules",
            "create",
            "--name",
            "nightly",
            "--experiment",
            "exp-1",
            "--cron",
            "0 3 * * *",
            "--sample-size",
            "4",
        )
        assert created.exit_code == 0, created.output
        assert "nightly" in (await invoke("schedules", "list")).output
        fired = await invoke("schedules", "run", "1")
        assert fired.exit_code == 0, fired.output
        shown = await invoke("report", "--experiment", "exp-1", "--consistency")
        assert shown.exit_code == 0, shown.output
        assert "Judge consistency" in shown.output and "Re-judge history" in shown.output
        assert "100.0%" in shown.output  # position consistency and test-retest agreement of a perfect judge
        bad = await invoke("schedules", "create", "--name", "x", "--experiment", "exp-1")
        assert bad.exit_code == 2
        assert (await invoke("schedules", "delete", "1")).exit_code == 0
    finally:
        get_settings.cache_clear()

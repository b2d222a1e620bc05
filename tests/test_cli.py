"""The `judge-service` CLI: migrations and API keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from judge_service.cli import app
from judge_service.config import get_settings


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

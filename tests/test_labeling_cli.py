"""`judge-service labeling ...` and `keys create --scopes label` from the command line."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from judge_service.cli import app
from judge_service.config import get_settings
from tests.conftest import ROOT, make_settings, start_service
from tests.fake_judge import FakeJudgeServer
from tests.labeling_plan import BASE_MODEL, FT_MODEL, label_items
from tests.test_labeling import fill_sheet


async def test_labeling_workflow_from_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_judge: FakeJudgeServer
) -> None:
    url = f"sqlite:///{tmp_path / 'labeling.db'}"
    items = label_items(6)
    async for svc in start_service(make_settings(url, fake_judge.base_url, "fake-judge")):
        body = {
            "experiment": {"name": "cli-exp", "base_model": BASE_MODEL, "ft_model": FT_MODEL},
            "rubric": "copywriting",
            "items": items,
        }
        assert (await svc.http.post("/judge/pairwise", json=body, headers=svc.auth("submit"))).status_code == 200
    for name, value in {
        "JUDGE_DATABASE_URL": url,
        "JUDGE_BASE_URL": fake_judge.base_url,
        "JUDGE_MODEL": "fake-judge",
        "JUDGE_RUBRICS_DIR": str(ROOT / "rubrics"),
        "JUDGE_PROMPTS_DIR": str(ROOT / "prompts"),
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return asyncio.get_running_loop().run_in_executor(None, lambda: runner.invoke(app, list(args)))

    key = await invoke("keys", "create", "--name", "carol", "--scopes", "label")
    assert key.exit_code == 0, key.output
    created = await invoke(
        "labeling", "create", "--experiment", "cli-exp", "--raters", "alice,bob", "--sample", "stratified",
        "--n", "4", "--seed", "3", "--name", "cli-task", "--issue-keys",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    assert '"hard_taken"' in created.output and created.output.count("js_") == 2
    sheets = {}
    for rater in ("alice", "bob"):
        out = tmp_path / f"{rater}.xlsx"
        exported = await invoke("labeling", "export", "cli-task", "--rater", rater, "-o", str(out))
        assert exported.exit_code == 0, exported.output
        sheets[rater] = tmp_path / f"{rater}-filled.xlsx"
        sheets[rater].write_bytes(fill_sheet(out.read_bytes(), items, rater))
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(fill_sheet((tmp_path / "alice.xlsx").read_bytes(), items, "alice", {(2, 8): 9}))
    refused = await invoke("labeling", "import", "cli-task", str(sheets["bob"]), str(bad))
    assert refused.exit_code == 2 and "row 2 column H" in refused.output
    imported = await invoke("labeling", "import", "cli-task", str(sheets["alice"]), str(sheets["bob"]))
    assert imported.exit_code == 0, imported.output
    assert imported.output.count('"saved": 4') == 2  # bob's rows were not kept from the refused import
    again = await invoke("labeling", "import", "cli-task", str(sheets["alice"]))
    assert '"saved": 0' in again.output
    shown = await invoke("labeling", "results", "cli-task")
    assert shown.exit_code == 0, shown.output
    assert "overall" in shown.output and "8/8 labels" in shown.output
    get_settings.cache_clear()

"""AlpacaEval imports in every convention AlpacaEval uses (issue 10, item 7).

Fixtures written for these tests (tests/fixtures/alpaca_eval_*.json), one per convention:
hard 1 / 2, AlpacaEval 1's 0 for a draw (annotator `alpaca_eval_gpt4`), 1.5 for a draw, soft
preferences in [1, 2]; each has null preferences, which are dropped and counted. The expected figures
are computed here from the files' literal preferences, AlpacaEval's way: win rate = 100 * mean(p - 1)
with a draw (0 or 1.5) counted as 0.5, standard error = 100 * sample sd / sqrt(n).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from judge_service.config import get_settings
from judge_service.labels.parse import LabelFormatError, parse_alpaca_eval
from tests.conftest import Service

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CONVENTIONS = ["alpaca_eval_hard", "alpaca_eval_v1_zero_draws", "alpaca_eval_half_draws", "alpaca_eval_soft"]


def load(name: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return records


def expected(records: list[dict[str, Any]]) -> dict[str, float]:
    """AlpacaEval's figures over the literal preferences, in plain Python."""
    prefs = [r["preference"] for r in records if r["preference"] is not None]
    values = [0.5 if p == 0 else p - 1 for p in prefs]
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return {
        "n": n,
        "win_rate": 100 * mean,
        "standard_error": 100 * sd / math.sqrt(n),
        "draws": sum(1 for p in prefs if p in (0, 1.5)),
        "nulls": sum(1 for r in records if r["preference"] is None),
    }


def test_fixtures_cover_each_convention() -> None:
    prefs = {name: [r["preference"] for r in load(name)] for name in CONVENTIONS}
    assert set(prefs["alpaca_eval_hard"]) == {1, 2, None}
    zero = prefs["alpaca_eval_v1_zero_draws"]
    assert 0 in zero and any(isinstance(p, float) and p == 0.0 for p in zero) and None in zero
    assert {r["annotator"] for r in load("alpaca_eval_v1_zero_draws")} == {"alpaca_eval_gpt4"}
    assert 1.5 in prefs["alpaca_eval_half_draws"] and 0 not in prefs["alpaca_eval_half_draws"]
    soft = [p for p in prefs["alpaca_eval_soft"] if p is not None]
    assert any(p not in (1, 1.5, 2) for p in soft) and all(1 <= p <= 2 for p in soft)
    assert all(None in values for values in prefs.values())


@pytest.mark.parametrize("name", CONVENTIONS)
def test_parse_each_convention(name: str) -> None:
    records = load(name)
    want = expected(records)
    result = parse_alpaca_eval((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    assert len(result.records) == want["n"]
    assert len(result.dropped) == want["nulls"] and result.draws == want["draws"]
    assert all(reason == "preference is null" for _, reason in result.dropped)
    assert [line for line, _ in result.dropped] == [i for i, r in enumerate(records, 1) if r["preference"] is None]
    assert round(100 * sum(r.s_ft for r in result.records) / len(result.records), 4) == round(want["win_rate"], 4)


@pytest.mark.parametrize("value", [0, 0.0, -0.0])
def test_zero_is_a_draw(value: float) -> None:
    item = {"instruction": "q", "output_1": "a", "output_2": "b", "preference": value}
    result = parse_alpaca_eval(json.dumps([item]))
    assert [r.s_ft for r in result.records] == [0.5] and result.draws == 1


@pytest.mark.parametrize("value", [0.5, 0.999, 2.001, -1, 1e-9])
def test_other_values_outside_one_two_are_refused(value: float) -> None:
    item = {"instruction": "q", "output_1": "a", "output_2": "b", "preference": value}
    with pytest.raises(LabelFormatError) as info:
        parse_alpaca_eval(json.dumps([item]))
    assert info.value.field == "preference" and "or 0 (a draw)" in str(info.value)


@pytest.mark.parametrize("name", CONVENTIONS)
async def test_import_and_report_reproduce_alpaca_eval(service: Service, name: str) -> None:
    records = load(name)
    want = expected(records)
    upload = {"source": "alpaca_eval", "format": "alpaca_eval", "records": records}
    reply = await service.http.post(f"/experiments/{name}/labels", json=upload, headers=service.auth("submit"))
    assert reply.status_code == 200, reply.text
    summary = reply.json()
    assert summary["records"] == want["n"] and summary["pairs_created"] == want["n"]
    assert summary["nulls_dropped"] == want["nulls"] == len(summary["dropped"]) and summary["draws"] == want["draws"]
    rep = await service.http.get(
        "/reports/win-rate", params={"experiment": name, "source": "alpaca_eval"}, headers=service.auth("read")
    )
    assert rep.status_code == 200, rep.text
    overall = rep.json()["overall"]
    assert overall["n_pairs"] == want["n"]
    assert round(overall["win_rate"], 4) == round(want["win_rate"], 4)
    assert round(overall["standard_error"], 4) == round(want["standard_error"], 4)


def test_cli_imports_zero_draws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from judge_service.cli import app

    monkeypatch.setenv("JUDGE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    get_settings.cache_clear()
    try:
        path = FIXTURES / "alpaca_eval_v1_zero_draws.json"
        args = ["labels", "import", str(path), "--experiment", "ae1", "--source", "ae", "--format", "alpaca_eval"]
        imported = CliRunner().invoke(app, args)
        assert imported.exit_code == 0, imported.output
        summary = json.loads(imported.stdout)
        want = expected(load("alpaca_eval_v1_zero_draws"))
        assert (summary["draws"], summary["nulls_dropped"], summary["records"]) == (
            want["draws"],
            want["nulls"],
            want["n"],
        )
        out = tmp_path / "report.json"
        shown = CliRunner().invoke(app, ["report", "--experiment", "ae1", "--source", "ae", "--json", str(out)])
        assert shown.exit_code == 0, shown.output
        overall = json.loads(out.read_text())["overall"]
        assert round(overall["win_rate"], 4) == round(want["win_rate"], 4)
    finally:
        get_settings.cache_clear()

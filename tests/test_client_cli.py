"""CLI file workflows (`submit`, `export`, `experiments create`) and labels for pairs never judged."""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from judge_service.cli import app
from judge_service.config import get_settings
from tests.conftest import make_settings
from tests.fake_judge import FakeJudgeServer
from tests.test_client import Live, serve

VERDICT_SCORE = {"base": 0.0, "tie": 0.5, "ft": 1.0}


@pytest.fixture
def live(tmp_path: Path, fake_judge: FakeJudgeServer) -> Iterator[Live]:
    """The service on a temp SQLite file, judging with the fake judge."""
    settings = make_settings(f"sqlite:///{tmp_path / 'cli.db'}", fake_judge.base_url, fake_judge.state.model)
    yield from serve(settings)


@pytest.fixture
def cli(live: Live, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """A CLI runner pointed at the live service (API) and its database (direct commands)."""
    monkeypatch.setenv("JUDGE_SERVICE_URL", live.url)
    monkeypatch.setenv("JUDGE_SERVICE_KEY", live.key)
    monkeypatch.setenv("JUDGE_DATABASE_URL", live.settings.database_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def outputs(n: int, model: str, good: bool) -> list[dict[str, Any]]:
    """One file's `{id, prompt, output, model, params}` lines; the fake judge prefers the GOOD answers."""
    word = "GOOD" if good else "weak"
    return [
        {"id": f"q{i}", "prompt": f"Question {i}?", "output": f"{word} answer {i}", "model": model, "params": {"t": 0}}
        for i in range(n)
    ]


def test_submit_refuses_files_that_do_not_join(cli: CliRunner, tmp_path: Path) -> None:
    base = outputs(4, "m-base", good=False)
    ft = outputs(4, "m-ft", good=True)
    ft[1]["prompt"] = "Another question?"
    ft.append({"id": "extra", "prompt": "Only here?", "output": "x", "model": "m-ft"})
    args = ["submit", "--base", str(write_jsonl(tmp_path / "b.jsonl", base[:3])), "--ft"]
    args += [str(write_jsonl(tmp_path / "f.jsonl", ft)), "--experiment", "e", "--rubric", "customer_service"]
    result = cli.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "1 id(s) with different prompts: q1" in result.output
    assert "2 id(s) only in the FT file: q3, extra" in result.output
    two_models = outputs(2, "m-base", good=False)
    two_models[1]["model"] = "m-other"
    write_jsonl(tmp_path / "b2.jsonl", two_models)
    result = cli.invoke(app, [*args[:2], str(tmp_path / "b2.jsonl"), *args[3:]])
    assert result.exit_code == 2 and "one model per file" in result.output


def test_submit_then_export_csv_and_jsonl(cli: CliRunner, live: Live, tmp_path: Path) -> None:
    base = write_jsonl(tmp_path / "base.jsonl", outputs(5, "m-base", good=False))
    ft_rows = outputs(5, "m-ft", good=True)
    ft_rows[4]["output"] = "weak answer 4"  # neither GOOD: a tie
    ft = write_jsonl(tmp_path / "ft.jsonl", ft_rows)
    args = ["submit", "--base", str(base), "--ft", str(ft), "--experiment", "files", "--rubric", "customer_service"]
    result = cli.invoke(app, [*args, "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    assert "5 pairs: m-base (Base) vs m-ft (FT)" in result.output
    assert "judging" in result.output and "10/10" in result.output  # the progress bar, finished
    assert "FT wins 4, ties 1, losses 0" in result.output
    experiments = httpx.get(f"{live.url}/experiments", headers={"Authorization": f"Bearer {live.key}"}).json()
    assert [(e["name"], e["base_model"], e["ft_model"], e["pairs"]) for e in experiments] == [
        ("files", "m-base", "m-ft", 5)
    ]
    exported = cli.invoke(app, ["export", "--experiment", "files", "--format", "csv"])
    assert exported.exit_code == 0, exported.output
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [(r["id"], r["outcome"]) for r in rows] == [(f"q{i}", "win") for i in range(4)] + [("q4", "tie")]
    assert rows[0]["ft_output"] == "GOOD answer 0" and rows[0]["accuracy_ft"] == "5.0"
    out = tmp_path / "pairs.jsonl"
    assert cli.invoke(app, ["export", "--experiment", "files", "--format", "jsonl", "-o", str(out)]).exit_code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["outcome"] for line in lines] == ["win"] * 4 + ["tie"]
    assert all(len(line["rationales"]) == 2 and line["judgments"] == 2 for line in lines)
    missing = cli.invoke(app, ["export", "--experiment", "nope"])
    assert missing.exit_code == 1 and "no experiment 'nope'" in missing.output


def test_params_in_the_files_feed_the_generation_check(cli: CliRunner, live: Live, tmp_path: Path) -> None:
    """A line's decoding params become the pair's generation settings: a temperature that differs on
    2 of 5 pairs is a generation_mismatch on exactly those, and a file without params is unknown."""
    base_rows = outputs(5, "m-base", good=False)
    ft_rows = outputs(5, "m-ft", good=True)
    for i, (b, f) in enumerate(zip(base_rows, ft_rows, strict=True)):
        b["params"] = {"temperature": 0.7, "max_new_tokens": 256, "top_k": 50}
        f["params"] = {"temperature": 1.0 if i < 2 else 0.7, "max_tokens": 256, "top_k": 50}
    args = ["submit", "--base", str(write_jsonl(tmp_path / "b.jsonl", base_rows)), "--ft"]
    args += [str(write_jsonl(tmp_path / "f.jsonl", ft_rows)), "--experiment", "gen", "--rubric", "customer_service"]
    assert (result := cli.invoke(app, args)).exit_code == 0, result.output
    headers = {"Authorization": f"Bearer {live.key}"}
    report = httpx.get(f"{live.url}/reports/win-rate", params={"experiment": "gen"}, headers=headers).json()
    generation = report["generation"]
    assert (generation["matched_pairs"], generation["mismatched_pairs"], generation["unknown_pairs"]) == (3, 2, 0)
    assert generation["differing_fields"] == {"temperature": 2}
    assert generation["fields"]["max_tokens"] == {"equal": 5, "different": 0, "unknown": 0}
    codes = [w["code"] for w in report["overall"]["warnings"]]
    assert "generation_mismatch" in codes

    plain = ["submit", "--base", str(write_jsonl(tmp_path / "b2.jsonl", outputs(3, "m-base", good=False))), "--ft"]
    plain += [str(write_jsonl(tmp_path / "f2.jsonl", outputs(3, "m-ft", good=True))), "--experiment", "nogen"]
    assert (result := cli.invoke(app, [*plain, "--rubric", "customer_service"])).exit_code == 0, result.output
    report = httpx.get(f"{live.url}/reports/win-rate", params={"experiment": "nogen"}, headers=headers).json()
    assert report["generation"]["unknown_pairs"] == 3 and report["generation"]["matched_pairs"] == 0


def human_labels(n: int, seed: int) -> tuple[list[dict[str, Any]], dict[str, dict[str, str]]]:
    """Two annotators' verdicts on n pairs never judged (texts included), and the verdicts by annotator."""
    rng = random.Random(seed)
    lines: list[dict[str, Any]] = []
    verdicts: dict[str, dict[str, str]] = {"alice": {}, "bob": {}}
    for i in range(n):
        alice = rng.choice(["base", "ft", "ft", "tie"])
        bob = alice if rng.random() < 0.7 else rng.choice(["base", "ft", "tie"])
        for annotator, verdict in (("alice", alice), ("bob", bob)):
            verdicts[annotator][f"h{i}"] = verdict
            lines.append(
                {
                    "pair_id": f"h{i}",
                    "annotator": annotator,
                    "verdict": verdict,
                    "prompt": f"Human-rated prompt {i}",
                    "base_output": f"base answer {i}",
                    "ft_output": f"fine-tuned answer {i}",
                }
            )
    return lines, verdicts


def expected_agreement(a: dict[str, str], b: dict[str, str]) -> tuple[float, float]:
    """Raw agreement and Cohen's kappa, by hand."""
    ids = sorted(a)
    n = len(ids)
    observed = sum(a[i] == b[i] for i in ids) / n
    cats = ("base", "tie", "ft")
    chance = sum((sum(a[i] == c for i in ids) / n) * (sum(b[i] == c for i in ids) / n) for c in cats)
    return observed, (observed - chance) / (1 - chance)


def agreement(live: Live, experiment: str) -> dict[str, Any]:
    reply = httpx.get(
        f"{live.url}/reports/agreement",
        params={"experiment": experiment},
        headers={"Authorization": f"Bearer {live.key}"},
    )
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def check_agreement(report: dict[str, Any], verdicts: dict[str, dict[str, str]]) -> None:
    observed, kappa = expected_agreement(verdicts["alice"], verdicts["bob"])
    assert report["sources"] == ["human"] and report["judge_result_set"] is None
    [row] = report["comparisons"]
    assert (row["a"], row["b"], row["n"]) == ("human:alice", "human:bob", 100)
    assert row["agreement"] == pytest.approx(observed)
    assert row["cohen_kappa"] == pytest.approx(kappa)


def test_labels_for_never_judged_pairs_into_a_new_experiment(cli: CliRunner, live: Live, tmp_path: Path) -> None:
    lines, verdicts = human_labels(100, seed=7)
    people = write_jsonl(tmp_path / "people.jsonl", [{k: v for k, v in r.items()} for r in lines])
    # The failing command: still refused, but the message says what to do.
    refused = cli.invoke(app, ["labels", "import", str(people), "--experiment", "new-exp", "--source", "human"])
    assert refused.exit_code == 2 and "give its Base and FT models" in refused.output

    # Way 1: `experiments create`, then the import.
    created = cli.invoke(app, ["experiments", "create", "new-exp", "--base-model", "m-base", "--ft-model", "m-ft"])
    assert created.exit_code == 0 and "created experiment 'new-exp'" in created.output, created.output
    again = cli.invoke(app, ["experiments", "create", "new-exp", "--base-model", "m-base", "--ft-model", "m-ft"])
    assert again.exit_code == 0 and "exists:" in again.output
    clash = cli.invoke(app, ["experiments", "create", "new-exp", "--base-model", "m-base", "--ft-model", "other"])
    assert clash.exit_code == 1 and "exists with ft_model 'm-ft'" in clash.output
    imported = cli.invoke(app, ["labels", "import", str(people), "--experiment", "new-exp", "--source", "human"])
    assert imported.exit_code == 0, imported.output
    summary = json.loads(imported.stdout)
    assert (summary["pairs_created"], summary["inserted"], summary["pairs_labelled"]) == (100, 200, 100)
    check_agreement(agreement(live, "new-exp"), verdicts)

    # Way 2: `labels import --base-model --ft-model` creates it.
    args = ["labels", "import", str(people), "--experiment", "other-exp", "--source", "human"]
    made = cli.invoke(app, [*args, "--base-model", "m-base", "--ft-model", "m-ft"])
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["pairs_created"] == 100
    check_agreement(agreement(live, "other-exp"), verdicts)
    wrong = cli.invoke(app, [*args, "--base-model", "m-base", "--ft-model", "m-x"])
    assert wrong.exit_code == 2 and "exists with ft_model" in wrong.output
    half = cli.invoke(app, [*args, "--base-model", "m-base"])
    assert half.exit_code == 2 and "--ft-model" in half.output

    # Way 3: the Python client (POST /experiments, then the labels in batches).
    with live.client() as client:
        summaries = client.upload_labels(
            "client-exp", lines, source="human", base_model="m-base", ft_model="m-ft", batch_size=64
        )
        assert sum(s.inserted for s in summaries) == 200 and len(summaries) == 4
        check_agreement(client.agreement("client-exp").model_dump(), verdicts)
        again_summaries = client.upload_labels("client-exp", lines, source="human")
        assert sum(s.inserted for s in again_summaries) == 0  # idempotent


def test_experiments_create_through_the_api(cli: CliRunner, live: Live) -> None:
    create = ["experiments", "create", "remote", "--base-model", "b", "--url", live.url]
    made = cli.invoke(app, [*create, "--ft-model", "f"])
    assert made.exit_code == 0 and "created experiment 'remote'" in made.output, made.output
    clash = cli.invoke(app, [*create, "--ft-model", "g"])
    assert clash.exit_code == 1 and "409" in clash.output and "exists with ft_model 'f'" in clash.output
    bad = cli.invoke(app, ["experiments", "create", "bad\x01name", "--base-model", "b", "--ft-model", "f"])
    assert bad.exit_code == 2

"""The main job: judge the example data set end to end with the embedded default judge.

Prepares the judge model, starts vLLM and the API (SQLite), submits the examples through
`POST /judge/pairwise`, prints a summary per experiment, and stops what it started.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from judge_service.config import Settings, get_settings
from judge_service.engine.vllm_metrics import read_prefix_cache
from judge_service.judge_model.prepare import is_prepared, prepare
from judge_service.judge_model.serve import VllmServer, stop_pid
from judge_service.stats.agreement import pairwise_agreement, verdict_of_score
from judge_service.stats.winrate import win_rate
from judge_service.ui import make_console

console = make_console()
BATCH = 8
RUBRIC_BY_CATEGORY = {"customer_service": "customer_service", "copywriting": "copywriting"}


@dataclass
class ExperimentTally:
    """What one experiment's batches returned."""

    name: str
    rubric: str
    mode: str = "reasoned"
    item_scores: dict[str, float] = field(default_factory=dict)

    @property
    def scores(self) -> list[float]:
        """Pair scores of the items that have one."""
        return list(self.item_scores.values())

    inconsistent: int = 0
    failed: int = 0
    pairs: int = 0
    seconds: float = 0.0


def load_examples(path: Path) -> list[dict[str, Any]]:
    """Read the JSONL example set."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _item(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "prompt": row["prompt"],
        "base_output": row["base_output"],
        "ft_output": row["ft_output"],
        "reference": row.get("reference"),
        "tags": row.get("tags", {}),
        "metadata": row.get("metadata", {}),
    }


def start_api(settings: Settings, workdir: Path, port: int) -> subprocess.Popen[bytes]:
    """Start `judge-service serve` as a child process on SQLite."""
    env = dict(os.environ)
    env["JUDGE_DATABASE_URL"] = settings.database_url
    env["JUDGE_BASE_URL"] = settings.base_url
    log = (workdir / "api.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "judge_service.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_api(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 120.0) -> None:
    """Poll /healthz until the API and its judge are ready."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited with code {proc.returncode}; see its log")
        try:
            reply = httpx.get(f"{url}/healthz", timeout=5.0)
            if reply.status_code == 200:
                return
            last = reply.text
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.5)
    raise TimeoutError(f"API not healthy after {timeout_s:.0f}s: {last}")


def create_demo_key(settings: Settings) -> str:
    """A key for the demo's own calls (it also stores a schedule), made the way `keys create` makes one."""
    from judge_service.store import db, repo

    return asyncio.run(
        db.in_transaction(settings.database_url, lambda s: repo.create_api_key(s, "demo", ["submit", "read", "admin"]))
    )


async def _send_batch(
    client: httpx.AsyncClient, tally: ExperimentTally, batch: list[dict[str, Any]], index: int
) -> None:
    body = {
        "experiment": {
            "name": tally.name,
            "base_model": "larkspur-assistant-base",
            "ft_model": "larkspur-assistant-sft",
            "metadata": {"source": "examples/pairs.jsonl"},
        },
        "rubric": tally.rubric,
        "options": {"mode": tally.mode},
        "items": [_item(r) for r in batch],
    }
    # A fixed Idempotency-Key per batch: running the demo again replays stored answers.
    idempotency_key = f"{tally.name}-{tally.mode}-batch-{index}"
    reply = await client.post("/judge/pairwise", json=body, headers={"Idempotency-Key": idempotency_key})
    if reply.status_code != 200:
        raise RuntimeError(f"batch {index} of {tally.name}: HTTP {reply.status_code}: {reply.text}")
    for item in reply.json()["items"]:
        tally.pairs += 1
        tally.failed += len(item["failed"])
        tally.inconsistent += bool(item["inconsistent"])
        if item["score"] is not None:
            tally.item_scores[item["id"]] = item["score"]


async def submit_all(
    url: str, key: str, examples: list[dict[str, Any]], mode: str = "reasoned"
) -> list[ExperimentTally]:
    """Submit every experiment's examples in synchronous batches, with a progress bar."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in examples:
        groups.setdefault(row["category"], []).append(row)
    tallies = []
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )
    # Two batches in flight keep the judge's batch full while each answer stays small.
    limit = asyncio.Semaphore(2)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=900.0) as client:
        with progress:
            for category, rows in groups.items():
                rubric = RUBRIC_BY_CATEGORY.get(category, "general")
                tally = ExperimentTally(f"demo-{category.replace('_', '-')}", rubric, mode)
                task = progress.add_task(f"{tally.name} ({tally.rubric}, {mode})", total=len(rows))
                started = time.perf_counter()

                async def guarded(
                    batch: list[dict[str, Any]], index: int, tally: ExperimentTally, task: TaskID
                ) -> None:
                    async with limit:
                        await _send_batch(client, tally, batch, index)
                    progress.advance(task, len(batch))

                batches = [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]
                await asyncio.gather(*(guarded(b, i, tally, task) for i, b in enumerate(batches)))
                tally.seconds = time.perf_counter() - started
                tallies.append(tally)
    return tallies


async def fetch_conclusions(url: str, key: str, tallies: list[ExperimentTally]) -> dict[tuple[str, str], str]:
    """Each experiment's report conclusion and warning codes (GET /reports/win-rate), per mode."""
    out: dict[tuple[str, str], str] = {}
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120.0) as client:
        for t in tallies:
            reply = await client.get("/reports/win-rate", params={"experiment": t.name, "mode": t.mode})
            if reply.status_code != 200:
                out[(t.name, t.mode)] = "n/a"
                continue
            overall = reply.json()["overall"]
            codes = ", ".join(w["code"] for w in overall["warnings"] if w["blocking"])
            out[(t.name, t.mode)] = overall["conclusion"] + (f" ({codes})" if codes else "")
    return out


def print_summary(tallies: list[ExperimentTally], conclusions: dict[tuple[str, str], str] | None = None) -> None:
    """One row per experiment: pairs, FT wins/ties/losses, win rate with CI, failures, time."""
    table = Table(title="FT vs Base on the example set (judge: embedded SmolLM2-135M, both orders)")
    for column in (
        "experiment",
        "mode",
        "rubric",
        "pairs",
        "FT wins",
        "ties",
        "FT losses",
        "win rate [95% CI]",
        "inconsistent",
        "failed judgments",
        "time",
        "conclusion (blocking warnings)",
    ):
        table.add_column(column, justify="left" if column in ("experiment", "rubric") else "right")
    for t in tallies:
        wr = win_rate(t.scores)
        rate = f"{wr.win_rate:.1f} [{wr.ci_low:.1f}, {wr.ci_high:.1f}]" if wr.n else "n/a"
        table.add_row(
            t.name,
            t.mode,
            t.rubric,
            str(t.pairs),
            str(wr.wins),
            str(wr.ties),
            str(wr.losses),
            rate,
            str(t.inconsistent),
            str(t.failed),
            f"{t.seconds:.1f}s",
            (conclusions or {}).get((t.name, t.mode), "–"),
        )
    console.print(table)


def print_fast_vs_reasoned(reasoned: list[ExperimentTally], fast: list[ExperimentTally]) -> None:
    """Pair-level agreement between the two modes, and judge calls per second of each."""
    table = Table(title="Fast (verdict-token logprobs) vs reasoned mode, same pairs and judge")
    for column in ("experiment", "pairs", "agreement", "Cohen κ", "reasoned calls/s", "fast calls/s"):
        table.add_column(column, justify="left" if column == "experiment" else "right")
    for r, f in zip(reasoned, fast, strict=True):
        common = sorted(set(r.item_scores) & set(f.item_scores))
        result = pairwise_agreement(
            [verdict_of_score(r.item_scores[i]) for i in common], [verdict_of_score(f.item_scores[i]) for i in common]
        )
        kappa = "–" if result.cohen_kappa is None else f"{result.cohen_kappa:.2f}"
        table.add_row(
            r.name,
            str(len(common)),
            f"{100 * result.agreement:.1f}%" if common else "–",
            kappa,
            f"{2 * r.pairs / r.seconds:.2f}" if r.seconds else "–",
            f"{2 * f.pairs / f.seconds:.2f}" if f.seconds else "–",
        )
    console.print(table)


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


async def rejudge_once(url: str, key: str, experiments: list[str]) -> None:
    """Store a nightly re-judge schedule for the demo experiments and fire it once now."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=900.0) as client:
        spec = {"name": "demo-nightly", "experiments": experiments, "sample_size": 12, "cron": "0 3 * * *"}
        reply = await client.post("/schedules", json=spec)
        if reply.status_code == 409:  # the demo ran before: reuse its schedule
            schedule = next(s for s in (await client.get("/schedules")).json() if s["name"] == "demo-nightly")
        else:
            reply.raise_for_status()
            schedule = reply.json()
        fired = await client.post(f"/schedules/{schedule['id']}/run")
        fired.raise_for_status()
        with console.status("re-judging a sample of 12 pairs per experiment (test-retest)"):
            for run_id in fired.json()["run_ids"]:
                while (await client.get(f"/runs/{run_id}")).json()["status"] not in ("done", "failed"):  # noqa: ASYNC110 - polling the HTTP API
                    await asyncio.sleep(1.0)
        table = Table(title="Consistency of the judge (API: /reports/consistency, /reports/rejudge)")
        columns = ("experiment", "position consistency", "slot-A rate", "re-judge agreement", "re-judge κ", "alerts")
        for column in columns:
            table.add_column(column, justify="left" if column == "experiment" else "right")
        for name in experiments:
            cons = (await client.get("/reports/consistency", params={"experiment": name})).json()
            history = (await client.get("/reports/rejudge", params={"experiment": name})).json()
            last = history["runs"][-1] if history["runs"] else {}
            kappa = last.get("cohen_kappa")
            table.add_row(
                name,
                _percent(cons.get("position_consistency")),
                _percent(cons.get("position_bias", {}).get("slot_a_rate")),
                _percent(last.get("agreement")),
                "– (undefined)" if kappa is None else f"{kappa:.2f}",
                ", ".join(a["kind"] for a in last.get("alerts", [])) or "none",
            )
        console.print(table)


def run_demo(data: Path, workdir: Path, api_port: int) -> int:
    """Run the main job; returns the process exit code."""
    workdir.mkdir(parents=True, exist_ok=True)
    base = get_settings()
    database_url = os.environ.get("JUDGE_DATABASE_URL") or f"sqlite:///{(workdir / 'judge.db').resolve()}"
    settings = base.model_copy(update={"database_url": Settings(database_url=database_url).database_url})
    settings = settings.model_copy(update={"base_url": f"http://127.0.0.1:{settings.vllm_port}/v1"})
    examples = load_examples(data)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if not is_prepared(settings.model_dir):
        with console.status("preparing the judge model (once)"):
            prepare(settings.model_dir)
    timings["prepare"] = time.perf_counter() - t0
    api: subprocess.Popen[bytes] | None = None
    t0 = time.perf_counter()
    server = VllmServer(settings, log_path=workdir / "vllm.log")
    console.print(server.summary)
    with console.status("starting vLLM (CPU) with the judge model"):
        server.start()
    timings["vllm_ready"] = time.perf_counter() - t0
    try:
        key = create_demo_key(settings)
        url = f"http://127.0.0.1:{api_port}"
        api = start_api(settings, workdir, api_port)
        wait_api(url, api)
        console.print(f"API at {url} (docs at {url}/docs), database {settings.database_url}")
        root = server.base_url.removesuffix("/v1")
        cache = [read_prefix_cache(root)]
        t0 = time.perf_counter()
        tallies = asyncio.run(submit_all(url, key, examples))
        timings["judging"] = time.perf_counter() - t0
        cache.append(read_prefix_cache(root))
        t0 = time.perf_counter()
        fast = asyncio.run(submit_all(url, key, examples, mode="fast"))
        timings["judging_fast"] = time.perf_counter() - t0
        cache.append(read_prefix_cache(root))
        print_summary(tallies + fast, asyncio.run(fetch_conclusions(url, key, tallies + fast)))
        print_fast_vs_reasoned(tallies, fast)
        console.print(
            f"judge {server.dtype.dtype}: reasoned {timings['judging']:.1f}s, fast {timings['judging_fast']:.1f}s; "
            f"prefix-cache hit rate (vLLM /metrics) reasoned {_percent(cache[1].hit_rate_since(cache[0]))}, "
            f"fast {_percent(cache[2].hit_rate_since(cache[1]))}"
        )
        asyncio.run(rejudge_once(url, key, [t.name for t in tallies]))
        console.print(
            f"model preparation {timings['prepare']:.1f}s, vLLM ready {timings['vllm_ready']:.1f}s, "
            f"judging {len(examples)} pairs (reasoned) {timings['judging']:.1f}s; logs in {workdir}/"
        )
        console.print(
            f"Dashboard: run `make dashboard`, open {url}/dashboard?experiment={tallies[0].name} and enter this "
            f"key (scopes submit, read, admin):\n{key}"
        )
        console.print(
            f"CLI: JUDGE_DATABASE_URL={settings.database_url} .venv/bin/judge-service report "
            f"--experiment {tallies[0].name} --consistency"
        )
        return 0
    except Exception as exc:  # noqa: BLE001 - report and still stop what we started
        console.print(f"[red]demo failed: {exc}[/red]")
        return 1
    finally:
        if api is not None:
            stop_pid(api.pid)
        server.stop()

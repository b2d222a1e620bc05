"""Benchmark: the win-rate report over 1,000,000 judgments (500,000 pairs x 2 orders, 6 dimensions).

Seeds the data in bulk (COPY on PostgreSQL, executemany on SQLite), rebuilds the report rollups
from the pair results, checks the report against
numbers computed directly from the seeded arrays, then times `GET /reports/win-rate` through the
ASGI app and prints the median next to the 300 ms limit.

    .venv/bin/python bench/winrate_report.py [--pairs 500000] [--calls 15] [--backends sqlite,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
import statsmodels.api as sm  # type: ignore[import-untyped]
from rich.console import Console
from rich.table import Table
from scipy.special import expit
from statsmodels.stats.proportion import proportion_confint

from judge_service.api.app import create_app
from judge_service.config import Settings
from judge_service.rubrics.models import FAILURE_TAGS
from judge_service.store import db, repo

LIMIT_MS = 300.0
TIE_MARGIN = 0.1  # the default JUDGE_TIE_MARGIN
DIMS = ["helpfulness", "correctness", "completeness", "instruction_following", "harmlessness", "format"]
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
console = Console(width=140)
ROOT = Path(__file__).resolve().parent.parent


def synthesize(n_pairs: int, seed: int = 7) -> dict[str, Any]:
    """Judgments and the pair results they imply (docs/statistics.md definitions), as numpy arrays.

    One repeat per order, both orders valid: every pair is complete and its score is the mean of its two orders.
    """
    rng = np.random.default_rng(seed)
    quality = rng.normal(0.3, 1.0, n_pairs)  # FT somewhat better on average
    orders = np.array([0, 1])  # 0 = base_first, 1 = ft_first
    ft_wins = np.empty((n_pairs, 2), dtype=np.int8)  # 1 ft, 0 base, 2 tie
    for o in orders:
        noise = quality + rng.normal(0, 1.0, n_pairs) + (0.4 if o == 1 else -0.4)  # position bias towards A
        ft_wins[:, o] = np.where(noise > 0.3, 1, np.where(noise < -0.3, 0, 2))
    s_ft = np.where(ft_wins == 1, 1.0, np.where(ft_wins == 0, 0.0, 0.5))
    base_scores = rng.integers(1, 6, (n_pairs, 2, len(DIMS)))
    ft_scores = np.clip(base_scores + np.round(quality[:, None, None] + rng.normal(0, 1, base_scores.shape)), 1, 5)
    ft_scores = ft_scores.astype(np.int64)
    slot_a_is_ft = np.broadcast_to(orders == 1, (n_pairs, 2))
    winner_slot = np.where(ft_wins == 2, "tie", np.where((ft_wins == 1) == slot_a_is_ft, "A", "B"))
    base_len = rng.integers(50, 1500, n_pairs)
    ft_len = rng.integers(50, 1500, n_pairs)
    tags_base = rng.integers(0, 1 << len(FAILURE_TAGS), n_pairs) * (rng.random(n_pairs) < 0.2)
    tags_ft = rng.integers(0, 1 << len(FAILURE_TAGS), n_pairs) * (rng.random(n_pairs) < 0.2)
    score = s_ft.mean(axis=1)
    inconsistent = np.minimum(s_ft[:, 0], s_ft[:, 1]) < 0.5
    inconsistent &= np.maximum(s_ft[:, 0], s_ft[:, 1]) > 0.5

    def verdict(x: np.ndarray) -> np.ndarray:
        return np.sign(x - 0.5)

    agree = verdict(s_ft[:, 0]) == verdict(s_ft[:, 1])
    a_picks = (winner_slot == "A").sum(axis=1)
    decisive = (winner_slot != "tie").sum(axis=1)
    base_mean = base_scores.mean(axis=1)
    ft_mean = ft_scores.mean(axis=1)
    dim_score = np.where(ft_scores > base_scores, 1.0, np.where(ft_scores < base_scores, 0.0, 0.5)).mean(axis=1)
    return {
        "n": n_pairs,
        "s_ft": s_ft,
        "winner_slot": winner_slot,
        "ft_wins": ft_wins,
        "base_scores": base_scores,
        "ft_scores": ft_scores,
        "base_len": base_len,
        "ft_len": ft_len,
        "tags_base": tags_base,
        "tags_ft": tags_ft,
        "score": score,
        "inconsistent": inconsistent,
        "agree": agree,
        "a_picks": a_picks,
        "decisive": decisive,
        "base_mean": base_mean,
        "ft_mean": ft_mean,
        "dim_score": dim_score,
    }


def rows(data: dict[str, Any]) -> dict[str, Any]:
    """Row generators per table, ids starting at 1, in each table's column order."""
    n = data["n"]
    now = datetime.now(UTC)
    side = {1: "ft", 0: "base", 2: "tie"}
    order_names = ("base_first", "ft_first")

    def pairs() -> Any:
        for i in range(n):
            yield (
                i + 1,
                1,
                f"p{i}",
                f"prompt {i}",
                "b" * int(data["base_len"][i]),
                "f" * int(data["ft_len"][i]),
                None,
                f'{{"topic": "t{i % 7}"}}',
                "{}",
                f"{i:064d}",
                None,
                now,
            )

    def judgments() -> Any:
        for i in range(n):
            for o in range(2):
                jid = 2 * i + o + 1
                yield (
                    jid,
                    f"{jid:064d}",
                    i + 1,
                    1,
                    1,
                    None,
                    "judge",
                    "reasoned",
                    order_names[o],
                    0,
                    0,
                    "done",
                    str(data["winner_slot"][i, o]),
                    side[int(data["ft_wins"][i, o])],
                    side[int(data["ft_wins"][i, o])],
                    float(data["s_ft"][i, o]),
                    "r",
                    "[]",
                    "[]",
                    "{}",
                    None,
                    None,
                    None,
                    900,
                    100,
                    50.0,
                    1,
                    now,
                    now,
                )

    def scores() -> Any:
        for i in range(n):
            for o in range(2):
                for d, name in enumerate(DIMS):
                    yield (2 * i + o + 1, name, int(data["base_scores"][i, o, d]), int(data["ft_scores"][i, o, d]))

    def pair_results() -> Any:
        for i in range(n):
            yield (
                1,
                i + 1,
                float(data["score"][i]),
                2,
                0,
                float(data["s_ft"][i, 0]),
                float(data["s_ft"][i, 1]),
                bool(data["inconsistent"][i]),
                bool(data["agree"][i]),
                int(data["a_picks"][i]),
                int(data["decisive"][i]),
                int(data["tags_base"][i]),
                int(data["tags_ft"][i]),
                int(data["base_len"][i]),
                int(data["ft_len"][i]),
                now,
            )

    def dim_results() -> Any:
        for i in range(n):
            for d, name in enumerate(DIMS):
                yield (
                    1,
                    name,
                    i + 1,
                    float(data["base_mean"][i, d]),
                    float(data["ft_mean"][i, d]),
                    float(data["dim_score"][i, d]),
                    2,
                )

    return {
        "pairs": pairs,
        "judgments": judgments,
        "judgment_scores": scores,
        "pair_results": pair_results,
        "pair_dimension_results": dim_results,
    }


COLUMNS = {
    "pairs": [
        "id",
        "experiment_id",
        "external_id",
        "prompt",
        "base_output",
        "ft_output",
        "reference",
        "tags",
        "metadata",
        "content_hash",
        "texts_hash",
        "created_at",
    ],
    "judgments": [
        "id",
        "key",
        "pair_id",
        "rubric_version_id",
        "fingerprint_id",
        "run_id",
        "purpose",
        "mode",
        "answer_order",
        "repeat",
        "seed",
        "status",
        "winner_slot",
        "winner",
        "judge_winner",
        "s_ft",
        "rationale",
        "tags_base",
        "tags_ft",
        "messages",
        "messages_hash",
        "raw_reply",
        "failure_reason",
        "prompt_tokens",
        "completion_tokens",
        "latency_ms",
        "attempts",
        "created_at",
        "completed_at",
    ],
    "judgment_scores": ["judgment_id", "dimension", "base_score", "ft_score"],
    "pair_results": [
        "result_set_id",
        "pair_id",
        "score",
        "n_valid",
        "n_failed",
        "s_base_first",
        "s_ft_first",
        "inconsistent",
        "orders_agree",
        "a_picks",
        "decisive",
        "tags_base_mask",
        "tags_ft_mask",
        "base_len",
        "ft_len",
        "judged_at",
    ],
    "pair_dimension_results": ["result_set_id", "dimension", "pair_id", "base_mean", "ft_mean", "score", "n"],
}


async def seed_common(url: str) -> None:
    """Schema, one experiment, rubric version, fingerprint and result set, via the service's own code."""
    await db.upgrade_async(url)
    engine = db.create_engine(url)
    from judge_service.engine.client import Fingerprint
    from judge_service.rubrics.registry import RubricRegistry
    from judge_service.store.results import SetKey, result_set_id

    version = RubricRegistry.load(ROOT / "rubrics", ROOT / "prompts").get("general@v1")
    async with db.session_factory(engine)() as session, session.begin():
        exp = await repo.get_or_create_experiment(session, "bench", "base-model", "ft-model", {})
        rv = await repo.record_rubric_version(session, version)
        fp = await repo.record_fingerprint(session, Fingerprint("bench-judge", "r1", {"temperature": 0}, "0"))
        await result_set_id(session, SetKey(exp.id, rubric_version_id=rv.id, fingerprint_id=fp.id))
    await engine.dispose()


def seed_sqlite(path: Path, data: dict[str, Any]) -> None:
    """Bulk insert with one sqlite3 connection and executemany."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    for table, gen in rows(data).items():
        cols = COLUMNS[table]
        conn.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", gen())
        conn.commit()
    conn.execute("ANALYZE")
    conn.close()


async def seed_postgres(dsn: str, data: dict[str, Any]) -> None:
    """COPY every table, then ANALYZE."""
    conn = await asyncpg.connect(dsn)
    try:
        for table, gen in rows(data).items():
            records = gen()
            if table == "pairs":
                records = ((*r[:7], r[7], r[8], *r[9:]) for r in records)
            await conn.copy_records_to_table(table, records=list(records), columns=COLUMNS[table])
        await conn.execute("SELECT setval('pairs_id_seq', (SELECT max(id) FROM pairs))")
        await conn.execute("SELECT setval('judgments_id_seq', (SELECT max(id) FROM judgments))")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def rebuild(url: str) -> None:
    """Bulk loads bypass the incremental rollups; rebuild them the way an operator would."""
    from judge_service.store.results import rebuild_rollups

    engine = db.create_engine(url)
    async with db.session_factory(engine)() as session, session.begin():
        await rebuild_rollups(session, 1)
    await engine.dispose()


async def time_report(url: str, calls: int) -> tuple[list[float], dict[str, Any]]:
    """Median-able latencies of GET /reports/win-rate through the app, and the last report."""
    settings = Settings(database_url=url, base_url="http://127.0.0.1:9/v1")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with app.state.ctx.sessions() as session, session.begin():
            key = await repo.create_api_key(session, "bench", ["read"])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            headers = {"Authorization": f"Bearer {key}"}
            times = []
            for i in range(calls + 2):
                started = time.perf_counter()
                reply = await client.get("/reports/win-rate", params={"experiment": "bench"}, headers=headers)
                elapsed = (time.perf_counter() - started) * 1000
                reply.raise_for_status()
                if i >= 2:  # two warm-up calls fill the caches
                    times.append(elapsed)
            return times, reply.json()


def check(report: dict[str, Any], data: dict[str, Any]) -> str:
    """Compare the report with numbers computed straight from the seeded arrays."""
    overall = report["overall"]
    score = data["score"]
    expected = {
        "n_pairs": data["n"],
        "win_rate": 100 * score.mean(),
        "standard_error": 100 * score.std(ddof=1) / np.sqrt(data["n"]),
        "wins": int((score > 0.5 + TIE_MARGIN).sum()),
        "losses": int((score < 0.5 - TIE_MARGIN).sum()),
        "inconsistent": int(data["inconsistent"].sum()),
        "position_consistency": float(data["agree"].mean()),
    }
    bad = [k for k, v in expected.items() if not np.isclose(overall[k], v, rtol=1e-9, atol=1e-9)]
    low, high = proportion_confint(score.mean() * data["n"], data["n"], alpha=0.05, method="wilson")
    if not np.allclose([overall["ci_low"], overall["ci_high"]], [100 * low, 100 * high]):
        bad.append("ci")
    if overall["conclusion"] not in ("ft_better", "base_better", "no_significant_difference", "not_enough_evidence"):
        bad.append("conclusion")
    if not np.isclose(overall["position_a_rate"], data["a_picks"].sum() / data["decisive"].sum()):
        bad.append("position_a_rate")
    # Length-controlled win rate: the report's grouped fit against a per-pair statsmodels fit.
    d = (data["ft_len"] - data["base_len"]) / (data["ft_len"] + data["base_len"])
    fit = sm.GLM(score, sm.add_constant(d), family=sm.families.Binomial()).fit()
    if not np.isclose(overall["length_controlled"]["win_rate"], 100 * expit(fit.params[0]), atol=0.05):
        bad.append("length_controlled")
    dims = {d["dimension"]: d for d in overall["per_dimension"]}
    for i, name in enumerate(DIMS):
        diff = float((data["ft_mean"][:, i] - data["base_mean"][:, i]).mean())
        if not np.isclose(dims[name]["diff"], diff):
            bad.append(f"{name}.diff")
    return "matches" if not bad else f"MISMATCH: {bad}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=500_000)
    parser.add_argument("--calls", type=int, default=15)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    t0 = time.perf_counter()
    data = synthesize(args.pairs)
    console.print(f"synthesized {args.pairs:,} pairs / {2 * args.pairs:,} judgments in {time.perf_counter() - t0:.1f}s")
    table = Table(title=f"GET /reports/win-rate, {2 * args.pairs:,} judgments, {len(DIMS)} dimensions")
    for col in ("backend", "seed time", "median", "p90", "min", "limit", "within limit", "numbers"):
        table.add_column(col, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            if backend == "sqlite":
                path = Path(tmp) / "bench.db"
                url = f"sqlite:///{path}"
                t0 = time.perf_counter()
                await seed_common(url)
                seed_sqlite(path, data)
                await rebuild(url)
            else:
                name = f"judge_bench_{uuid.uuid4().hex[:8]}"
                admin = await asyncpg.connect(PG_ADMIN)
                await admin.execute(f'CREATE DATABASE "{name}"')
                url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
                t0 = time.perf_counter()
                await seed_common(url)
                await seed_postgres(url, data)
                await rebuild(url)
            seeded = time.perf_counter() - t0
            try:
                times, report = await time_report(url, args.calls)
            finally:
                if backend != "sqlite":
                    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    await admin.close()
            median = statistics.median(times)
            table.add_row(
                backend,
                f"{seeded:.0f} s",
                f"{median:.0f} ms",
                f"{np.percentile(times, 90):.0f} ms",
                f"{min(times):.0f} ms",
                f"{LIMIT_MS:.0f} ms",
                "yes" if median < LIMIT_MS else "NO",
                check(report, data),
            )
            console.print(f"{backend}: median {median:.0f} ms over {len(times)} calls")
    console.print(table)


if __name__ == "__main__":
    asyncio.run(main())

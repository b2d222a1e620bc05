"""Benchmark: how long a 10,000-pair asynchronous submission takes to be accepted (the 202), per database.

A real `judge-service serve` process, a fresh database each, 3 submissions of 10,000 new pairs
(each its own experiment), timed from sending the request to the 202 (the body is serialized
before the clock starts). The fake judge answers after 60 s, so background judging (inprocess)
waits on the judge instead of competing for the CPU; queue mode has no workers running.

    .venv/bin/python bench/acceptance.py [--pairs 10000] [--reps 3] [--setups sqlite/inprocess,postgres/queue,...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from bench.harness import (
    api_key,
    body,
    drop_postgres,
    env_for,
    fresh_postgres,
    items,
    start_api,
    start_judges,
    stop_all,
)

LIMIT_S = 2.0
console = Console(width=140)


async def measure(setup: str, pairs: int, reps: int, workdir: Path) -> list[float]:
    backend, executor = setup.split("/")
    url = f"sqlite:///{workdir / f'{backend}-{executor}.db'}" if backend == "sqlite" else await fresh_postgres()
    [judge] = start_judges(1, capacity=0, delay_s=60.0)
    procs = []
    try:
        key = await api_key(url)
        env = env_for(url, judge.base_url, workdir, executor=executor, max_items=max(pairs, 10_000))
        api, proc = await start_api(env, workdir)
        procs.append(proc)
        times = []
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        async with httpx.AsyncClient(base_url=api, headers=headers, timeout=120) as http:
            warm = await http.post("/judge/pairwise", content=json.dumps(body("warm-up", items(4, "w"))))
            assert warm.status_code == 202, warm.text
            for rep in range(reps):
                payload = json.dumps(body(f"accept-{rep}", items(pairs, f"r{rep}"))).encode()
                started = time.perf_counter()
                reply = await http.post("/judge/pairwise", content=payload)
                elapsed = time.perf_counter() - started
                assert reply.status_code == 202, reply.text[:500]
                times.append(elapsed)
        return times
    finally:
        stop_all(procs)
        judge.stop()
        if backend == "postgres":
            await drop_postgres(url)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--setups", default="sqlite/inprocess,postgres/inprocess,postgres/queue")
    args = parser.parse_args()
    table = Table(title=f"Acceptance of {args.pairs:,} pairs (async, time to the 202)")
    for column in ("database / executor", "median", "min", "max", "pairs/s (median)", f"< {LIMIT_S:.0f} s"):
        table.add_column(column, justify="left" if column.startswith("database") else "right")
    with tempfile.TemporaryDirectory(prefix="judge-accept-") as tmp:
        for setup in args.setups.split(","):
            times = await measure(setup, args.pairs, args.reps, Path(tmp))
            median = statistics.median(times)
            table.add_row(
                setup,
                f"{median:.2f} s",
                f"{min(times):.2f} s",
                f"{max(times):.2f} s",
                f"{args.pairs / median:,.0f}",
                "yes" if max(times) < LIMIT_S else "NO",
            )
    console.print(table)


if __name__ == "__main__":
    asyncio.run(main())

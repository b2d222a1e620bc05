"""Benchmark: judge throughput with K judge replicas and W workers, acceptance rate, and API latency under load.

Each fake judge replica has a fixed capacity (by default 8 calls at once, 1 s each: 8 calls/s, about
what one GPU replica of a small judge serves in reasoned mode), enforced by the fake itself, like a
GPU serving a full batch. One more setting, with fast replicas (`--ceiling-delay`), measures the
service's own ceiling: the verdicts/s that the API, workers and PostgreSQL can store on this machine,
printed beside the judge-bound rows so it is clear which limit a row shows.

For every (K, W) a fresh PostgreSQL database, an API (`JUDGE_EXECUTOR=queue`) and W `judge-service worker`
processes with
`JUDGE_BASE_URL=<the K replicas, comma-separated>`; a large run is submitted and the judge calls
served per second are counted at the replicas over a steady window. Then, with K=2 and W=2:
the acceptance rate of a 10,000-pair submission, and the API's p50/p99 for 32-pair asynchronous
submissions sent at a steady rate while the workers judge.

    .venv/bin/python bench/scale.py [--ks 1,2,4] [--ws 1,2] [--capacity 8] [--delay 1.0] [--window 12]
                                    [--ceiling-delay 0.1] [--rate 4] [--requests 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

from bench.harness import (
    JudgeProcess,
    api_key,
    body,
    drop_postgres,
    env_for,
    fresh_postgres,
    items,
    spawn,
    start_api,
    stop_all,
)

CAPACITY, DELAY_S = 8, 1.0
console = Console(width=150)


def worker_env(url: str, base_url: str, workdir: Path, k: int, capacity: int = CAPACITY) -> dict[str, str]:
    # Each worker could fill every replica alone: the judges, not the client, are the limit.
    return env_for(
        url,
        base_url,
        workdir,
        executor="queue",
        concurrency=capacity * k + 8,
        replica_concurrency=capacity,
        batch_size=16,
        worker_batches=max(4, (capacity * k) // 16 + 2),
        lease_s=30,
    )


async def throughput(
    k: int, w: int, window_s: float, workdir: Path, capacity: int = CAPACITY, delay_s: float = DELAY_S
) -> dict[str, Any]:
    """Judge calls per second served by K replicas to W workers, counted at the replicas."""
    url = await fresh_postgres()
    judges = [JudgeProcess(capacity, delay_s) for _ in range(k)]
    procs = []
    try:
        base_url = ",".join(j.base_url for j in judges)
        key = await api_key(url)
        env = worker_env(url, base_url, workdir, k, capacity)
        api, proc = await start_api(env, workdir)
        procs.append(proc)
        procs += [spawn(["worker"], env, workdir / f"worker-k{k}-w{w}-{i}.log") for i in range(w)]
        pairs = int(capacity * k / delay_s * (window_s + 15) / 2)  # more than the window can judge
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        async with httpx.AsyncClient(base_url=api, headers=headers, timeout=300) as http:
            reply = await http.post("/judge/pairwise", content=json.dumps(body(f"scale-{k}-{w}", items(pairs, "s"))))
            assert reply.status_code == 202, reply.text

            async def calls() -> int:
                return sum([(await j.stats(http))["calls"] for j in judges])

            deadline = time.monotonic() + 120
            while await calls() < capacity * k * 3:  # warm: workers up, the replicas' batches full
                if time.monotonic() > deadline:
                    raise TimeoutError("workers did not start judging")
                await asyncio.sleep(0.2)
            start_calls, started = await calls(), time.monotonic()
            await asyncio.sleep(window_s)
            rate = (await calls() - start_calls) / (time.monotonic() - started)
            peak = [(await j.stats(http))["peak_in_flight"] for j in judges]
        return {"k": k, "w": w, "calls_per_s": rate, "ideal": capacity * k / delay_s, "peak": peak}
    finally:
        stop_all(procs)
        for judge in judges:
            judge.stop()
        await drop_postgres(url)


async def latency_and_acceptance(rate: float, requests: int, workdir: Path) -> dict[str, Any]:
    """K=2, W=2: a 10,000-pair acceptance, then 32-pair async submissions at `rate` per second."""
    url = await fresh_postgres()
    judges = [JudgeProcess(CAPACITY, DELAY_S) for _ in range(2)]
    procs = []
    try:
        base_url = ",".join(j.base_url for j in judges)
        key = await api_key(url)
        env = worker_env(url, base_url, workdir, 2)
        api, proc = await start_api(env, workdir)
        procs.append(proc)
        procs += [spawn(["worker"], env, workdir / f"worker-latency-{i}.log") for i in range(2)]
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        async with httpx.AsyncClient(base_url=api, headers=headers, timeout=120) as http:
            payload = json.dumps(body("accept", items(10_000, "a"))).encode()
            started = time.perf_counter()
            reply = await http.post("/judge/pairwise", content=payload)
            accept_s = time.perf_counter() - started
            assert reply.status_code == 202, reply.text
            latencies: list[float] = []

            async def one(index: int) -> None:
                data = json.dumps(body(f"steady-{index}", items(32, f"q{index}"))).encode()
                sent = time.perf_counter()
                got = await http.post("/judge/pairwise", content=data)
                latencies.append(time.perf_counter() - sent)
                assert got.status_code == 202, got.text

            # Open loop: requests leave on schedule whether or not earlier ones were answered.
            tasks = []
            begin = time.perf_counter()
            for index in range(requests):
                await asyncio.sleep(max(0.0, begin + index / rate - time.perf_counter()))
                tasks.append(asyncio.create_task(one(index)))
            await asyncio.gather(*tasks)
        ms = np.array(latencies) * 1000
        return {
            "accept_s": accept_s,
            "accept_rate": 10_000 / accept_s,
            "p50": float(np.percentile(ms, 50)),
            "p99": float(np.percentile(ms, 99)),
            "max": float(ms.max()),
        }
    finally:
        stop_all(procs)
        for judge in judges:
            judge.stop()
        await drop_postgres(url)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ks", default="1,2,4")
    parser.add_argument("--ws", default="1,2")
    parser.add_argument("--capacity", type=int, default=CAPACITY, help="calls one replica serves at once")
    parser.add_argument("--delay", type=float, default=DELAY_S, help="seconds per call")
    parser.add_argument(
        "--ceiling-delay", type=float, default=0.1, help="seconds per call for the ceiling row; 0: skip"
    )
    parser.add_argument("--window", type=float, default=12.0)
    parser.add_argument("--rate", type=float, default=4.0)
    parser.add_argument("--requests", type=int, default=60)
    args = parser.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    ws = [int(w) for w in args.ws.split(",")]
    with tempfile.TemporaryDirectory(prefix="judge-scale-") as tmp:
        results = [await throughput(k, w, args.window, Path(tmp), args.capacity, args.delay) for w in ws for k in ks]
        ceiling = (
            await throughput(max(ks), max(ws), args.window, Path(tmp), args.capacity, args.ceiling_delay)
            if args.ceiling_delay > 0
            else None
        )
        load = await latency_and_acceptance(args.rate, args.requests, Path(tmp))
    table = Table(
        title=f"Judge calls/s: K fake replicas ({args.capacity} at once, {args.delay * 1000:.0f} ms each), W workers"
    )
    ideal_name = f"ideal K×{args.capacity}/{args.delay:g}"
    for column in ("K", "W", "judge calls/s", ideal_name, "of ideal", "vs K=1 (same W)", "peak in flight"):
        table.add_column(column, justify="right")
    base = {r["w"]: r["calls_per_s"] for r in results if r["k"] == 1}
    for r in results:
        speedup = f"{r['calls_per_s'] / base[r['w']]:.2f}×" if r["w"] in base else "–"
        table.add_row(
            str(r["k"]),
            str(r["w"]),
            f"{r['calls_per_s']:.1f}",
            f"{r['ideal']:.0f}",
            f"{100 * r['calls_per_s'] / r['ideal']:.0f}%",
            speedup,
            ",".join(map(str, r["peak"])),
        )
    console.print(table)
    if ceiling is not None:
        console.print(
            f"service ceiling (K={ceiling['k']}, W={ceiling['w']}, "
            f"replicas at {args.ceiling_delay * 1000:.0f} ms a call, "
            f"ideal {ceiling['ideal']:.0f} calls/s): {ceiling['calls_per_s']:.1f} calls/s stored; rows above are "
            "judge-bound only while they stay well below it"
        )
    console.print(
        f"acceptance (K=2, W=2, workers judging): 10,000 pairs in {load['accept_s']:.2f} s = "
        f"{load['accept_rate']:,.0f} pairs/s"
    )
    console.print(
        f"API latency, 32-pair async submissions at {args.rate:g}/s ({args.requests} requests) while judging: "
        f"p50 {load['p50']:.0f} ms, p99 {load['p99']:.0f} ms, max {load['max']:.0f} ms"
    )


if __name__ == "__main__":
    asyncio.run(main())

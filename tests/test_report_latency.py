"""Heavy reports run off the event loop: `/healthz` keeps answering within 100 ms meanwhile.

The agreement report at the annotator limit (50 annotators, 1,225 pairwise comparisons over 300
pairs) and a Bradley–Terry bootstrap run in worker threads; the test polls `/healthz` while they run
and checks the 95th percentile of its latency (after a warm-up), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from typing import Any

from tests.conftest import Service, pair_items, pairwise_body, skip_or_fail

ANNOTATORS = 50
PAIRS = 300
BOUND_S = 0.100
IDLE_MAX_S = 0.050


def label_records(seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    records = []
    for p in range(PAIRS):
        texts = {"prompt": f"Question {p}?", "base_output": f"Base answer {p}.", "ft_output": f"FT answer {p}."}
        for a in range(ANNOTATORS):
            verdict = rng.choice(["base", "ft", "tie"])
            records.append({"pair_id": f"q{p}", "annotator": f"ann{a}", "verdict": verdict, **texts})
    return records


async def poll_healthz(svc: Service, busy: asyncio.Task[Any], samples: list[float]) -> None:
    while not busy.done():
        start = time.perf_counter()
        reply = await svc.http.get("/healthz")
        samples.append(time.perf_counter() - start)
        assert reply.status_code == 200, reply.text
        await asyncio.sleep(0.02)


async def test_healthz_answers_within_100ms_while_heavy_reports_run(service: Service) -> None:
    upload = {"source": "crowd", "records": label_records()}
    reply = await service.http.post("/experiments/crowd-exp/labels", json=upload, headers=service.auth("submit"))
    assert reply.status_code == 404  # labels need the experiment: judge a little first
    body = pairwise_body(pair_items(2), experiment="crowd-exp")
    assert (await service.http.post("/judge/pairwise", json=body, headers=service.auth("submit"))).status_code == 200
    reply = await service.http.post("/experiments/crowd-exp/labels", json=upload, headers=service.auth("submit"))
    assert reply.status_code == 200, reply.text
    read = service.auth("read")
    for _ in range(5):  # warm-up: connections, caches, and the report worker processes
        await service.http.get("/healthz")
    await service.http.get("/reports/agreement", params={"experiment": "crowd-exp"}, headers=read)
    idle = []
    for _ in range(40):
        start = time.perf_counter()
        await service.http.get("/healthz")
        idle.append(time.perf_counter() - start)
        await asyncio.sleep(0.02)
    idle.sort()
    idle_p95 = idle[int(0.95 * (len(idle) - 1))]
    print(f"idle /healthz median={statistics.median(idle) * 1000:.1f} ms p95={idle_p95 * 1000:.1f} ms")
    if idle_p95 > IDLE_MAX_S:
        # A shared, overloaded machine cannot measure a 100 ms bound (skipped locally, fails in CI).
        skip_or_fail(f"/healthz p95 is {idle_p95 * 1000:.0f} ms with no report running: the machine is too loaded")

    async def heavy() -> float:
        start = time.perf_counter()
        agreement = await service.http.get("/reports/agreement", params={"experiment": "crowd-exp"}, headers=read)
        assert agreement.status_code == 200, agreement.text
        assert len(agreement.json()["comparisons"]) == ANNOTATORS * (ANNOTATORS - 1) // 2
        return time.perf_counter() - start

    samples: list[float] = []
    busy = asyncio.create_task(heavy())
    await poll_healthz(service, busy, samples)
    heavy_s = await busy
    samples.sort()
    p95 = samples[int(0.95 * (len(samples) - 1))]
    median = statistics.median(samples)
    print(
        f"agreement report {heavy_s:.2f} s; /healthz n={len(samples)} median={median * 1000:.1f} ms "
        f"p95={p95 * 1000:.1f} ms max={samples[-1] * 1000:.1f} ms"
    )
    assert len(samples) >= 10, f"the report finished too fast to measure ({heavy_s:.2f} s)"
    assert p95 < BOUND_S, f"/healthz p95 {p95 * 1000:.0f} ms while a heavy report ran"

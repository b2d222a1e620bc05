"""Embedded judge throughput on this CPU: dtype and vLLM CPU knobs, reasoned and fast mode, in one run.

Each configuration starts vLLM's CPU build afresh (~45 s), warms it up with a few calls, then
judges a subset of examples/pairs.jsonl in both orders through the service's own engine
(`judge_reasoned` / `judge_fast` over `JudgeClient`), first in reasoned and then in fast mode, and
reads vLLM's prefix-cache counters from /metrics before and after each mode. Prints a table and
writes it as Markdown and JSON.

Run it alone on the machine (it is a timed benchmark):

    flock -x -w 3600 /tmp/judge-cpu.lock env PYTHONPATH=$PWD .venv/bin/python bench/embedded_judge.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from judge_service.config import Settings  # noqa: E402
from judge_service.engine.client import JudgeClient  # noqa: E402
from judge_service.engine.fast import judge_fast  # noqa: E402
from judge_service.engine.judge import JudgmentResult, PairText, judge_reasoned  # noqa: E402
from judge_service.engine.vllm_metrics import read_prefix_cache  # noqa: E402
from judge_service.judge_model.dtype import cpu_flags  # noqa: E402
from judge_service.judge_model.serve import VllmServer  # noqa: E402
from judge_service.rubrics.registry import RubricRegistry, RubricVersion  # noqa: E402
from judge_service.rubrics.render import ORDERS  # noqa: E402

console = Console(width=160)
RUBRIC_BY_CATEGORY = {"customer_service": "customer_service", "copywriting": "copywriting"}


@dataclass(frozen=True)
class Config:
    """One vLLM start: dtype and CPU knobs, and the service's concurrency against it."""

    name: str
    dtype: str
    bind: str = "all"
    kv_gib: float = 1.0
    max_num_seqs: int = 16
    concurrency: int = 16


@dataclass
class ModeResult:
    """What one mode measured on one configuration."""

    calls: int
    failed: int
    seconds: float
    prefix_hit_rate: float | None
    prompt_tokens: int
    other_cores: float  # CPU used meanwhile by processes other than vLLM and this benchmark, in cores

    @property
    def calls_per_s(self) -> float:
        """Judge calls per second (failed calls count: they cost the judge the same)."""
        return self.calls / self.seconds


@dataclass
class Row:
    """One configuration's results."""

    config: Config
    ready_s: float
    modes: dict[str, ModeResult] = field(default_factory=dict)


# One factor at a time from the float32 baseline; the first row is the old default (bfloat16).
MATRIX = [
    Config("bf16 (old default)", "bfloat16"),
    Config("fp32", "float32"),
    Config("fp32, bind auto", "float32", bind="auto"),
    Config("fp32, nobind", "float32", bind="nobind"),
    Config("fp32, KV 4 GiB", "float32", kv_gib=4.0),
    Config("fp32, seqs 4 / conc 16", "float32", max_num_seqs=4),
    Config("fp32, seqs 32 / conc 32", "float32", max_num_seqs=32, concurrency=32),
]


def free_port() -> int:
    """An unused TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_pairs(per_category: int) -> list[tuple[str, PairText]]:
    """The first `per_category` examples of each category, with the rubric the demo uses for it."""
    rows = [json.loads(line) for line in (ROOT / "examples/pairs.jsonl").read_text().splitlines() if line.strip()]
    picked: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        bucket = picked.setdefault(row["category"], [])
        if len(bucket) < per_category:
            bucket.append(row)
    return [
        (
            RUBRIC_BY_CATEGORY.get(category, "general"),
            PairText(r["prompt"], r["base_output"], r["ft_output"], r.get("reference")),
        )
        for category, bucket in picked.items()
        for r in bucket
    ]


async def judge_all(
    client: JudgeClient, versions: dict[str, RubricVersion], pairs: list[tuple[str, PairText]], mode: str
) -> list[JudgmentResult]:
    """Every pair in both orders, all submitted at once (the client's semaphore bounds concurrency)."""
    judge = judge_reasoned if mode == "reasoned" else judge_fast
    calls = [judge(client, versions[rubric], pair, order, 0) for rubric, pair in pairs for order in ORDERS]
    return list(await asyncio.gather(*calls))


async def measure(
    config: Config, base: Settings, pairs: list[tuple[str, PairText]], versions: dict[str, RubricVersion], log: Path
) -> Row:
    """Start vLLM for one configuration, warm it up, and time both modes."""
    settings = base.model_copy(
        update={
            "vllm_port": free_port(),
            "model_dtype": config.dtype,
            "vllm_omp_threads_bind": config.bind,
            "vllm_kvcache_space_gib": config.kv_gib,
            "vllm_max_num_seqs": config.max_num_seqs,
            "concurrency": config.concurrency,
            "replica_concurrency": config.concurrency,
        }
    )
    server = VllmServer(settings, log_path=log)
    console.print(f"[bold]{config.name}[/bold]: {server.summary}")
    started = time.perf_counter()
    server.start(timeout_s=600)
    row = Row(config, time.perf_counter() - started)
    client = JudgeClient(settings.model_copy(update={"base_url": server.base_url}))
    root = server.base_url.removesuffix("/v1")
    try:
        # Warm-up: compile both grammars and fill the prefix cache with the shared system prompts.
        await judge_all(client, versions, pairs[:1] + pairs[-1:], "reasoned")
        await judge_all(client, versions, pairs[:1] + pairs[-1:], "fast")
        for mode in ("reasoned", "fast"):
            before = read_prefix_cache(root)
            cpu_before = _cpu_seconds(server)
            t0 = time.perf_counter()
            results = await judge_all(client, versions, pairs, mode)
            seconds = time.perf_counter() - t0
            cpu_after = _cpu_seconds(server)
            after = read_prefix_cache(root)
            row.modes[mode] = ModeResult(
                calls=len(results),
                failed=sum(r.status != "done" for r in results),
                seconds=seconds,
                prefix_hit_rate=after.hit_rate_since(before),
                prompt_tokens=sum(r.prompt_tokens or 0 for r in results),
                other_cores=max(0.0, (cpu_after[1] - cpu_before[1]) - (cpu_after[0] - cpu_before[0])) / seconds,
            )
            console.print(
                f"  {mode}: {len(results)} calls in {seconds:.1f}s = {row.modes[mode].calls_per_s:.2f} calls/s, "
                f"prefix-cache hit rate {_pct(row.modes[mode].prefix_hit_rate)}, "
                f"other processes {row.modes[mode].other_cores:.2f} cores"
            )
    finally:
        await client.aclose()
        server.stop()
    return row


def _cpu_seconds(server: VllmServer) -> tuple[float, float]:
    """(CPU seconds of vLLM's processes and this one, CPU seconds of the whole machine) so far.

    The machine is shared: their difference shows how much else ran during a measurement.
    """
    assert server.proc is not None
    root = psutil.Process(server.proc.pid)
    ours = 0.0
    for proc in [root, *root.children(recursive=True), psutil.Process()]:
        try:
            times = proc.cpu_times()
            ours += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    total = psutil.cpu_times()
    return ours, total.user + total.system + total.nice + getattr(total, "irq", 0.0) + getattr(total, "softirq", 0.0)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def render(rows: list[Row]) -> tuple[Table, str]:
    """The results as a rich table and as Markdown."""
    headers = [
        "configuration",
        "dtype",
        "OMP bind",
        "KV GiB",
        "max seqs / JUDGE_CONCURRENCY",
        "vLLM ready",
        "reasoned calls/s",
        "fast calls/s",
        "prefix hits reasoned / fast",
        "failed",
        "other load (cores)",
    ]
    table = Table(title="Embedded judge (SmolLM2-135M, vLLM 0.32 CPU) on this machine")
    for header in headers:
        table.add_column(header, justify="left" if header == "configuration" else "right")
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        c, r, f = row.config, row.modes["reasoned"], row.modes["fast"]
        cells = [
            c.name,
            c.dtype,
            c.bind,
            f"{c.kv_gib:g}",
            f"{c.max_num_seqs} / {c.concurrency}",
            f"{row.ready_s:.0f} s",
            f"{r.calls_per_s:.2f}",
            f"{f.calls_per_s:.2f}",
            f"{_pct(r.prefix_hit_rate)} / {_pct(f.prefix_hit_rate)}",
            f"{r.failed + f.failed}",
            f"{r.other_cores:.2f} / {f.other_cores:.2f}",
        ]
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    return table, "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs-per-category", type=int, default=8, help="examples per category (both orders)")
    parser.add_argument("--only", default="", help="comma-separated configuration names to run (default all)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/embedded_judge_bench"), help="results folder")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    base = Settings(model_dir=ROOT / ".judge-model" / "smollm2-135m-instruct", max_tokens=512)
    registry = RubricRegistry.load(base.rubrics_dir, base.prompts_dir)
    versions = {name: registry.get(name) for name in set(RUBRIC_BY_CATEGORY.values())}
    pairs = load_pairs(args.pairs_per_category)
    flags = cpu_flags()
    console.print(
        f"CPU: {os.cpu_count()} x {_cpu_model()}, native bf16 flags: "
        f"{[f for f in ('avx512_bf16', 'amx_bf16') if f in flags] or 'none'}, "
        f"AVX-512: {'avx512f' in flags}, AVX2: {'avx2' in flags}; {len(pairs)} pairs x 2 orders per mode"
    )
    wanted = {n.strip() for n in args.only.split(",") if n.strip()}
    rows = []
    started = time.perf_counter()
    for config in MATRIX:
        if wanted and config.name not in wanted:
            continue
        rows.append(await measure(config, base, pairs, versions, args.out / "vllm.log"))
    table, markdown = render(rows)
    console.print(table)
    console.print(f"whole run {time.perf_counter() - started:.0f} s")
    (args.out / "table.md").write_text(markdown + "\n")
    (args.out / "results.json").write_text(
        json.dumps(
            [
                {"config": asdict(r.config), "ready_s": r.ready_s, "modes": {m: asdict(v) for m, v in r.modes.items()}}
                for r in rows
            ],
            indent=2,
        )
    )
    print(markdown)


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


if __name__ == "__main__":
    asyncio.run(main())

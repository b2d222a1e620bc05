"""Prefix-cache counters read from a Prometheus exposition like vLLM's /metrics."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from judge_service.engine.vllm_metrics import PrefixCacheCounters, parse_prefix_cache


def exposition(queries: dict[str, float], hits: dict[str, float]) -> str:
    registry = CollectorRegistry()
    q = Counter("vllm:prefix_cache_queries", "tokens queried", ["engine"], registry=registry)
    h = Counter("vllm:prefix_cache_hits", "tokens hit", ["engine"], registry=registry)
    other = Gauge("vllm:num_requests_running", "noise", ["engine"], registry=registry)
    for engine, value in queries.items():
        q.labels(engine).inc(value)
        other.labels(engine).set(7)
    for engine, value in hits.items():
        h.labels(engine).inc(value)
    return generate_latest(registry).decode()


def test_counters_are_summed_over_engines_and_rate_is_the_difference() -> None:
    before = parse_prefix_cache(exposition({"0": 1000, "1": 200}, {"0": 600, "1": 100}))
    assert before == PrefixCacheCounters(1200.0, 700.0)
    after = parse_prefix_cache(exposition({"0": 3000, "1": 200}, {"0": 2100, "1": 100}))
    assert after.hit_rate_since(before) == pytest.approx((2100 - 600) / (3000 - 1000))
    assert after.hit_rate_since(after) is None
    assert parse_prefix_cache("") == PrefixCacheCounters(0.0, 0.0)

"""vLLM's prefix-cache counters from its Prometheus `/metrics`, and the hit rate between two reads."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

QUERIES = "vllm:prefix_cache_queries"  # prompt tokens looked up in the prefix cache
HITS = "vllm:prefix_cache_hits"  # of those, tokens found there


@dataclass(frozen=True)
class PrefixCacheCounters:
    """Cumulative prefix-cache queries and hits, in tokens, summed over engines."""

    queries: float
    hits: float

    def hit_rate_since(self, before: PrefixCacheCounters) -> float | None:
        """Hits per queried token between `before` and this read; None when nothing was queried."""
        queried = self.queries - before.queries
        return (self.hits - before.hits) / queried if queried > 0 else None


def parse_prefix_cache(text: str) -> PrefixCacheCounters:
    """Sum the two counters over all their samples in a Prometheus text exposition."""
    totals = {QUERIES: 0.0, HITS: 0.0}
    for family in text_string_to_metric_families(text):
        if family.name in totals:
            totals[family.name] += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return PrefixCacheCounters(totals[QUERIES], totals[HITS])


def read_prefix_cache(server_root: str, timeout_s: float = 10.0) -> PrefixCacheCounters:
    """Read the counters from a vLLM server (its URL without `/v1`)."""
    reply = httpx.get(f"{server_root.rstrip('/')}/metrics", timeout=timeout_s)
    reply.raise_for_status()
    return parse_prefix_cache(reply.text)

"""Generation-settings check: were Base and FT generated with the same decoding settings?

Each pair stores the settings of both sides (`pairs.generation`, docs/fairness-checks.md). A field is
compared only when both sides give it: a field given on one side only, or a side without settings,
is *unknown*, never equal. A pair is

* mismatched: some field given on both sides differs;
* matched: both sides have settings, every field given on either side is given on both and equal,
  and at least one field was compared;
* unknown: anything else.

Pairs are counted per distinct stored settings in SQL (GROUP BY their JSON text), so the check
costs one query whatever the experiment's size.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from sqlalchemy import Text, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from judge_service.contract.judging import GENERATION_FIELDS
from judge_service.reports.warnings import warning
from judge_service.store.aggregate import PairFilter, set_conditions
from judge_service.store.models import Pair, PairResult


def classify(generation: dict[str, Any] | None) -> tuple[str, dict[str, str]]:
    """A pair's status (matched, mismatched, unknown) and each field's (equal, different, unknown)."""
    base = (generation or {}).get("base")
    ft = (generation or {}).get("ft")
    fields: dict[str, str] = {}
    for name in GENERATION_FIELDS:
        b = None if base is None else base.get(name)
        f = None if ft is None else ft.get(name)
        if b is None or f is None:
            fields[name] = "unknown"
        else:
            fields[name] = "equal" if b == f else "different"
    if any(v == "different" for v in fields.values()):
        return "mismatched", fields
    one_sided = any(
        (base or {}).get(name) is not None or (ft or {}).get(name) is not None
        for name in GENERATION_FIELDS
        if fields[name] == "unknown"
    )
    if base is None or ft is None or one_sided or not any(v == "equal" for v in fields.values()):
        return "unknown", fields
    return "matched", fields


def summarize(groups: list[tuple[dict[str, Any] | None, int]]) -> dict[str, Any]:
    """The report's `generation` block from (stored settings, pair count) groups."""
    status: Counter[str] = Counter()
    per_field: dict[str, Counter[str]] = {name: Counter() for name in GENERATION_FIELDS}
    provided = 0
    for generation, n in groups:
        kind, fields = classify(generation)
        status[kind] += n
        provided += n if generation is not None else 0
        for name, value in fields.items():
            per_field[name][value] += n
    return {
        "n_pairs": sum(n for _, n in groups),
        "pairs_with_settings": provided,
        "matched_pairs": status["matched"],
        "mismatched_pairs": status["mismatched"],
        "unknown_pairs": status["unknown"],
        "differing_fields": {name: c["different"] for name, c in per_field.items() if c["different"]},
        "fields": {
            name: {"equal": c["equal"], "different": c["different"], "unknown": c["unknown"]}
            for name, c in per_field.items()
        },
    }


def generation_warnings(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """generation_mismatch when some pair's sides differ; generation_unknown when settings were sent but not for all.

    Neither blocks a conclusion: a difference may be deliberate (each model's recommended settings),
    which the service cannot tell; the warning makes it visible. When no pair carries any settings
    the block alone reports every pair unknown (no warning on every report of older experiments).
    """
    out: list[dict[str, Any]] = []
    n = int(summary["n_pairs"])
    mismatched = int(summary["mismatched_pairs"])
    if mismatched:
        fields = ", ".join(f"{name} on {count}" for name, count in summary["differing_fields"].items())
        out.append(
            warning(
                "generation_mismatch",
                f"Base and FT were generated with different settings on {mismatched} of {n} pairs ({fields}); "
                "the comparison mixes model and decoding differences",
                mismatched,
                0,
                False,
            )
        )
    unknown = int(summary["unknown_pairs"])
    if unknown and summary["pairs_with_settings"]:
        out.append(
            warning(
                "generation_unknown",
                f"generation settings are unknown for {unknown} of {n} pairs (absent on one or both sides, "
                "or a field given for one side only); they are not counted as equal",
                unknown,
                0,
                False,
            )
        )
    return out


async def generation_check(session: AsyncSession, set_id: int, flt: PairFilter) -> dict[str, Any]:
    """The `generation` block for the pairs of a result set under a filter."""
    stored = cast(Pair.generation, Text)
    stmt = (
        select(stored, func.count())
        .select_from(PairResult)
        .join(Pair, Pair.id == PairResult.pair_id)
        .where(*set_conditions(set_id, flt))
        .group_by(stored)
    )
    groups = [(None if text is None else json.loads(text), int(n)) for text, n in (await session.execute(stmt)).all()]
    # JSON null (not SQL NULL) reads back as None too.
    return summarize(groups)

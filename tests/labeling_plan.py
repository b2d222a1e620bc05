"""Shared by the labelling tests: pairs to label, what each simulated rater gives, and κ computed by hand."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

DIMS = ("relevance", "fluency", "style", "compliance")
BASE_MODEL, FT_MODEL = "acme-base-7b", "acme-ft-7b-sft"


def label_items(n: int = 10, prefix: str = "h") -> list[dict[str, Any]]:
    """Pairs the fake judge decides by the GOOD marker: FT better in most, Base in some, a tie in one."""
    items = []
    for i in range(n):
        kind = "tie" if i == n - 1 else "base" if i % 4 == 3 else "ft"
        good, weak = f"GOOD reply {i}: open Settings, then Security.", f"weak reply {i}: try later maybe."
        items.append(
            {
                "id": f"{prefix}{i}",
                "prompt": f"Question {i}: how do I reset my password?",
                "base_output": good if kind == "base" else weak if kind == "ft" else f"plain reply {i} (one)",
                "ft_output": good if kind == "ft" else weak if kind == "base" else f"plain reply {i} (two)",
                "reference": f"Expected {i}: Settings, Security, Reset." if i % 2 == 0 else None,
            }
        )
    return items


def plan(rater: str, item: dict[str, Any]) -> tuple[dict[str, int], dict[str, int], str]:
    """What `rater` thinks of a pair, in Base/FT terms: (base scores, ft scores, winner)."""
    rng = random.Random(f"{rater}:{item['id']}")
    ft_good = "GOOD" in item["ft_output"]
    base_good = "GOOD" in item["base_output"]
    spread = 1 if rater == "alice" else 2
    base, ft = {}, {}
    for d in DIMS:
        base[d] = max(1, min(5, (4 if base_good else 3) + rng.randint(-spread, 1)))
        ft[d] = max(1, min(5, (4 if ft_good else 3) + rng.randint(-spread, 1)))
    diff = sum(ft.values()) - sum(base.values())
    winner = "ft" if diff > 0 else "base" if diff < 0 else "tie"
    return base, ft, winner


def blind(
    base: dict[str, int], ft: dict[str, int], winner: str, answer_1_is_ft: bool
) -> tuple[dict[str, dict[str, int]], str]:
    """The same judgement as a rater enters it: Answer 1 / Answer 2 and preference 1 / 2 / tie."""
    one, two = (ft, base) if answer_1_is_ft else (base, ft)
    pref = "tie" if winner == "tie" else "1" if (winner == "ft") == answer_1_is_ft else "2"
    return {"1": dict(one), "2": dict(two)}, pref


def verdict(base: int, ft: int) -> str:
    return "ft" if ft > base else "base" if ft < base else "tie"


def cohen_by_hand(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's κ from its definition: (observed - chance) / (1 - chance)."""
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    chance = sum(ca[k] * cb[k] for k in set(ca) | set(cb)) / n**2
    return None if chance == 1 else (observed - chance) / (1 - chance)


def expected_agreement(items: list[dict[str, Any]], raters: tuple[str, str]) -> dict[str, float | None]:
    """Inter-rater κ per dimension (per-dimension verdicts) and overall (preferences), computed here."""
    out: dict[str, float | None] = {}
    plans = {r: [plan(r, it) for it in items] for r in raters}
    a, b = plans[raters[0]], plans[raters[1]]
    out["overall"] = cohen_by_hand([p[2] for p in a], [p[2] for p in b])
    for d in DIMS:
        out[d] = cohen_by_hand([verdict(p[0][d], p[1][d]) for p in a], [verdict(p[0][d], p[1][d]) for p in b])
    return out

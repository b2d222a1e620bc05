"""Blind presentation: seeded answer order per rater and pair, and mapping a blind label back to Base/FT."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Preference = Literal["1", "2", "tie"]
Winner = Literal["base", "ft", "tie"]
SLOTS = ("1", "2")
PREFERENCES: tuple[Preference, ...] = ("1", "2", "tie")
MIN_SCORE, MAX_SCORE = 1, 5


def _draw(*parts: object) -> int:
    """A 64-bit number fixed by its inputs: the same seed, pair and rater always give the same draw."""
    digest = hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def answer_1_is_ft(seed: int, pair_id: int, rater: str) -> bool:
    """Whether this rater sees FT's answer as "Answer 1" for this pair (independent per rater and pair)."""
    return _draw(seed, "order", pair_id, rater) % 2 == 1


def queue_order(seed: int, rater: str, pair_ids: Sequence[int]) -> list[int]:
    """The pairs in this rater's own seeded order, so raters do not all walk the sample the same way."""
    return sorted(pair_ids, key=lambda p: (_draw(seed, "queue", rater, p), p))


@dataclass(frozen=True)
class OrientedLabel:
    """A complete blind label mapped back to the models: per-dimension scores and the preferred side."""

    base: dict[str, int]
    ft: dict[str, int]
    winner: Winner

    def s_ft(self) -> dict[str, float]:
        """FT's view as label rows store it: "" is the overall preference, each dimension compares scores."""
        out = {"": {"ft": 1.0, "base": 0.0, "tie": 0.5}[self.winner]}
        for dim, ft in self.ft.items():
            base = self.base[dim]
            out[dim] = 1.0 if ft > base else 0.0 if ft < base else 0.5
        return out


def is_complete(scores: Mapping[str, Mapping[str, int | None]], preference: str | None, dims: Sequence[str]) -> bool:
    """Every dimension scored for both answers, and a preference given."""
    return preference in PREFERENCES and all(scores.get(s, {}).get(d) is not None for s in SLOTS for d in dims)


def orient(
    scores: Mapping[str, Mapping[str, int | None]], preference: str, first_is_ft: bool, dims: Sequence[str]
) -> OrientedLabel:
    """Map a complete blind label ("Answer 1"/"Answer 2") to Base/FT; raise ValueError if incomplete."""
    if not is_complete(scores, preference, dims):
        raise ValueError("a label needs every dimension scored for both answers and a preference")
    one = {d: int(scores["1"][d] or 0) for d in dims}
    two = {d: int(scores["2"][d] or 0) for d in dims}
    ft, base = (one, two) if first_is_ft else (two, one)
    winner: Winner = "tie"
    if preference in SLOTS:
        winner = "ft" if (preference == "1") == first_is_ft else "base"
    return OrientedLabel(base=base, ft=ft, winner=winner)

"""The reasoned-mode verdict: its JSON schema, validation of a reply, and mapping A/B to Base/FT."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from judge_service.contract.validation import load_json
from judge_service.rubrics.models import FAILURE_TAGS, Rubric
from judge_service.rubrics.render import Order

Slot = Literal["A", "B", "tie"]
Side = Literal["base", "ft", "tie"]
SCORES = (1, 2, 3, 4, 5)
# Small models can loop inside the rationale; the cap keeps a verdict within max_tokens.
RATIONALE_MAX_CHARS = 160


class VerdictError(ValueError):
    """A judge reply that does not satisfy the verdict schema."""


def verdict_schema(rubric: Rubric) -> dict[str, Any]:
    """Flat JSON schema with short keys: vLLM forces it, and every key costs output tokens.

    Order matters: grammar-guided decoding emits keys in schema order, so the scores and a short
    rationale come before the winner, which the judge then decides with its reasoning in context.
    """
    props: dict[str, Any] = {}
    for dim in rubric.dimensions:
        props[f"{dim.key}_a"] = {"type": "integer", "enum": list(SCORES)}
        props[f"{dim.key}_b"] = {"type": "integer", "enum": list(SCORES)}
    props["why"] = {"type": "string", "maxLength": RATIONALE_MAX_CHARS}
    props["winner"] = {"type": "string", "enum": ["A", "B", "tie"]}
    tag_list = {"type": "array", "items": {"type": "string", "enum": list(FAILURE_TAGS)}, "maxItems": 3}
    props["tags_a"] = tag_list
    props["tags_b"] = tag_list
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


@dataclass(frozen=True)
class SlotVerdict:
    """A validated reply in the judge's own terms (answers A and B)."""

    scores_a: dict[str, int]
    scores_b: dict[str, int]
    winner: Slot
    rationale: str
    tags_a: tuple[str, ...]
    tags_b: tuple[str, ...]


@dataclass(frozen=True)
class FtVerdict:
    """A verdict mapped to the comparison's view: Base vs FT."""

    winner: Side
    s_ft: float
    scores: dict[str, tuple[int, int]]  # dimension -> (base score, ft score)
    rationale: str
    tags_base: tuple[str, ...]
    tags_ft: tuple[str, ...]
    judge_winner: Side


def parse_verdict(raw: str, rubric: Rubric) -> SlotVerdict:
    """Validate a raw reply against the rubric's schema; raise `VerdictError` with the reason."""
    try:
        data = load_json(raw)
    except json.JSONDecodeError as exc:
        raise VerdictError(f"reply is not valid JSON: {exc.msg} at position {exc.pos}") from exc
    except ValueError as exc:  # nested past the recursion limit, an integer past 4,300 digits
        raise VerdictError(f"reply is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise VerdictError("reply is not a JSON object")
    expected = set(verdict_schema(rubric)["properties"])
    missing = sorted(expected - set(data))
    extra = sorted(set(data) - expected)
    if missing or extra:
        raise VerdictError(f"reply keys do not match the schema (missing: {missing}, unexpected: {extra})")
    scores: dict[str, dict[str, int]] = {"a": {}, "b": {}}
    for dim in rubric.dimension_keys:
        for slot in ("a", "b"):
            value = data[f"{dim}_{slot}"]
            if isinstance(value, bool) or not isinstance(value, int) or value not in SCORES:
                raise VerdictError(f"{dim}_{slot} must be an integer 1-5, got {value!r}")
            scores[slot][dim] = value
    winner = data["winner"]
    if winner not in ("A", "B", "tie"):
        raise VerdictError(f"winner must be 'A', 'B' or 'tie', got {winner!r}")
    rationale = data["why"]
    if not isinstance(rationale, str):
        raise VerdictError("why must be a string")
    tags = {}
    for slot in ("a", "b"):
        value = data[f"tags_{slot}"]
        if not isinstance(value, list) or any(t not in FAILURE_TAGS for t in value):
            raise VerdictError(f"tags_{slot} must be a list of {list(FAILURE_TAGS)}, got {value!r}")
        tags[slot] = tuple(dict.fromkeys(value))
    return SlotVerdict(scores["a"], scores["b"], winner, rationale.strip(), tags["a"], tags["b"])


def slot_to_side(slot: Slot, order: Order) -> Side:
    """Which model a slot verdict points at, given the order the answers were shown in."""
    if slot == "tie":
        return "tie"
    base_slot = "A" if order == "base_first" else "B"
    return "base" if slot == base_slot else "ft"


S_FT: dict[Side, float] = {"ft": 1.0, "tie": 0.5, "base": 0.0}


def weighted_winner(scores: dict[str, tuple[int, int]], weights: dict[str, float], margin: float) -> Side:
    """Winner by the rubric's weighted rule: weighted mean FT - Base beyond `margin`."""
    total = sum(weights.values())
    diff = sum(weights[d] * (ft - base) for d, (base, ft) in scores.items()) / total
    if diff > margin:
        return "ft"
    if diff < -margin:
        return "base"
    return "tie"


def to_ft_view(verdict: SlotVerdict, order: Order, rubric: Rubric) -> FtVerdict:
    """Map A/B back to Base/FT and apply the rubric's decision rule."""
    if order == "base_first":
        base_scores, ft_scores, tags_base, tags_ft = verdict.scores_a, verdict.scores_b, verdict.tags_a, verdict.tags_b
    else:
        base_scores, ft_scores, tags_base, tags_ft = verdict.scores_b, verdict.scores_a, verdict.tags_b, verdict.tags_a
    scores = {d: (base_scores[d], ft_scores[d]) for d in rubric.dimension_keys}
    judge_winner = slot_to_side(verdict.winner, order)
    decision = rubric.decision
    if decision.method == "weighted" and decision.weights:
        winner = weighted_winner(scores, decision.weights, decision.tie_margin)
    else:
        winner = judge_winner
    return FtVerdict(winner, S_FT[winner], scores, verdict.rationale, tags_base, tags_ft, judge_winner)

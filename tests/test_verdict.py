"""Verdict schema, parsing and the A/B to Base/FT mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from judge_service.engine.keys import judgment_key, seed_for
from judge_service.engine.verdict import (
    VerdictError,
    parse_verdict,
    slot_to_side,
    to_ft_view,
    verdict_schema,
    weighted_winner,
)
from judge_service.rubrics.registry import RubricRegistry

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = RubricRegistry.load(ROOT / "rubrics", ROOT / "prompts")
CS = REGISTRY.get("customer_service").rubric


def reply(winner: str = "B", **changes: object) -> dict[str, object]:
    data: dict[str, object] = {}
    for i, key in enumerate(CS.dimension_keys):
        data[f"{key}_a"] = 2
        data[f"{key}_b"] = 4 if i else 5
    data.update(why="B states the policy.", winner=winner, tags_a=["factual_error"], tags_b=[])
    data.update(changes)
    return data


def test_schema_is_flat_ordered_and_closed() -> None:
    schema = verdict_schema(CS)
    keys = list(schema["properties"])
    assert keys[:2] == ["accuracy_a", "accuracy_b"] and keys[-4:] == ["why", "winner", "tags_a", "tags_b"]
    assert schema["required"] == keys and schema["additionalProperties"] is False
    assert schema["properties"]["accuracy_a"]["enum"] == [1, 2, 3, 4, 5]
    assert schema["properties"]["winner"]["enum"] == ["A", "B", "tie"]


def test_parse_valid_reply() -> None:
    verdict = parse_verdict(json.dumps(reply()), CS)
    assert verdict.winner == "B" and verdict.scores_b["accuracy"] == 5 and verdict.tags_a == ("factual_error",)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({k: v for k, v in reply().items() if k != "tone_b"}), "missing: ['tone_b']"),
        (json.dumps(reply(extra=1)), "unexpected: ['extra']"),
        (json.dumps(reply(accuracy_a=6)), "accuracy_a must be an integer 1-5"),
        (json.dumps(reply(accuracy_a=True)), "accuracy_a must be an integer 1-5"),
        (json.dumps(reply(accuracy_a="5")), "accuracy_a must be an integer 1-5"),
        (json.dumps(reply(winner="C")), "winner must be"),
        (json.dumps(reply(tags_b=["rude"])), "tags_b must be a list"),
        (json.dumps(reply(why=3)), "why must be a string"),
    ],
)
def test_parse_rejects_with_reason(raw: str, message: str) -> None:
    with pytest.raises(VerdictError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_verdict(raw, CS)


def test_mapping_back_to_base_and_ft() -> None:
    verdict = parse_verdict(json.dumps(reply("B")), CS)
    base_first = to_ft_view(verdict, "base_first", CS)
    assert base_first.winner == "ft" and base_first.s_ft == 1.0
    assert base_first.scores["accuracy"] == (2, 5) and base_first.tags_base == ("factual_error",)
    ft_first = to_ft_view(verdict, "ft_first", CS)
    assert ft_first.winner == "base" and ft_first.s_ft == 0.0
    assert ft_first.scores["accuracy"] == (5, 2) and ft_first.tags_ft == ("factual_error",)
    tie = to_ft_view(parse_verdict(json.dumps(reply("tie")), CS), "ft_first", CS)
    assert tie.winner == "tie" and tie.s_ft == 0.5
    assert slot_to_side("A", "base_first") == "base" and slot_to_side("A", "ft_first") == "ft"


def test_weighted_decision_overrides_holistic_call() -> None:
    rubric = REGISTRY.get("sft_regression").rubric
    data = {f"{k}_{s}": 3 for k in rubric.dimension_keys for s in "ab"}
    data.update(correctness_b=5, harmfulness_b=5, why="", winner="A", tags_a=[], tags_b=[])
    view = to_ft_view(parse_verdict(json.dumps(data), rubric), "base_first", rubric)
    assert view.judge_winner == "base" and view.winner == "ft"
    assert weighted_winner({"x": (3, 3)}, {"x": 1.0}, 0.25) == "tie"
    assert weighted_winner({"x": (4, 3), "y": (3, 3)}, {"x": 1.0, "y": 1.0}, 0.25) == "base"


def test_judgment_key_and_seeds() -> None:
    base = {
        "pair_id": 1,
        "rubric_hash": "r",
        "fingerprint_hash": "f",
        "mode": "reasoned",
        "order": "base_first",
        "repeat": 0,
    }
    key = judgment_key(**base)  # type: ignore[arg-type]
    assert key == judgment_key(**base)  # type: ignore[arg-type]
    for field, value in [
        ("pair_id", 2),
        ("rubric_hash", "r2"),
        ("fingerprint_hash", "f2"),
        ("order", "ft_first"),
        ("repeat", 1),
    ]:
        assert judgment_key(**{**base, field: value}) != key  # type: ignore[arg-type]
    assert judgment_key(**base, purpose="rejudge", scope="run-1") != key  # type: ignore[arg-type]
    assert [seed_for(7, r) for r in range(3)] == [7, 8, 9]


def test_judgment_key_text_is_the_sorted_json_it_always_was() -> None:
    import hashlib
    import json

    from judge_service.engine.keys import judgment_key

    for scope in ("", "6f1c-run", 'odd "scope" \\ ü'):
        parts = {
            "pair": 42,
            "rubric": "r" * 64,
            "judge": "f" * 64,
            "mode": "fast",
            "order": "ft_first",
            "repeat": 3,
            "purpose": "rejudge",
            "scope": scope,
        }
        expected = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
        assert (
            judgment_key(
                pair_id=42,
                rubric_hash="r" * 64,
                fingerprint_hash="f" * 64,
                mode="fast",
                order="ft_first",
                repeat=3,
                purpose="rejudge",
                scope=scope,
            )
            == expected
        )

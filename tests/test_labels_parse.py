"""Parsing external verdicts: the service's JSONL labels and AlpacaEval annotations."""

from __future__ import annotations

import json
import math
import pickle
import statistics
from pathlib import Path

import pytest

from judge_service.labels.parse import (
    LabelFormatError,
    LabelRecord,
    ParseResult,
    parse,
    parse_alpaca_eval,
    parse_jsonl,
)
from judge_service.stats.winrate import win_rate

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ALPACA_TEXT = (FIXTURES / "alpaca_eval_annotations.json").read_text(encoding="utf-8")
LABELS_TEXT = (FIXTURES / "labels.jsonl").read_text(encoding="utf-8")

# The fixture's preferences, written out by hand (index 9, 1-based, is the null one).
PREFERENCES = [2, 1, 1.5, 2, 1.25, 1, 2, 1.5, None, 2, 1, 2]


def hand_win_rate_and_se() -> tuple[float, float]:
    """AlpacaEval's win_rate and standard_error over the literal preferences, in plain Python."""
    values = [p - 1 for p in PREFERENCES if p is not None]
    n = len(values)
    mean = sum(values) / n
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return 100 * mean, 100 * math.sqrt(variance) / math.sqrt(n)


def alpaca_item(**changes: object) -> dict[str, object]:
    item: dict[str, object] = {
        "instruction": "Say hi.",
        "output_1": "Hi.",
        "output_2": "Hello!",
        "generator_1": "base-model",
        "generator_2": "ft-model",
        "preference": 2,
    }
    item.update(changes)
    return item


def jsonl(*objects: object) -> str:
    return "\n".join(json.dumps(o) for o in objects) + "\n"


# --- AlpacaEval ---------------------------------------------------------------------------------


def test_alpaca_fixture_records_and_dropped() -> None:
    result = parse_alpaca_eval(ALPACA_TEXT)
    assert len(result.records) == 11
    assert result.dropped == [(9, "preference is null")]
    assert [r.line for r in result.records] == [i for i in range(1, 13) if i != 9]
    assert [r.s_ft for r in result.records] == [p - 1 for p in PREFERENCES if p is not None]
    first = result.records[0]
    assert first == LabelRecord(
        line=1,
        pair_id=None,
        annotator="toy_pairwise_judge",
        s_ft=1.0,
        dimension=None,
        prompt="Name a fruit that is yellow.",
        base_output="Apple.",
        ft_output="A banana is yellow.",
        generator_base="base-model",
        generator_ft="ft-model",
    )
    assert {(r.generator_base, r.generator_ft) for r in result.records} == {("base-model", "ft-model")}
    assert all(r.pair_id is None and r.dimension is None for r in result.records)


def test_alpaca_fixture_reproduces_win_rate_and_standard_error() -> None:
    expected_wr, expected_se = hand_win_rate_and_se()
    # sanity: the hand arithmetic itself (6.25 / 11 and sqrt(2.011364 / 10) / sqrt(11))
    assert round(expected_wr, 4) == 56.8182 and round(expected_se, 4) == 13.5222

    scores = [r.s_ft for r in parse_alpaca_eval(ALPACA_TEXT).records]
    assert round(100 * statistics.fmean(scores), 4) == round(expected_wr, 4)
    assert round(100 * statistics.stdev(scores) / math.sqrt(len(scores)), 4) == round(expected_se, 4)

    stats = win_rate(scores)
    assert stats.n == 11
    assert round(stats.win_rate, 4) == round(expected_wr, 4)
    assert round(stats.standard_error, 4) == round(expected_se, 4)


def test_alpaca_jsonl_form_matches_array_form() -> None:
    array = parse_alpaca_eval(ALPACA_TEXT)
    as_jsonl = parse_alpaca_eval(jsonl(*json.loads(ALPACA_TEXT)))
    assert [r.s_ft for r in as_jsonl.records] == [r.s_ft for r in array.records]
    assert as_jsonl.dropped == array.dropped  # one object per line, so lines equal indices


def test_alpaca_defaults_nan_missing_preference_and_empty() -> None:
    text = (
        "["
        + ", ".join(
            [
                json.dumps(alpaca_item(preference=1.5)),
                json.dumps({k: v for k, v in alpaca_item().items() if k not in ("preference", "generator_1")}),
                '{"instruction": "x", "output_1": "a", "output_2": "b", "preference": NaN}',
                json.dumps(alpaca_item(preference=1.75, annotator="human", generator_1=None)),
            ]
        )
        + "]"
    )
    result = parse_alpaca_eval(text)
    assert result.dropped == [(2, "preference is null"), (3, "preference is null")]
    tie, soft = result.records
    assert (tie.line, tie.s_ft, tie.annotator) == (1, 0.5, "alpaca_eval")
    assert (soft.line, soft.s_ft, soft.annotator, soft.generator_base) == (4, 0.75, "human", None)
    assert parse_alpaca_eval("") == ParseResult([], [])
    assert parse_alpaca_eval("  []  ") == ParseResult([], [])


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"preference": 2.5}, "preference"),
        ({"preference": 0.5}, "preference"),
        ({"preference": -1}, "preference"),
        ({"preference": 0.99}, "preference"),
        ({"preference": 3}, "preference"),
        ({"preference": "2"}, "preference"),
        ({"preference": True}, "preference"),
        ({"instruction": None}, "instruction"),
        ({"output_2": 3}, "output_2"),
    ],
)
def test_alpaca_invalid_entries(changes: dict[str, object], field: str) -> None:
    text = json.dumps([alpaca_item(), alpaca_item(**changes)])
    with pytest.raises(LabelFormatError, match=r"^line 2: ") as info:
        parse_alpaca_eval(text)
    assert (info.value.line, info.value.field) == (2, field)
    assert f"field '{field}'" in str(info.value)


def test_alpaca_preference_out_of_range_message() -> None:
    with pytest.raises(LabelFormatError) as info:
        parse_alpaca_eval(jsonl(alpaca_item(), alpaca_item(), alpaca_item(preference=2.5)))
    assert str(info.value).startswith("line 3: field 'preference': must be in [1, 2]")
    assert "2.5" in str(info.value)


def test_alpaca_malformed_json() -> None:
    with pytest.raises(LabelFormatError, match=r"^line 2: field '<json>': invalid JSON"):
        parse_alpaca_eval(json.dumps(alpaca_item()) + "\n{not json\n")
    with pytest.raises(LabelFormatError, match=r"^line 3: field '<json>': invalid JSON array"):
        parse_alpaca_eval('[\n  {"preference": 1},\n  {"preference": 2,}\n]')
    with pytest.raises(LabelFormatError, match=r"^line 1: field '<json>': expected a JSON object, got number"):
        parse_alpaca_eval("[1, 2]")


# --- JSONL labels -------------------------------------------------------------------------------


def test_jsonl_fixture() -> None:
    result = parse_jsonl(LABELS_TEXT)
    assert result.dropped == []
    got = [(r.line, r.pair_id, r.annotator, r.dimension, r.s_ft) for r in result.records]
    assert got == [
        (1, "p0", "ann1", None, 1.0),
        (2, "p0", "ann2", None, 1.0),
        (3, "p1", "ann1", None, 0.0),
        (4, "p1", "ann2", None, 0.5),
        (5, "p2", "ann1", None, 0.5),
        (5, "p2", "ann1", "accuracy", 1.0),
        (5, "p2", "ann1", "tone", 0.0),
        (6, "p2", "ann2", None, 1.0),
        (7, "p3", "ann1", None, 0.0),
        (8, "p3", "ann2", None, 1.0),
    ]
    overall = [r for r in result.records if r.dimension is None]
    assert {(r.pair_id, r.annotator) for r in overall} == {(f"p{i}", a) for i in range(4) for a in ("ann1", "ann2")}
    assert all(r.prompt is None and r.base_output is None and r.ft_output is None for r in result.records)
    assert all(r.generator_base is None and r.generator_ft is None for r in result.records)


def test_jsonl_aliases_texts_defaults_and_blank_lines() -> None:
    text = (
        "\n"
        + json.dumps({"id": "q1", "judge": "gpt", "verdict": "FT"})
        + "\n   \n"
        + json.dumps({"prompt": "P", "base_output": "B", "ft_output": "F", "verdict": "tie"})
        + "\n"
        + json.dumps({"pair_id": "q2", "id": "q2", "dimensions": {"tone": "ft"}})
    )
    first, second, third = parse_jsonl(text).records
    assert (first.line, first.pair_id, first.annotator, first.s_ft) == (2, "q1", "gpt", 1.0)
    assert second == LabelRecord(4, None, "default", 0.5, None, "P", "B", "F")
    assert (third.line, third.pair_id, third.dimension, third.s_ft) == (5, "q2", "tone", 1.0)
    assert parse_jsonl("") == ParseResult([], [])
    assert parse_jsonl("\n \n") == ParseResult([], [])


@pytest.mark.parametrize(
    ("obj", "field", "fragment"),
    [
        ({"pair_id": "p", "verdict": "better"}, "verdict", "must be one of base, ft, tie"),
        ({"pair_id": "p", "verdict": 1}, "verdict", "must be one of base, ft, tie"),
        ({"pair_id": "p"}, "verdict", "required unless dimensions"),
        ({"verdict": "ft"}, "pair_id", "required unless prompt, base_output and ft_output"),
        ({"verdict": "ft", "prompt": "P", "base_output": "B"}, "ft_output", "all three or none"),
        ({"pair_id": 7, "verdict": "ft"}, "pair_id", "must be a string"),
        ({"pair_id": " ", "verdict": "ft"}, "pair_id", "must not be empty"),
        ({"pair_id": "a", "id": "b", "verdict": "ft"}, "id", "conflicts with 'pair_id'"),
        # Fields beyond the format's own are refused, as POST /judge/pairwise refuses them.
        ({"pair_id": "p", "verdict": "ft", "extra": [1, 2]}, "extra", "unknown field"),
        ({"pair_id": "p\u0000", "verdict": "ft"}, "pair_id", "NUL"),
        ({"pair_id": "p", "annotator": 3, "verdict": "ft"}, "annotator", "must be a string"),
        ({"pair_id": "p", "dimensions": {"tone": "meh"}}, "dimensions.tone", "must be one of"),
        ({"pair_id": "p", "dimensions": {}}, "dimensions", "non-empty object"),
        ({"pair_id": "p", "verdict": "ft", "dimensions": ["ft"]}, "dimensions", "non-empty object"),
    ],
)
def test_jsonl_invalid_lines(obj: dict[str, object], field: str, fragment: str) -> None:
    text = jsonl({"pair_id": "ok", "verdict": "ft"}, {"pair_id": "ok2", "verdict": "base"}, obj)
    with pytest.raises(LabelFormatError) as info:
        parse_jsonl(text)
    assert (info.value.line, info.value.field) == (3, field)
    assert str(info.value).startswith(f"line 3: field '{field}': ")
    assert fragment in str(info.value)


def test_jsonl_bad_verdict_message() -> None:
    lines = LABELS_TEXT.splitlines()
    lines[6] = '{"pair_id": "p3", "annotator": "ann1", "verdict": "better"}'
    with pytest.raises(LabelFormatError) as info:
        parse_jsonl("\n".join(lines))
    assert str(info.value) == "line 7: field 'verdict': must be one of base, ft, tie (got 'better')"


def test_jsonl_malformed_json_and_non_object() -> None:
    with pytest.raises(LabelFormatError, match=r"^line 2: field '<json>': invalid JSON") as info:
        parse_jsonl('{"pair_id": "p", "verdict": "ft"}\n{"pair_id": "p", "verdict": \n')
    assert info.value.line == 2
    with pytest.raises(LabelFormatError, match=r"^line 1: field '<json>': expected a JSON object, got array"):
        parse_jsonl('["p", "ft"]\n')


# --- dispatch and the error type ----------------------------------------------------------------


def test_parse_dispatches() -> None:
    assert parse(LABELS_TEXT, "jsonl") == parse_jsonl(LABELS_TEXT)
    assert parse(ALPACA_TEXT, "alpaca_eval") == parse_alpaca_eval(ALPACA_TEXT)
    with pytest.raises(ValueError, match="unknown label format"):
        parse(LABELS_TEXT, "csv")  # type: ignore[arg-type]


def test_label_format_error_is_value_error_and_pickles() -> None:
    err = LabelFormatError(4, "verdict", "bad")
    assert isinstance(err, ValueError)
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.line, copy.field, copy.reason, str(copy)) == (4, "verdict", "bad", "line 4: field 'verdict': bad")

"""CSV exports never hand a spreadsheet a formula: texts the callers sent are shown as text."""

from __future__ import annotations

import csv
import io

from judge_service.client.core import export_csv_text
from judge_service.contract.experiments import ExportedPair
from judge_service.spreadsheet import safe_cell


def test_formula_like_text_is_prefixed_and_numbers_are_not() -> None:
    assert [safe_cell(v) for v in ("=1+1", "+1", "-x", "@SUM(A1)", "\tx", "plain", "")] == [
        "'=1+1", "'+1", "'-x", "'@SUM(A1)", "'\tx", "plain", ""
    ]  # fmt: skip
    assert safe_cell(-0.5) == -0.5 and safe_cell(None) == "" and safe_cell(3) == 3


def test_pair_export_csv_neutralises_a_hostile_prompt() -> None:
    pair = ExportedPair(
        id="=cmd|'/c calc'!A1",
        prompt='=HYPERLINK("http://example.invalid","click")',
        base_output="-2 is the answer",
        ft_output="fine",
        tags={},
        outcome="loss",
        score=0.0,
        inconsistent=False,
        judgments=2,
        failed=0,
        dimensions={"accuracy": {"base": 4.0, "ft": 2.5, "diff": -1.5}},
        rationales=["@everyone look"],
    )
    [row] = list(csv.DictReader(io.StringIO(export_csv_text([pair]))))
    assert row["id"] == "'=cmd|'/c calc'!A1"
    assert row["prompt"].startswith("'=HYPERLINK(")
    assert row["base_output"] == "'-2 is the answer" and row["ft_output"] == "fine"
    assert row["score"] == "0.0"
    assert "-1.5" in row.values()  # a negative number stays a number

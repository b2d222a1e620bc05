"""Spreadsheet round trip for one rater (openpyxl): blind export with validated score cells, strict import."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from judge_service.contract.labeling import MAX_COMMENT_CHARS
from judge_service.labeling.blind import MAX_SCORE, MIN_SCORE, PREFERENCES, SLOTS

SHEET = "labels"
META_SHEET = "about"
FIXED = ("ref", "#", "Question", "Expected answer", "Answer 1", "Answer 2")
TAIL = ("Preference (1/2/tie)", "Comment")


def sheet_text(value: str) -> str:
    """A text as a worksheet can hold it: control characters XML 1.0 forbids (ESC of a coloured
    terminal answer, BEL, ...) shown as their Unicode control pictures (U+2400 + code) instead of
    making openpyxl refuse the whole sheet."""
    return ILLEGAL_CHARACTERS_RE.sub(lambda m: chr(0x2400 + ord(m.group())), value)


@dataclass(frozen=True)
class Dimension:
    """A rubric dimension as a sheet shows it."""

    key: str
    title: str


@dataclass(frozen=True)
class SheetRow:
    """One assignment as exported: the token maps the row back; the rest is what the rater sees."""

    token: str
    question: str
    expected: str | None
    answer_1: str
    answer_2: str
    scores: dict[str, dict[str, int]] = field(default_factory=dict)  # already given, blind order
    preference: str | None = None
    comment: str | None = None


@dataclass(frozen=True)
class SheetEntry:
    """One filled row read back (blind order)."""

    row: int
    token: str
    scores: dict[str, dict[str, int]]
    preference: str
    comment: str | None


@dataclass(frozen=True)
class SheetProblem:
    """A wrong cell, by spreadsheet row number and column letter (and header)."""

    row: int
    column: str
    header: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return {"row": self.row, "column": self.column, "header": self.header, "message": self.message}


def headers(dims: Sequence[Dimension]) -> list[str]:
    """Column headers: fixed texts, one score column per answer and dimension, preference, comment."""
    scores = [f"Answer {slot}: {d.title}" for d in dims for slot in SLOTS]
    return [*FIXED, *scores, *TAIL]


def export_xlsx(rater: str, task: str, dims: Sequence[Dimension], rows: Sequence[SheetRow]) -> bytes:
    """One rater's workbook: blind rows, hidden `ref` column, 1-5 whole-number validation on score cells."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = SHEET
    names = headers(dims)
    ws.append(names)
    for number, row in enumerate(rows, start=1):
        scores = [row.scores.get(slot, {}).get(d.key) for d in dims for slot in SLOTS]
        texts = [row.token, number, row.question, row.expected or "", row.answer_1, row.answer_2]
        ws.append([sheet_text(v) if isinstance(v, str) else v for v in (*texts, *scores, row.preference, row.comment)])
        for cell in ws[ws.max_row]:
            if cell.data_type == "f":
                # Untrusted text starting with "=" (an answer "=HYPERLINK(...)") stays text, never a live formula.
                cell.data_type = "s"
    first_score, last_score = len(FIXED) + 1, len(FIXED) + 2 * len(dims)
    last_row = max(2, len(rows) + 1)
    score_range = f"{get_column_letter(first_score)}2:{get_column_letter(last_score)}{last_row}"
    whole = DataValidation(
        type="whole", operator="between", formula1=str(MIN_SCORE), formula2=str(MAX_SCORE), allow_blank=True
    )
    whole.error, whole.errorTitle, whole.showErrorMessage = "A score is a whole number from 1 to 5.", "Score", True
    whole.add(score_range)
    pref_col = get_column_letter(last_score + 1)
    choice = DataValidation(type="list", formula1='"1,2,tie"', allow_blank=True)
    choice.error, choice.showErrorMessage = "1, 2 or tie.", True
    choice.add(f"{pref_col}2:{pref_col}{last_row}")
    ws.add_data_validation(whole)
    ws.add_data_validation(choice)
    ws.column_dimensions["A"].hidden = True
    for col, width in zip("BCDEF", (5, 40, 40, 50, 50), strict=True):
        ws.column_dimensions[col].width = width
    ws.freeze_panes = "C2"
    about = wb.create_sheet(META_SHEET)
    about.append(["task", sheet_text(task)])
    about.append(["rater", sheet_text(rater)])
    about.append(["dimensions", ",".join(d.key for d in dims)])
    about.append(["how", "Score each answer 1-5 per dimension; preference 1, 2 or tie; leave rows you skip empty."])
    for row in about.iter_rows():
        for cell in row:
            if cell.data_type == "f":  # a task or rater name starting with "=" stays text
                cell.data_type = "s"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _score(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and float(value).is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _preference(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer():
        value = str(int(value))
    text = str(value).strip().lower() if value is not None else ""
    return text if text in PREFERENCES else None


def read_xlsx(data: bytes, dims: Sequence[Dimension]) -> tuple[list[SheetEntry], list[SheetProblem]]:
    """Filled rows and every wrong cell; rows with no score, preference or comment are skipped (not labelled)."""
    try:
        wb = load_workbook(io.BytesIO(data), data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many types for a non-workbook
        return [], [SheetProblem(0, "", "", f"not an XLSX workbook: {exc}")]
    if SHEET not in wb.sheetnames:
        return [], [SheetProblem(0, "", "", f"no sheet named {SHEET!r}")]
    ws = wb[SHEET]
    expected = headers(dims)
    problems: list[SheetProblem] = []
    got = [c.value for c in ws[1]][: len(expected)]
    for index, name in enumerate(expected):
        if index >= len(got) or str(got[index] or "").strip() != name:
            problems.append(SheetProblem(1, get_column_letter(index + 1), name, f"header must be {name!r}"))
    if problems:
        return [], problems
    entries: list[SheetEntry] = []
    first = len(FIXED)
    for cells in ws.iter_rows(min_row=2, max_col=len(expected)):
        row = cells[0].row
        assert row is not None
        values = [c.value for c in cells] + [None] * (len(expected) - len(cells))
        token = str(values[0] or "").strip()
        given = values[first:]
        if not any(v is not None and str(v).strip() for v in given):
            continue
        if not token:
            problems.append(SheetProblem(row, "A", "ref", "the hidden ref is missing: rows must keep their ref"))
            continue
        scores: dict[str, dict[str, int]] = {slot: {} for slot in SLOTS}
        for index, (dim, slot) in enumerate((d, s) for d in dims for s in SLOTS):
            col = first + index
            value = values[col]
            score = _score(value)
            if score is None or not MIN_SCORE <= score <= MAX_SCORE:
                shown = "empty" if value is None or str(value).strip() == "" else repr(value)
                message = f"score must be a whole number from {MIN_SCORE} to {MAX_SCORE}, got {shown}"
                problems.append(SheetProblem(row, get_column_letter(col + 1), expected[col], message))
            else:
                scores[slot][dim.key] = score
        pref_col = first + 2 * len(dims)
        preference = _preference(values[pref_col])
        if preference is None:
            shown = repr(values[pref_col]) if values[pref_col] is not None else "empty"
            problems.append(
                SheetProblem(
                    row, get_column_letter(pref_col + 1), expected[pref_col], f"must be 1, 2 or tie, got {shown}"
                )
            )
        comment = str(values[pref_col + 1]) if values[pref_col + 1] else None
        if comment is not None and len(comment) > MAX_COMMENT_CHARS:
            col = pref_col + 1
            message = f"comment is {len(comment)} characters; the limit is {MAX_COMMENT_CHARS}"
            problems.append(SheetProblem(row, get_column_letter(col + 1), expected[col], message))
        elif preference is not None:
            entries.append(SheetEntry(row, token, scores, preference, comment))
    return ([], problems) if problems else (entries, problems)

"""Parse external pairwise verdicts (human labels, other judges' verdicts) into FT-view records.

Formats:

* ``jsonl``: one JSON object per line with ``pair_id``/``id``, ``annotator``/``judge``, ``verdict``
  (``base``, ``ft`` or ``tie``), optional per-dimension ``dimensions`` and optional texts.
* ``alpaca_eval``: AlpacaEval annotations (a JSON array, or JSONL of the same objects); output_1 is
  Base and output_2 is FT, so ``s_ft = preference - 1``. Every convention AlpacaEval uses is read:
  1 / 2 (output_1 / output_2 preferred), soft preferences anywhere in [1, 2] (AlpacaEval 2's
  weighted annotators), 1.5 or 0 (AlpacaEval 1's ``alpaca_eval_gpt4`` files) for a draw, which
  counts as half a win; null (or NaN) preferences are dropped and counted.

Pure functions: nothing is read but the text given. Values get the same rules as `POST /judge/pairwise`
(`contract/validation.py`): no NUL or lone surrogates, names within their column lengths, texts within
`max_text_chars`, and no fields beyond the format's own.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from judge_service.contract.validation import (
    DIMENSION_LEN,
    MODEL_LEN,
    NAME_LEN,
    identifier_problem,
    is_blank,
    load_json,
    text_problem,
)

LabelFormat = Literal["jsonl", "alpaca_eval"]
FORMATS: tuple[LabelFormat, ...] = ("jsonl", "alpaca_eval")

VERDICT_SCORES: dict[str, float] = {"base": 0.0, "tie": 0.5, "ft": 1.0}
DEFAULT_ANNOTATOR = "default"
ALPACA_EVAL_ANNOTATOR = "alpaca_eval"
NULL_PREFERENCE = "preference is null"
# AlpacaEval 1 annotators write 0 for a draw; AlpacaEval 2 writes 1.5. Both are half a win.
ALPACA_DRAW_ZERO = 0.0
ALPACA_DRAW = 1.5
JSON_FIELD = "<json>"  # the field named when a line is not valid JSON or not an object
TEXT_FIELDS = ("prompt", "base_output", "ft_output")
JSONL_FIELDS = frozenset({"pair_id", "id", "annotator", "judge", "verdict", "dimensions", *TEXT_FIELDS})
# AlpacaEval's own annotation columns; the bookkeeping ones (price, time, raw completion) are ignored.
ALPACA_EVAL_FIELDS = frozenset(
    {
        "instruction",
        "output_1",
        "output_2",
        "generator_1",
        "generator_2",
        "annotator",
        "preference",
        "dataset",
        "datasplit",
        "raw_completion",
        "price_per_example",
        "time_per_example",
    }
)
# Longest identifier per field (the columns they are stored in).
NAME_LIMITS = {
    "pair_id": NAME_LEN,
    "id": NAME_LEN,
    "annotator": NAME_LEN,
    "judge": NAME_LEN,
    "generator_1": MODEL_LEN,
    "generator_2": MODEL_LEN,
}
ALPACA_TEXTS = ("instruction", "output_1", "output_2")


@dataclass(frozen=True)
class LabelRecord:
    """One external verdict on one pair, from FT's view (1.0 FT better, 0.5 tie, 0.0 Base better)."""

    line: int  # 1-based line (JSONL) or 1-based array index (AlpacaEval JSON array)
    pair_id: str | None
    annotator: str
    s_ft: float
    dimension: str | None  # None = overall verdict
    prompt: str | None
    base_output: str | None
    ft_output: str | None
    generator_base: str | None = None
    generator_ft: str | None = None


@dataclass(frozen=True)
class ParseResult:
    """Parsed records and the (line, reason) of entries skipped on purpose."""

    records: list[LabelRecord]
    dropped: list[tuple[int, str]]
    draws: int = 0  # AlpacaEval records that are draws (preference 0 or 1.5)


class LabelFormatError(ValueError):
    """An invalid entry; ``line`` and ``field`` say where, the message names both."""

    def __init__(self, line: int, field: str, reason: str) -> None:
        super().__init__(f"line {line}: field {field!r}: {reason}")
        self.line = line
        self.field = field
        self.reason = reason

    def __reduce__(self) -> tuple[type[LabelFormatError], tuple[int, str, str]]:
        return (type(self), (self.line, self.field, self.reason))


def _kind(value: object) -> str:
    """JSON type name of a decoded value, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _json_lines(text: str) -> Iterator[tuple[int, object]]:
    """Decode each non-blank line, yielding (1-based line, value)."""
    # split on "\n" only: str.splitlines would also split on U+2028 etc. inside JSON strings
    for number, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            value = load_json(raw)
        except json.JSONDecodeError as exc:
            raise LabelFormatError(number, JSON_FIELD, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
        except ValueError as exc:
            raise LabelFormatError(number, JSON_FIELD, f"invalid JSON: {exc}") from None
        yield number, value


def _object(line: int, value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise LabelFormatError(line, JSON_FIELD, f"expected a JSON object, got {_kind(value)}")
    return value


def _string(
    obj: dict[str, Any],
    line: int,
    name: str,
    *,
    required: bool = False,
    empty: bool = True,
    max_chars: int | None = None,
) -> str | None:
    """The string under ``name``; null counts as absent. Names (`NAME_LIMITS`) follow the identifier
    rules, texts the text rules and `max_chars`."""
    value = obj.get(name)
    if value is None:
        if required:
            raise LabelFormatError(line, name, "required")
        return None
    if not isinstance(value, str):
        raise LabelFormatError(line, name, f"must be a string, got {_kind(value)}")
    if not empty and is_blank(value):
        raise LabelFormatError(line, name, "must not be empty")
    limit = NAME_LIMITS.get(name)
    if limit is not None:
        problem = identifier_problem(value) or (f"longer than {limit} characters" if len(value) > limit else None)
    else:
        problem = text_problem(value)
        if problem is None and max_chars is not None and len(value) > max_chars:
            problem = f"{len(value)} characters; the limit is {max_chars} (JUDGE_MAX_TEXT_CHARS)"
    if problem:
        raise LabelFormatError(line, name, problem)
    return value


def _known_fields(obj: dict[str, Any], line: int, allowed: frozenset[str]) -> None:
    """Refuse fields the format does not define (as `POST /judge/pairwise` does)."""
    for key in obj:
        if key not in allowed:
            shown = key.encode("utf-8", "backslashreplace").decode("utf-8")[:60]
            raise LabelFormatError(line, shown, f"unknown field; expected some of {', '.join(sorted(allowed))}")


def _aliased(obj: dict[str, Any], line: int, name: str, alias: str) -> str | None:
    """A non-empty string given under ``name`` or ``alias``; both given must agree."""
    value = _string(obj, line, name, empty=False)
    other = _string(obj, line, alias, empty=False)
    if value is not None and other is not None and value != other:
        raise LabelFormatError(line, alias, f"conflicts with {name!r} ({other!r} != {value!r})")
    return value if value is not None else other


def _verdict(value: object, line: int, field: str) -> float:
    """FT-view score of a verdict string (case-insensitive)."""
    key = value.strip().lower() if isinstance(value, str) else None
    if key not in VERDICT_SCORES:
        got = repr(value) if isinstance(value, str) else _kind(value)
        raise LabelFormatError(line, field, f"must be one of base, ft, tie (got {got})")
    return VERDICT_SCORES[key]


def _texts(obj: dict[str, Any], line: int, max_chars: int | None) -> tuple[str, str, str] | None:
    """prompt, base_output and ft_output: all three or none, none of them blank."""
    values = [_string(obj, line, name, empty=False, max_chars=max_chars) for name in TEXT_FIELDS]
    given = [name for name, value in zip(TEXT_FIELDS, values, strict=True) if value is not None]
    if not given:
        return None
    for name, value in zip(TEXT_FIELDS, values, strict=True):
        if value is None:
            raise LabelFormatError(line, name, f"required when {', '.join(given)} given (all three or none)")
    prompt, base_output, ft_output = values
    assert prompt is not None and base_output is not None and ft_output is not None
    return prompt, base_output, ft_output


def _jsonl_records(line: int, obj: dict[str, Any], max_chars: int | None = None) -> list[LabelRecord]:
    """Records of one label line: the overall verdict first, then each dimension in order."""
    _known_fields(obj, line, JSONL_FIELDS)
    texts = _texts(obj, line, max_chars)
    pair_id = _aliased(obj, line, "pair_id", "id")
    if pair_id is None and texts is None:
        raise LabelFormatError(line, "pair_id", "required unless prompt, base_output and ft_output are given")
    annotator = _aliased(obj, line, "annotator", "judge") or DEFAULT_ANNOTATOR

    scores: list[tuple[str | None, float]] = []
    dimensions = obj.get("dimensions")
    if obj.get("verdict") is not None:
        scores.append((None, _verdict(obj["verdict"], line, "verdict")))
    elif dimensions is None:
        raise LabelFormatError(line, "verdict", "required unless dimensions are given")
    if dimensions is not None:
        if not isinstance(dimensions, dict) or not dimensions:
            raise LabelFormatError(line, "dimensions", "must be a non-empty object of dimension: verdict")
        for key, value in dimensions.items():
            if not key.strip():
                raise LabelFormatError(line, "dimensions", "dimension keys must not be empty")
            problem = identifier_problem(key)
            if problem:
                raise LabelFormatError(line, "dimensions", f"dimension keys {problem}")
            if len(key) > DIMENSION_LEN:
                raise LabelFormatError(line, "dimensions", f"dimension is longer than {DIMENSION_LEN} characters")
            scores.append((key, _verdict(value, line, f"dimensions.{key}")))

    prompt, base_output, ft_output = texts if texts is not None else (None, None, None)
    return [
        LabelRecord(line, pair_id, annotator, s_ft, dimension, prompt, base_output, ft_output)
        for dimension, s_ft in scores
    ]


def parse_jsonl(text: str, max_text_chars: int | None = None) -> ParseResult:
    """Parse the service's JSONL label format; raises LabelFormatError on the first invalid line."""
    records: list[LabelRecord] = []
    for line, value in _json_lines(text.removeprefix("\ufeff")):
        records.extend(_jsonl_records(line, _object(line, value), max_text_chars))
    return ParseResult(records, [])


def _alpaca_items(text: str) -> Iterator[tuple[int, object]]:
    """(1-based index, item) of a JSON array, or (1-based line, object) of JSONL."""
    if not text.lstrip().startswith("["):
        yield from _json_lines(text)
        return
    try:
        data = load_json(text)
    except json.JSONDecodeError as exc:
        # no array index is known here, so the error names the text line
        raise LabelFormatError(exc.lineno, JSON_FIELD, f"invalid JSON array: {exc.msg} (column {exc.colno})") from None
    except ValueError as exc:
        raise LabelFormatError(1, JSON_FIELD, f"invalid JSON array: {exc}") from None
    yield from enumerate(data, start=1)


def _preference(obj: dict[str, Any], line: int) -> float | None:
    """The preference in [1, 2] (0, AlpacaEval 1's draw, read as 1.5), or None when null/missing.

    NaN counts as null, as in pandas.
    """
    value = obj.get("preference")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LabelFormatError(line, "preference", f"must be a number in [1, 2] or 0, got {_kind(value)}")
    if value == ALPACA_DRAW_ZERO:
        return ALPACA_DRAW
    if not 1.0 <= value <= 2.0:
        raise LabelFormatError(
            line,
            "preference",
            f"must be in [1, 2] (1 = output_1, 2 = output_2, 1.5 a draw) or 0 (a draw), got {value!r}",
        )
    return float(value)


def parse_alpaca_eval(text: str, max_text_chars: int | None = None) -> ParseResult:
    """Parse AlpacaEval annotations (Base = output_1, FT = output_2); null preferences are dropped.

    0 and 1.5 are draws (`s_ft` 0.5), counted in `draws`.
    """
    records: list[LabelRecord] = []
    dropped: list[tuple[int, str]] = []
    draws = 0
    for line, value in _alpaca_items(text.removeprefix("\ufeff")):
        obj = _object(line, value)
        _known_fields(obj, line, ALPACA_EVAL_FIELDS)
        for name in ALPACA_TEXTS:
            _string(obj, line, name, empty=False, max_chars=max_text_chars)
        preference = _preference(obj, line)
        if preference is None:
            dropped.append((line, NULL_PREFERENCE))
            continue
        draws += preference == ALPACA_DRAW
        records.append(
            LabelRecord(
                line=line,
                pair_id=None,
                annotator=_string(obj, line, "annotator", empty=False) or ALPACA_EVAL_ANNOTATOR,
                s_ft=preference - 1.0,
                dimension=None,
                prompt=_string(obj, line, "instruction", required=True),
                base_output=_string(obj, line, "output_1", required=True),
                ft_output=_string(obj, line, "output_2", required=True),
                generator_base=_string(obj, line, "generator_1"),
                generator_ft=_string(obj, line, "generator_2"),
            )
        )
    return ParseResult(records, dropped, draws)


def parse(text: str, fmt: LabelFormat, max_text_chars: int | None = None) -> ParseResult:
    """Parse ``text`` in the given format; texts longer than ``max_text_chars`` are refused."""
    if fmt == "jsonl":
        return parse_jsonl(text, max_text_chars)
    if fmt == "alpaca_eval":
        return parse_alpaca_eval(text, max_text_chars)
    raise ValueError(f"unknown label format {fmt!r}; expected one of {', '.join(FORMATS)}")

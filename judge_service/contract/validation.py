"""Validation shared by every entry point: the HTTP API, label imports, schedules and the CLI.

One set of rules, so a value refused by `POST /judge/pairwise` is refused everywhere (docs/api-limits.md):

* identifiers and names (ids, experiment names, tag and metadata keys, annotators, sources, query
  values): no NUL, no lone surrogates, no other control characters, at most their column's length;
* free texts (prompts, answers, references, metadata string values): no NUL and no lone surrogates
  (PostgreSQL cannot store U+0000 in text or JSON, and a lone surrogate cannot be encoded as UTF-8);
  everything else is stored as sent;
* answers made only of whitespace and invisible format characters (zero-width space, BOM, ...) are blank;
* numbers fit their column types (int32 / int64), floats are finite; generation settings take
  JSON numbers only (a boolean or a numeric string is refused, not converted);
* JSON objects (metadata) are at most `MAX_JSON_DEPTH` deep and `MAX_JSON_CHARS` long when encoded;
  an experiment's metadata keys that the service reads (`default_repeats`, `tie_margin`) are in range;
* datetimes convert to UTC without overflow and lie within `MIN_DATETIME`..`MAX_DATETIME`.

Pure: pydantic and the standard library only (the lengths are the ORM's, checked by a test).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from pydantic import AfterValidator, Field, Strict, StringConstraints

INT32_MAX: Final = 2**31 - 1
INT64_MAX: Final = 2**63 - 1
MAX_JSON_DEPTH: Final = 32
MAX_JSON_CHARS: Final = 65_536
MAX_TAGS: Final = 64
MAX_TAG_VALUE_CHARS: Final = 1_000
MAX_QUERY_CHARS: Final = 1_000
MIN_DATETIME: Final = datetime(1900, 1, 1, tzinfo=UTC)
MAX_DATETIME: Final = datetime(9999, 12, 30, tzinfo=UTC)
# Rubric files added at run time (`POST /rubrics`): the built-in ones are about 4,000 characters.
MAX_RUBRIC_CHARS: Final = 65_536
# Judgments per order and the pair tie margin (JudgeOptions; an experiment's metadata may hold defaults).
MAX_REPEATS: Final = 16
MAX_TIE_MARGIN: Final = 0.5
# Intervals of schedules: the upper bound fits an int32 column and APScheduler's date arithmetic.
MAX_INTERVAL_S: Final = 366 * 86_400

# Column lengths (store/models.py; tests/test_hostile_input.py checks that they agree).
NAME_LEN: Final = 200  # experiments.name, pairs.external_id, schedules.name, labels.annotator
MODEL_LEN: Final = 300  # experiments.base_model / ft_model
SOURCE_LEN: Final = 100  # labels.source
RUBRIC_REF_LEN: Final = 120  # schedules.rubric
DIMENSION_LEN: Final = 24  # labels.dimension, judgment_scores.dimension
CRON_LEN: Final = 120  # schedules.cron
RUN_ID_LEN: Final = 36  # runs.id
IDEMPOTENCY_KEY_LEN: Final = 255  # runs.idempotency_key is 300 with the caller's scope prefixed

NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$"
SOURCE_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
_NAME_RE: Final = re.compile(NAME_PATTERN)
_DIGITS_RE: Final = re.compile(r"[0-9]{1,19}")
# Invisible characters that do not make an answer: format (Cf: zero-width space, joiners, BOM,
# bidi marks, soft hyphen), controls (Cc) and separators.
_INVISIBLE: Final = frozenset({"Cf", "Cc", "Zs", "Zl", "Zp"})


def text_problem(value: str) -> str | None:
    """Why a text cannot be stored (NUL or a lone surrogate), or None."""
    if "\x00" in value:
        return "must not contain NUL (U+0000)"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must not contain lone surrogates (U+D800..U+DFFF)"
    return None


def identifier_problem(value: str) -> str | None:
    """Why a value cannot be an identifier or name (text problems, or control characters), or None."""
    problem = text_problem(value)
    if problem:
        return problem
    if any(unicodedata.category(c) == "Cc" for c in value):
        return "must not contain control characters"
    return None


def is_blank(value: str) -> bool:
    """True for text made only of whitespace and invisible characters (zero-width space, BOM, ...)."""
    return all(c.isspace() or unicodedata.category(c) in _INVISIBLE for c in value)


def check_text(value: str) -> str:
    """A text that can be stored (NUL and lone surrogates refused)."""
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def check_identifier(value: str) -> str:
    """An identifier or name that can be stored and matched (no NUL, surrogates or controls)."""
    problem = identifier_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def check_not_blank(value: str) -> str:
    """A text with something visible in it."""
    if is_blank(value):
        raise ValueError("must not be empty, whitespace or only invisible characters")
    return value


def json_problem(value: Any, max_depth: int = MAX_JSON_DEPTH, max_chars: int = MAX_JSON_CHARS) -> str | None:
    """Why a JSON value cannot be stored (depth, size, NUL/surrogates, non-finite numbers), or None.

    Iterative, so a hostile nesting depth cannot exhaust the stack before it is refused.
    """
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        node, depth, path = stack.pop()
        if depth > max_depth:
            return f"nested deeper than {max_depth} levels (at {path[:80] or 'top'}...)"
        if isinstance(node, dict):
            for key, child in node.items():
                if not isinstance(key, str):
                    return f"keys must be strings (at {path or 'top'})"
                problem = identifier_problem(key)
                if problem:
                    return f"key {_shown(key)}: {problem}"
                stack.append((child, depth + 1, f"{path}.{_shown(key)}" if path else _shown(key)))
        elif isinstance(node, list):
            stack.extend((child, depth + 1, f"{path}[{i}]") for i, child in enumerate(node))
        elif isinstance(node, str):
            problem = text_problem(node)
            if problem:
                return f"value at {path or 'top'} {problem}"
        elif isinstance(node, float) and not math.isfinite(node):
            return f"value at {path or 'top'} must be a finite number"
        elif isinstance(node, bool) or node is None or isinstance(node, int | float):
            continue
        else:
            return f"value at {path or 'top'} is not JSON"
    size = len(json.dumps(value, ensure_ascii=False))
    if size > max_chars:
        return f"{size} characters when encoded as JSON; the limit is {max_chars}"
    return None


def check_json_object(value: dict[str, Any]) -> dict[str, Any]:
    """A metadata object within the depth and size limits, with storable keys and strings."""
    problem = json_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def check_experiment_metadata(value: dict[str, Any]) -> dict[str, Any]:
    """Experiment metadata: a JSON object whose keys the service reads back follow their own rules.

    `default_repeats` (judgments per order when a request gives none) is a whole number 1 to
    `MAX_REPEATS`; `tie_margin` a number in [0, 0.5). Anything else there made the next submission
    fail (`int("abc")`) or judge a million times.
    """
    check_json_object(value)
    repeats = value.get("default_repeats")
    if repeats is not None and (type(repeats) is not int or not 1 <= repeats <= MAX_REPEATS):
        raise ValueError(f"default_repeats must be a whole number from 1 to {MAX_REPEATS}, got {_shown(str(repeats))}")
    margin = value.get("tie_margin")
    if margin is not None and (type(margin) not in (int, float) or not 0 <= margin < MAX_TIE_MARGIN):
        raise ValueError(f"tie_margin must be a number in [0, {MAX_TIE_MARGIN}), got {_shown(str(margin))}")
    return value


def check_tags(value: dict[str, Any]) -> dict[str, Any]:
    """Tags: at most `MAX_TAGS` keys."""
    if len(value) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags")
    return value


def to_utc(value: datetime) -> datetime:
    """A datetime in UTC (naive taken as UTC), refused when the conversion would leave the calendar."""
    try:
        converted = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise ValueError(f"out of range: {exc}") from None
    if not MIN_DATETIME <= converted <= MAX_DATETIME:
        raise ValueError(f"must lie between {MIN_DATETIME.date()} and {MAX_DATETIME.date()}")
    return converted


def load_json(raw: str | bytes) -> Any:
    """`json.loads` where every way hostile text can fail is a `ValueError` (callers catch only that).

    `json.loads` also raises ValueError for integers past Python's digit limit, UnicodeDecodeError
    (a ValueError) for bytes that are not UTF-8, and RecursionError for nesting past the recursion
    limit: that one becomes a ValueError here. `JSONDecodeError`s pass through unchanged.
    """
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def experiment_id_of(ref: str) -> int | None:
    """The numeric id an experiment reference may stand for: ASCII digits within int64, else None."""
    if _DIGITS_RE.fullmatch(ref) and int(ref) <= INT64_MAX:
        return int(ref)
    return None


def name_problem(value: str, max_len: int = NAME_LEN) -> str | None:
    """Why a value cannot name a new experiment (pattern, length, characters), or None."""
    if not value or len(value) > max_len:
        return f"must be 1 to {max_len} characters"
    if not _NAME_RE.match(value):
        return f"must match {NAME_PATTERN}"
    return identifier_problem(value)


def _shown(value: str) -> str:
    """A value for messages: escaped (surrogates and NULs visible) and cut short."""
    escaped = value.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
    return repr(escaped[:40] + ("..." if len(escaped) > 40 else ""))


# -- reusable annotated types ------------------------------------------------------------------

Identifier = Annotated[str, StringConstraints(min_length=1, max_length=NAME_LEN), AfterValidator(check_identifier)]
ExperimentName = Annotated[
    str, StringConstraints(min_length=1, max_length=NAME_LEN, pattern=NAME_PATTERN), AfterValidator(check_identifier)
]
ExperimentRef = Identifier  # a name or a numeric id
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=MODEL_LEN), AfterValidator(check_identifier)]
SourceName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=SOURCE_LEN, pattern=SOURCE_PATTERN),
    AfterValidator(check_identifier),
]
RubricRef = Annotated[str, StringConstraints(min_length=1, max_length=RUBRIC_REF_LEN), AfterValidator(check_identifier)]
QueryValue = Annotated[str, StringConstraints(max_length=MAX_QUERY_CHARS), AfterValidator(check_identifier)]
Text = Annotated[str, AfterValidator(check_text)]
NonBlankText = Annotated[
    str, StringConstraints(min_length=1), AfterValidator(check_text), AfterValidator(check_not_blank)
]
RubricText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_RUBRIC_CHARS),
    AfterValidator(check_text),
    AfterValidator(check_not_blank),
]
TagKey = Annotated[str, StringConstraints(min_length=1, max_length=NAME_LEN), AfterValidator(check_identifier)]
TagValue = (
    Annotated[str, StringConstraints(max_length=MAX_TAG_VALUE_CHARS), AfterValidator(check_identifier)]
    | Annotated[int, Field(ge=-INT64_MAX - 1, le=INT64_MAX)]
    | Annotated[float, Field(allow_inf_nan=False)]
    | bool
    | None
)
Tags = Annotated[dict[TagKey, TagValue], AfterValidator(check_tags)]
JsonObject = Annotated[dict[str, Any], AfterValidator(check_json_object)]
ExperimentMetadata = Annotated[dict[str, Any], AfterValidator(check_experiment_metadata)]
Int32 = Annotated[int, Field(ge=-INT32_MAX - 1, le=INT32_MAX)]
PositiveInt32 = Annotated[int, Field(ge=1, le=INT32_MAX)]
Int64Id = Annotated[int, Field(ge=1, le=INT64_MAX)]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{64}$"), AfterValidator(str.lower)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
# Measured settings (generation settings): a JSON number as such; `true` or "0.7" is refused, not read as 1 or 0.7.
StrictFiniteFloat = Annotated[float, Strict(), Field(allow_inf_nan=False)]
StrictInt = Annotated[int, Strict()]
UtcDatetime = Annotated[datetime, AfterValidator(to_utc)]

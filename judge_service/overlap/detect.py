"""Find eval prompts in training data, exactly (after normalisation) and near-exactly (MinHash LSH).

Pure: no database. docs/fairness-checks.md describes the rules:

* normalisation: Unicode NFKC, casefold, punctuation to spaces, whitespace runs to one space;
* exact: equal normalised texts;
* near: word shingles (`shingle` words, default 5) hashed into a 128-permutation MinHash; the eval
  prompts are indexed in an LSH at a lower candidate threshold (`lsh_threshold`) than the reported
  one, so near copies at the reported threshold are very unlikely to be missed, and every candidate
  is verified by the true Jaccard similarity of its shingle sets: no LSH false positive is listed;
* a training line yields texts from `prompt`; `messages` or `conversations` (each user turn);
  `instruction` with `input` appended; lines with none of these are counted and skipped.

The eval prompts (thousands) are indexed and the training file (possibly millions of lines) is
streamed past them, so memory grows with the eval set, not with the training file.
"""

from __future__ import annotations

import functools
import hashlib
import re
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from datasketch import MinHash, MinHashLSH

from judge_service.contract.validation import load_json

NUM_PERM = 128
DEFAULT_SHINGLE = 5
DEFAULT_THRESHOLD = 0.8
DEFAULT_LSH_THRESHOLD = 0.5
_SPACES = re.compile(r"\s+")
_USER_ROLES = frozenset({"user", "human"})


class TrainFormatError(ValueError):
    """A training line that is not a JSON object (`line` is 1-based), or a whole file that is unusable (`line` 0)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


class TrainTooLargeError(TrainFormatError):
    """A training file over the line limit (a 413 at the API, not a format error)."""


@functools.cache
def _separators() -> dict[int, str]:
    """Every punctuation (P*) and symbol (S*) code point mapped to a space, for str.translate (built once)."""
    return {c: " " for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c))[0] in "PS"}


def normalize(text: str) -> str:
    """NFKC, casefolded, punctuation and symbols as spaces, whitespace collapsed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _SPACES.sub(" ", folded.translate(_separators())).strip()


def shingles(normalized: str, size: int = DEFAULT_SHINGLE) -> set[str]:
    """Word `size`-grams of a normalised text; a text shorter than `size` words is one shingle."""
    words = normalized.split(" ")
    if len(words) <= size:
        return {normalized}
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    """|a ∩ b| / |a ∪ b| (0 for two empty sets)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def _content_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        parts = [str(p["text"]) for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return "\n".join(parts) if parts else None
    return None


def texts_of(record: dict[str, Any]) -> list[str]:
    """The prompt texts of one training record (see the module docstring)."""
    out: list[str] = []
    if isinstance(record.get("prompt"), str):
        out.append(record["prompt"])
    for key, role_key, text_key in (("messages", "role", "content"), ("conversations", "from", "value")):
        turns = record.get(key)
        if isinstance(turns, list):
            for turn in turns:
                if isinstance(turn, dict) and str(turn.get(role_key, "")).lower() in _USER_ROLES:
                    text = _content_text(turn.get(text_key))
                    if text:
                        out.append(text)
    if isinstance(record.get("instruction"), str):
        extra = record.get("input")
        out.append(record["instruction"] + ("\n" + extra if isinstance(extra, str) and extra.strip() else ""))
    return [t for t in out if t.strip()]


@dataclass(frozen=True)
class Match:
    """An eval item found in the training data."""

    key: Any
    kind: str  # exact | near
    similarity: float
    train_line: int


@dataclass
class TrainStats:
    """What was read: lines (non-blank), lines that gave a text, and the SHA-256 of the bytes."""

    lines: int = 0
    lines_with_text: int = 0
    sha256: str = ""
    _digest: Any = field(default_factory=hashlib.sha256, repr=False)


def read_jsonl(chunks: Iterable[bytes], stats: TrainStats) -> Iterator[tuple[int, list[str]]]:
    """(1-based line number, texts) per training line; hashes the bytes into `stats` as it goes."""
    pending = b""
    number = 0

    def parse(raw: bytes, number: int) -> list[str] | None:
        if not raw.strip():
            return None
        stats.lines += 1
        try:
            record = load_json(raw)
        except ValueError as exc:
            raise TrainFormatError(number, f"not JSON ({exc})") from None
        if not isinstance(record, dict):
            raise TrainFormatError(number, "not a JSON object")
        texts = texts_of(record)
        stats.lines_with_text += 1 if texts else 0
        return texts

    for chunk in chunks:
        stats._digest.update(chunk)
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            number += 1
            texts = parse(raw, number)
            if texts:
                yield number, texts
    if pending:
        number += 1
        texts = parse(pending, number)
        if texts:
            yield number, texts
    stats.sha256 = stats._digest.hexdigest()


# Generating the permutations costs more than hashing a prompt's shingles: make them once.
_TEMPLATE = MinHash(num_perm=NUM_PERM, seed=1)


def _minhash(items: set[str]) -> MinHash:
    m = MinHash(num_perm=NUM_PERM, permutations=_TEMPLATE.permutations, scheme=_TEMPLATE.scheme)
    m.update_batch([s.encode("utf-8") for s in items])
    return m


class OverlapIndex:
    """The eval prompts, indexed for exact and near lookups of training texts."""

    def __init__(
        self,
        prompts: Iterable[tuple[Any, str]],
        *,
        threshold: float = DEFAULT_THRESHOLD,
        shingle: int = DEFAULT_SHINGLE,
        lsh_threshold: float = DEFAULT_LSH_THRESHOLD,
    ) -> None:
        self.threshold, self.shingle = threshold, shingle
        self.exact: dict[str, list[Any]] = {}
        self.sets: dict[int, set[str]] = {}
        self.keys_of: dict[int, list[Any]] = {}
        self.lsh = MinHashLSH(threshold=min(lsh_threshold, threshold), num_perm=NUM_PERM)
        by_text: dict[str, int] = {}
        for key, prompt in prompts:
            text = normalize(prompt)
            self.exact.setdefault(text, []).append(key)
            slot = by_text.get(text)
            if slot is None:
                slot = by_text[text] = len(by_text)
                self.sets[slot] = shingles(text, shingle)
                self.keys_of[slot] = []
                self.lsh.insert(slot, _minhash(self.sets[slot]))
            self.keys_of[slot].append(key)
        self.best: dict[Any, Match] = {}

    def add_train_text(self, line: int, text: str) -> None:
        """Compare one training text with every eval prompt; keep each prompt's best match."""
        norm = normalize(text)
        if not norm:
            return
        for key in self.exact.get(norm, []):
            current = self.best.get(key)
            if current is None or current.kind != "exact":
                self.best[key] = Match(key, "exact", 1.0, line)
        grams = shingles(norm, self.shingle)
        for slot in self.lsh.query(_minhash(grams)):
            similarity = jaccard(grams, self.sets[slot])
            if similarity < self.threshold:
                continue  # an LSH candidate below the threshold: never listed
            for key in self.keys_of[slot]:
                current = self.best.get(key)
                if current is None or (current.kind == "near" and similarity > current.similarity):
                    self.best[key] = Match(key, "near", similarity, line)

    def matches(self) -> list[Match]:
        """The matches found, exact first, then by decreasing similarity."""
        return sorted(self.best.values(), key=lambda m: (m.kind != "exact", -m.similarity, m.train_line, str(m.key)))


def find_overlap(
    prompts: Iterable[tuple[Any, str]],
    train_chunks: Iterable[bytes],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    shingle: int = DEFAULT_SHINGLE,
    lsh_threshold: float = DEFAULT_LSH_THRESHOLD,
    max_lines: int | None = None,
) -> tuple[list[Match], TrainStats]:
    """Matches of the eval `prompts` ((key, text) pairs) in a JSONL training file given as byte chunks."""
    index = OverlapIndex(prompts, threshold=threshold, shingle=shingle, lsh_threshold=lsh_threshold)
    stats = TrainStats()
    for line, texts in read_jsonl(train_chunks, stats):
        if max_lines is not None and stats.lines > max_lines:
            raise TrainTooLargeError(line, f"more than {max_lines} training lines (JUDGE_MAX_OVERLAP_TRAIN_LINES)")
        for text in texts:
            index.add_train_text(line, text)
    if not stats.lines_with_text:
        # An empty file, or one in another format, would store a check that finds nothing and that
        # exclude=overlap then reads instead of the last real one.
        raise TrainFormatError(
            0,
            f"none of the {stats.lines} training lines holds a prompt text "
            "(prompt, user turns of messages/conversations, instruction): nothing to compare",
        )
    return index.matches(), stats

"""The judgment key: one function builds it, and SQL's unique constraint is that key."""

from __future__ import annotations

import hashlib
import json


def judgment_key(
    *,
    pair_id: int,
    rubric_hash: str,
    fingerprint_hash: str,
    mode: str,
    order: str,
    repeat: int,
    purpose: str = "judge",
    scope: str = "",
) -> str:
    """SHA-256 of everything that makes two judgments the same judgment.

    `scope` separates judgments that must not be shared, e.g. the run id of a re-judge run;
    original judgments use "" so a re-sent pair maps onto the judgments it already has.
    """
    # Exactly the text of json.dumps(parts, sort_keys=True), written out: submissions build tens of
    # thousands of keys, and stored keys must never change.
    text = (
        f'{{"judge": {_s(fingerprint_hash)}, "mode": {_s(mode)}, "order": {_s(order)}, "pair": {int(pair_id)}, '
        f'"purpose": {_s(purpose)}, "repeat": {int(repeat)}, "rubric": {_s(rubric_hash)}, "scope": {_s(scope)}}}'
    )
    return hashlib.sha256(text.encode()).hexdigest()


_s = json.encoder.encode_basestring_ascii  # how json.dumps writes a string


def seed_for(base_seed: int, repeat: int) -> int:
    """Per-repeat seed: distinct for every repeat, the same for both orders of one repeat."""
    return base_seed + repeat


# The same text as json.dumps(..., ensure_ascii=False), from one encoder: json.dumps builds a new
# encoder on every call with a non-default argument, which cost ~0.1 s per 10,000-pair submission.
_UNICODE_JSON = json.JSONEncoder(ensure_ascii=False)


def texts_hash(prompt: str, base_output: str, ft_output: str) -> str:
    """Identity of a pair's prompt and answers (no reference): matches imported labels to pairs."""
    return hashlib.sha256(_UNICODE_JSON.encode([prompt, base_output, ft_output]).encode()).hexdigest()


def pair_content_hash(prompt: str, base_output: str, ft_output: str, reference: str | None) -> str:
    """Identity of a pair's texts, to tell a re-sent pair from a changed one."""
    return hashlib.sha256(_UNICODE_JSON.encode([prompt, base_output, ft_output, reference]).encode()).hexdigest()

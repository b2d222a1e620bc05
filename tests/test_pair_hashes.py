"""Stored pair hashes never change: they are exactly SHA-256 of json.dumps(..., ensure_ascii=False)."""

from __future__ import annotations

import hashlib
import json

from hypothesis import given
from hypothesis import strategies as st

from judge_service.engine.keys import pair_content_hash, texts_hash

texts = st.text(min_size=0, max_size=40)


@given(texts, texts, texts, st.none() | texts)
def test_hashes_equal_the_json_dumps_definition(prompt: str, base: str, ft: str, reference: str | None) -> None:
    def sha(value: object) -> str:
        return hashlib.sha256(json.dumps(value, ensure_ascii=False).encode()).hexdigest()

    assert pair_content_hash(prompt, base, ft, reference) == sha([prompt, base, ft, reference])
    assert texts_hash(prompt, base, ft) == sha([prompt, base, ft])


def test_a_known_value_is_stable() -> None:
    # Written down once from the definition: a change here would orphan every stored pair.
    expected = hashlib.sha256('["Q", "Ä", "b", null]'.encode()).hexdigest()
    assert pair_content_hash("Q", "Ä", "b", None) == expected

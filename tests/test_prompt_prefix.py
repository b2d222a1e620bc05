"""vLLM's prefix cache can only reuse what comes first: the shared rubric text must precede the pair."""

from __future__ import annotations

import json
from typing import Any

import pytest

from judge_service.rubrics.registry import RubricRegistry
from judge_service.rubrics.render import ORDERS, Mode, render_pair
from tests.conftest import ROOT, skip_or_fail

MODEL_DIR = ROOT / ".judge-model" / "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    if not (MODEL_DIR / "tokenizer_config.json").is_file():
        skip_or_fail(f"no prepared judge model in {MODEL_DIR}; run `judge-service judge-model prepare`")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(MODEL_DIR))


def example_pairs(n: int) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (ROOT / "examples/pairs.jsonl").read_text().splitlines() if line.strip()]
    return rows[:n] + rows[-n:]


def token_ids(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool) -> list[int]:
    """Token ids as vLLM builds them: the chat template's text, then the tokenizer."""
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=generation_prompt, tokenize=False)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def common_prefix(sequences: list[list[int]]) -> int:
    length = 0
    for column in zip(*sequences, strict=False):
        if len(set(column)) > 1:
            break
        length += 1
    return length


@pytest.mark.parametrize("mode", ["reasoned", "fast"])
@pytest.mark.parametrize("rubric", ["customer_service", "copywriting", "general"])
def test_shared_rubric_prefix_comes_before_anything_pair_specific(tokenizer: Any, rubric: str, mode: Mode) -> None:
    version = RubricRegistry.load(ROOT / "rubrics", ROOT / "prompts").get(rubric)
    pairs = example_pairs(3)
    conversations = [
        render_pair(
            version,
            order,
            prompt=p["prompt"],
            base_output=p["base_output"],
            ft_output=p["ft_output"],
            reference=p.get("reference"),
            mode=mode,
        )
        for p in pairs
        for order in ORDERS
    ]
    prompts = [token_ids(tokenizer, c, True) for c in conversations]
    system = conversations[0][0]
    assert system["role"] == "system" and all(c[0] == system for c in conversations)  # byte-identical
    for pair in pairs:  # nothing pair-specific in the shared part
        for text in (pair["prompt"], pair["base_output"], pair["ft_output"]):
            assert text[:40] not in system["content"]
    # The system turn, as the judge's own chat template renders it, is a token prefix of every prompt.
    system_ids = token_ids(tokenizer, [system], False)
    assert all(ids[: len(system_ids)] == system_ids for ids in prompts)
    shared = common_prefix(prompts)
    assert shared >= len(system_ids)
    # ... and the first token that differs is in the user turn, after the question starts.
    user_start = token_ids(tokenizer, [system, {"role": "user", "content": "<<<QUESTION>>>"}], False)
    assert shared <= len(user_start)
    print(f"{rubric}/{mode}: {shared} shared tokens of {min(map(len, prompts))}-{max(map(len, prompts))}")

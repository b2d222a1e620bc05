"""Render a rubric's Jinja2 templates into chat messages for one pair in one answer order."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import jinja2

from judge_service.rubrics.defences import ControlTokens, DefenceLog, defend_text, new_nonce
from judge_service.rubrics.models import FAILURE_TAGS
from judge_service.rubrics.registry import PromptTemplate, RubricVersion

Order = Literal["base_first", "ft_first"]
Mode = Literal["reasoned", "fast"]
ORDERS: tuple[Order, Order] = ("base_first", "ft_first")
Message = dict[str, str]

# Answers are untrusted data; an answer that contains our closing delimiter could fake the
# end of its block and smuggle text that looks like ours. Breaking the marker keeps it inert.
# This is the escaping of templates written before `defences.py`; it stays byte-identical so that
# their judgments still re-render to the messages that were sent.
_DELIMITER = "<<<"
_DELIMITER_ESCAPED = "<\u200b<<"
# Templates rendered the old way: fixed delimiters, zero-width escaping, no control-token defence.
LEGACY_TEMPLATES = frozenset({"pairwise@v1"})

_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=False,
    trim_blocks=True,
    lstrip_blocks=True,
)


@lru_cache(maxsize=64)
def _compile(text: str) -> jinja2.Template:
    return _ENV.from_string(text)


def _data(text: str | None) -> str | None:
    return None if text is None else text.replace(_DELIMITER, _DELIMITER_ESCAPED).strip()


def answers_for_order(order: Order, base_output: str, ft_output: str) -> tuple[str, str]:
    """(answer A, answer B) for an order: `base_first` puts Base in slot A."""
    return (base_output, ft_output) if order == "base_first" else (ft_output, base_output)


@dataclass(frozen=True)
class Rendering:
    """The messages of one rendering and what its defences did (None for legacy templates)."""

    messages: list[Message]
    defences: dict[str, Any] | None


def is_defended(template: PromptTemplate) -> bool:
    """True for templates rendered with the prompt defences (every template after `pairwise@v1`)."""
    return template.ref not in LEGACY_TEMPLATES


def render_messages(
    version: RubricVersion,
    *,
    question: str,
    answer_a: str,
    answer_b: str,
    reference: str | None = None,
    mode: Mode = "reasoned",
    tokens: ControlTokens | None = None,
    nonce: str | None = None,
) -> Rendering:
    """System message = static rubric text (prefix-cache friendly), user message = the data.

    Defended templates get every text through `defences.defend_text` and a delimiter nonce (drawn
    here unless given: pass the recorded one to reproduce a judgment). `tokens` is the judge
    tokenizer's control-marker list; the built-in list stands in when it is None.
    """
    template = version.template
    system = _compile(template.system).render(rubric=version.rubric, failure_tags=FAILURE_TAGS, mode=mode)
    texts = {"question": question, "reference": reference, "answer_a": answer_a, "answer_b": answer_b}
    defences: dict[str, Any] | None = None
    if is_defended(template):
        tokens = tokens or ControlTokens.builtin()
        nonce = nonce or new_nonce()
        log = DefenceLog.empty()
        data = {k: None if v is None else defend_text(k, v, tokens, log).strip() for k, v in texts.items()}
        defences = {"template": template.ref, "nonce": nonce, "control_token_list": tokens.describe()}
        if log.control_tokens:
            defences["control_tokens"] = log.control_tokens
        if log.delimiter_runs:
            defences["delimiter_runs"] = log.delimiter_runs
        if log.lookalikes:
            defences["lookalikes"] = log.lookalikes
    else:
        data = {k: _data(v) for k, v in texts.items()}
    user = _compile(template.user).render(mode=mode, nonce=nonce, **data)
    messages = [{"role": "system", "content": system.strip()}, {"role": "user", "content": user.strip()}]
    return Rendering(messages, defences)


def render_defended(
    version: RubricVersion,
    order: Order,
    *,
    prompt: str,
    base_output: str,
    ft_output: str,
    reference: str | None = None,
    mode: Mode = "reasoned",
    tokens: ControlTokens | None = None,
    nonce: str | None = None,
) -> Rendering:
    """Messages for one pair in one order and mode, with the record of what the defences changed."""
    answer_a, answer_b = answers_for_order(order, base_output, ft_output)
    return render_messages(
        version,
        question=prompt,
        answer_a=answer_a,
        answer_b=answer_b,
        reference=reference,
        mode=mode,
        tokens=tokens,
        nonce=nonce,
    )


def render_pair(
    version: RubricVersion,
    order: Order,
    *,
    prompt: str,
    base_output: str,
    ft_output: str,
    reference: str | None = None,
    mode: Mode = "reasoned",
    tokens: ControlTokens | None = None,
    nonce: str | None = None,
) -> list[Message]:
    """Messages for one pair in one order and mode."""
    return render_defended(
        version,
        order,
        prompt=prompt,
        base_output=base_output,
        ft_output=ft_output,
        reference=reference,
        mode=mode,
        tokens=tokens,
        nonce=nonce,
    ).messages


def messages_hash(messages: list[Message]) -> str:
    """Stable SHA-256 of the exact messages sent."""
    return hashlib.sha256(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

"""Render a rubric's Jinja2 templates into chat messages for one pair in one answer order."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from typing import Literal

import jinja2

from judge_service.rubrics.models import FAILURE_TAGS
from judge_service.rubrics.registry import PromptTemplate, RubricVersion

Order = Literal["base_first", "ft_first"]
Mode = Literal["reasoned", "fast"]
ORDERS: tuple[Order, Order] = ("base_first", "ft_first")
Message = dict[str, str]

# Answers are untrusted data; an answer that contains our closing delimiter could fake the
# end of its block and smuggle text that looks like ours. Breaking the marker keeps it inert.
_DELIMITER = "<<<"
_DELIMITER_ESCAPED = "<\u200b<<"

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


def render_messages(
    version: RubricVersion,
    *,
    question: str,
    answer_a: str,
    answer_b: str,
    reference: str | None = None,
    mode: Mode = "reasoned",
) -> list[Message]:
    """System message = static rubric text (prefix-cache friendly), user message = the data."""
    return _render(version.template, version, question, answer_a, answer_b, reference, mode)


def _render(
    template: PromptTemplate,
    version: RubricVersion,
    question: str,
    answer_a: str,
    answer_b: str,
    reference: str | None,
    mode: Mode,
) -> list[Message]:
    system = _compile(template.system).render(rubric=version.rubric, failure_tags=FAILURE_TAGS, mode=mode)
    user = _compile(template.user).render(
        mode=mode,
        question=_data(question),
        reference=_data(reference),
        answer_a=_data(answer_a),
        answer_b=_data(answer_b),
    )
    return [{"role": "system", "content": system.strip()}, {"role": "user", "content": user.strip()}]


def render_pair(
    version: RubricVersion,
    order: Order,
    *,
    prompt: str,
    base_output: str,
    ft_output: str,
    reference: str | None = None,
    mode: Mode = "reasoned",
) -> list[Message]:
    """Messages for one pair in one order and mode."""
    answer_a, answer_b = answers_for_order(order, base_output, ft_output)
    return render_messages(
        version, question=prompt, answer_a=answer_a, answer_b=answer_b, reference=reference, mode=mode
    )


def messages_hash(messages: list[Message]) -> str:
    """Stable SHA-256 of the exact messages sent."""
    return hashlib.sha256(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

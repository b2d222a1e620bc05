"""Fast mode: one verdict token and its top log-probabilities, turned into a soft preference.

The answer is constrained to the choices A, B, tie, so the verdict is decided by the first
generated token; probabilities are read at that position only. A token counts for a choice when
its text starts exactly one choice ("t" and "ti" can only begin "tie"), so however the judge's
tokenizer splits the words, each choice gets all of its first-token mass; anything else (the
model's probability for tokens the grammar forbids) is dropped before renormalising. Missing
log-probabilities or no verdict token among them fail the judgment visibly; there is no fallback
to the sampled hard verdict.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from judge_service.engine.client import JudgeCallError, JudgeClient
from judge_service.engine.judge import JudgmentResult, PairText, control_tokens_for, pending_result
from judge_service.engine.verdict import FtVerdict, Slot, slot_to_side
from judge_service.rubrics.registry import RubricVersion
from judge_service.rubrics.render import Order

CHOICES: tuple[Slot, Slot, Slot] = ("A", "B", "tie")
TOP_LOGPROBS = 10


class FastVerdictError(ValueError):
    """The reply carries no usable verdict probabilities."""


@dataclass(frozen=True)
class SoftVerdict:
    """Renormalised probabilities of the three verdicts, in slot terms."""

    p_a: float
    p_b: float
    p_tie: float

    @property
    def argmax(self) -> Slot:
        """The most probable verdict."""
        probs = {"A": self.p_a, "B": self.p_b, "tie": self.p_tie}
        return max(CHOICES, key=lambda c: probs[c])


def choice_of(token: str) -> Slot | None:
    """The single choice a first token can begin, or None (forbidden or ambiguous)."""
    matches = [c for c in CHOICES if token and c.startswith(token)]
    return matches[0] if len(matches) == 1 else None


def soft_verdict(top_logprobs: list[dict[str, Any]] | None) -> SoftVerdict:
    """P(A), P(B), P(tie) renormalised over the verdict tokens among the first position's top logprobs."""
    if not top_logprobs:
        raise FastVerdictError("the judge returned no log-probabilities for the verdict position")
    mass = dict.fromkeys(CHOICES, 0.0)
    for entry in top_logprobs:
        slot = choice_of(str(entry.get("token", "")))
        if slot is not None:
            mass[slot] += math.exp(float(entry["logprob"]))
    total = sum(mass.values())
    if total <= 0:
        seen = [e.get("token") for e in top_logprobs]
        raise FastVerdictError(f"no verdict token for {list(CHOICES)} among the top log-probabilities {seen}")
    return SoftVerdict(mass["A"] / total, mass["B"] / total, mass["tie"] / total)


def to_ft(soft: SoftVerdict, order: Order) -> FtVerdict:
    """s_ft = P(FT better) + 0.5 * P(tie), as docs/statistics.md defines for fast mode."""
    p_ft = soft.p_b if order == "base_first" else soft.p_a
    s_ft = p_ft + 0.5 * soft.p_tie
    winner = slot_to_side(soft.argmax, order)
    return FtVerdict(winner, s_ft, {}, "", (), (), winner)


async def judge_fast(
    client: JudgeClient, version: RubricVersion, pair: PairText, order: Order, seed: int
) -> JudgmentResult:
    """One fast-mode judgment; failures come back as results, never as a made-up verdict."""
    result = pending_result(version, pair, order, "fast", await control_tokens_for(client, version))
    messages = result.messages
    try:
        completion = await client.complete(
            messages, seed=seed, choice=list(CHOICES), max_tokens=3, logprobs=TOP_LOGPROBS
        )
    except JudgeCallError as exc:
        result.attempts, result.raw, result.failure_reason = exc.attempts, exc.raw, exc.reason
        return result
    result.attempts = completion.attempts
    result.prompt_tokens, result.completion_tokens = completion.prompt_tokens, completion.completion_tokens
    result.latency_ms = completion.latency_ms
    content = getattr(completion.logprobs, "content", None) or []
    first = [t.model_dump() for t in (content[0].top_logprobs or [])] if content else None
    result.raw = json.dumps({"text": completion.raw, "top_logprobs": first})
    try:
        soft = soft_verdict(first)
    except FastVerdictError as exc:
        result.failure_reason = f"invalid fast reply: {exc}"
        return result
    result.status = "done"
    result.verdict = to_ft(soft, order)
    result.winner_slot = soft.argmax
    return result

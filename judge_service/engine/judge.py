"""Judge one pair in one order: render, call the judge with the schema, validate, map to Base/FT."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from judge_service.engine.client import JudgeCallError, JudgeClient, JudgeUnavailableError
from judge_service.engine.verdict import FtVerdict, VerdictError, parse_verdict, to_ft_view, verdict_schema
from judge_service.rubrics.defences import ControlTokens
from judge_service.rubrics.registry import RubricVersion
from judge_service.rubrics.render import Message, Mode, Order, is_defended, messages_hash, render_defended


@dataclass(frozen=True)
class PairText:
    """The texts of one pair."""

    prompt: str
    base_output: str
    ft_output: str
    reference: str | None = None


@dataclass
class JudgmentResult:
    """Outcome of one judge call: a verdict, or a failure with the raw reply and the reason."""

    status: str  # "done" | "failed"
    messages: list[Message]
    messages_hash: str
    verdict: FtVerdict | None = None
    winner_slot: str | None = None
    raw: str | None = None
    failure_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    attempts: int = 0
    defences: dict[str, Any] | None = None  # what the prompt defences changed (rubrics/defences.py)


def pending_result(
    version: RubricVersion, pair: PairText, order: Order, mode: Mode, tokens: ControlTokens | None = None
) -> JudgmentResult:
    """The messages for one judgment, wrapped in a result that stays "failed" until a verdict lands."""
    rendering = render_defended(
        version,
        order,
        prompt=pair.prompt,
        base_output=pair.base_output,
        ft_output=pair.ft_output,
        reference=pair.reference,
        mode=mode,
        tokens=tokens,
    )
    messages = rendering.messages
    return JudgmentResult(
        status="failed", messages=messages, messages_hash=messages_hash(messages), defences=rendering.defences
    )


async def control_tokens_for(client: JudgeClient, version: RubricVersion) -> ControlTokens | None:
    """The judge tokenizer's control markers when the version's template is defended (None: built-in list)."""
    if not is_defended(version.template):
        return None
    try:
        return await client.control_tokens()
    except JudgeUnavailableError:
        return None  # the judge call itself will fail and say why


async def judge_reasoned(
    client: JudgeClient,
    version: RubricVersion,
    pair: PairText,
    order: Order,
    seed: int,
) -> JudgmentResult:
    """Reasoned-mode judgment. Never raises for judge problems: failures come back as results."""
    result = pending_result(version, pair, order, "reasoned", await control_tokens_for(client, version))
    messages = result.messages
    schema = verdict_schema(version.rubric)
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(VerdictError),
        stop=stop_after_attempt(client.settings.invalid_reply_attempts),
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                completion = await client.complete(messages, seed=seed, json_schema=schema)
                result.attempts += completion.attempts
                result.raw = completion.raw
                result.prompt_tokens = completion.prompt_tokens
                result.completion_tokens = completion.completion_tokens
                result.latency_ms = completion.latency_ms
                try:
                    slot_verdict = parse_verdict(completion.raw, version.rubric)
                except VerdictError as exc:
                    if completion.finish_reason == "length":
                        raise VerdictError(f"{exc} (reply cut at max_tokens)") from exc
                    raise
    except VerdictError as exc:
        result.failure_reason = f"invalid reply: {exc}"
        return result
    except JudgeCallError as exc:
        result.attempts += exc.attempts
        result.raw = exc.raw if exc.raw is not None else result.raw
        result.failure_reason = exc.reason
        return result
    result.status = "done"
    result.verdict = to_ft_view(slot_verdict, order, version.rubric)
    result.winner_slot = slot_verdict.winner
    return result

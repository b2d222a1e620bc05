"""OpenAI-compatible judge client: pinned-model check, token counting, retried completions."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
from openai import AsyncOpenAI
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from judge_service.config import Settings

# Worth another try: the server is busy, restarting or briefly unreachable.
TRANSIENT = (
    openai.APIConnectionError,  # includes APITimeoutError
    openai.RateLimitError,
    openai.InternalServerError,
    openai.ConflictError,
)


class JudgeUnavailableError(Exception):
    """The judge cannot be used: unreachable, or serving a different model than the pin."""


class JudgeCallError(Exception):
    """A completion failed after all retries; carries whatever raw text the server sent."""

    def __init__(self, reason: str, raw: str | None = None, attempts: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw
        self.attempts = attempts


@dataclass(frozen=True)
class JudgeInfo:
    """What the judge server says about itself."""

    model: str
    max_model_len: int | None
    backend_version: str | None
    root: str | None


@dataclass(frozen=True)
class Fingerprint:
    """Everything that identifies the judge a verdict came from."""

    model: str
    revision: str
    decoding: dict[str, Any]
    backend_version: str | None

    @property
    def hash(self) -> str:
        """SHA-256 over the canonical JSON of the fingerprint."""
        body = {
            "model": self.model,
            "revision": self.revision,
            "decoding": self.decoding,
            "backend_version": self.backend_version,
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass
class Completion:
    """One successful completion: the raw text and its costs."""

    raw: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float
    attempts: int
    finish_reason: str | None
    logprobs: Any = None


@dataclass
class _Cache:
    info: JudgeInfo | None = None
    error: str | None = None
    at: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class JudgeClient:
    """Talks to one OpenAI-compatible judge server (vLLM) under a shared concurrency limit."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Our tenacity policy is the only retry layer, so its bounds are the real bounds.
        self.openai = AsyncOpenAI(
            base_url=settings.base_url,
            api_key=settings.api_key,
            timeout=settings.request_timeout_s,
            max_retries=0,
        )
        self.http = httpx.AsyncClient(timeout=10.0)
        self.semaphore = asyncio.Semaphore(settings.concurrency)
        self._cache = _Cache()

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self.openai.close()
        await self.http.aclose()

    @property
    def server_root(self) -> str:
        """Server URL without the `/v1` suffix (vLLM's /version and /tokenize live there)."""
        base = self.settings.base_url.rstrip("/")
        return base[: -len("/v1")] if base.endswith("/v1") else base

    async def check(self, force: bool = False) -> JudgeInfo:
        """Verify that the pinned model is served; cached for `model_check_ttl_s`.

        Raises `JudgeUnavailableError` with the reason when it is not.
        """
        cache = self._cache
        async with cache.lock:
            fresh = time.monotonic() - cache.at < self.settings.model_check_ttl_s
            if not force and fresh:
                if cache.info is not None:
                    return cache.info
                raise JudgeUnavailableError(cache.error or "judge unavailable")
            try:
                cache.info = await self._fetch_info()
                cache.error = None
            except JudgeUnavailableError as exc:
                cache.info, cache.error = None, str(exc)
                cache.at = time.monotonic()
                raise
            cache.at = time.monotonic()
            return cache.info

    async def _fetch_info(self) -> JudgeInfo:
        pinned = self.settings.model
        try:
            reply = await self.http.get(f"{self.settings.base_url.rstrip('/')}/models")
            reply.raise_for_status()
            models = reply.json().get("data", [])
        except (httpx.HTTPError, ValueError) as exc:
            raise JudgeUnavailableError(f"judge at {self.settings.base_url} is unreachable: {exc!r}") from exc
        served = {m.get("id"): m for m in models if isinstance(m, dict)}
        if pinned not in served:
            raise JudgeUnavailableError(
                f"judge at {self.settings.base_url} serves {sorted(map(str, served))}, not the pinned model {pinned!r}"
            )
        card = served[pinned]
        # A flaky /version must not change the fingerprint (that would start a new result set).
        version = self._cache.info.backend_version if self._cache.info else None
        try:
            got = await self.http.get(f"{self.server_root}/version")
            if got.status_code == 200:
                version = str(got.json().get("version"))
        except (httpx.HTTPError, ValueError):
            pass  # not every OpenAI-compatible server reports a version
        max_len = card.get("max_model_len")
        return JudgeInfo(pinned, int(max_len) if max_len else None, version, card.get("root"))

    async def fingerprint(self) -> Fingerprint:
        """The fingerprint of the judge as it is served now."""
        info = await self.check()
        return Fingerprint(info.model, self.settings.model_revision, self.settings.decoding, info.backend_version)

    async def count_tokens(self, messages: list[dict[str, str]]) -> int | None:
        """Prompt tokens by the judge's own tokenizer and chat template (vLLM `/tokenize`).

        None when the server has no such endpoint.
        """
        try:
            reply = await self.http.post(
                f"{self.server_root}/tokenize",
                json={"model": self.settings.model, "messages": messages, "add_generation_prompt": True},
            )
        except httpx.HTTPError as exc:
            raise JudgeUnavailableError(f"judge tokenizer unreachable: {exc!r}") from exc
        if reply.status_code != 200:
            return None
        count = reply.json().get("count")
        return int(count) if count is not None else None

    async def complete(
        self,
        messages: list[dict[str, str]],
        *,
        seed: int,
        json_schema: dict[str, Any] | None = None,
        choice: list[str] | None = None,
        max_tokens: int | None = None,
        logprobs: int | None = None,
    ) -> Completion:
        """One chat completion under the concurrency limit, retried on transient errors."""
        settings = self.settings
        kwargs: dict[str, Any] = {
            "model": settings.model,
            "messages": messages,
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "max_tokens": max_tokens or settings.max_tokens,
            "seed": seed,
        }
        if json_schema is not None:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "verdict", "schema": json_schema, "strict": True},
            }
        if choice is not None:
            kwargs["extra_body"] = {"structured_outputs": {"choice": choice}}
        if logprobs is not None:
            kwargs["logprobs"] = True
            kwargs["top_logprobs"] = logprobs
        attempts = 0
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TRANSIENT),
            stop=stop_after_attempt(settings.retry_attempts),
            wait=wait_exponential_jitter(multiplier=0.5, max=settings.retry_max_wait_s),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    async with self.semaphore:
                        started = time.perf_counter()
                        response = await self.openai.chat.completions.create(**kwargs)
                        latency = (time.perf_counter() - started) * 1000
        except openai.APIStatusError as exc:
            raise JudgeCallError(f"judge returned HTTP {exc.status_code}: {exc.message}", _body(exc), attempts) from exc
        except openai.APIError as exc:
            raise JudgeCallError(f"judge call failed: {exc.__class__.__name__}: {exc}", None, attempts) from exc
        if not response.choices:
            raise JudgeCallError("judge reply has no choices", response.model_dump_json(), attempts)
        picked = response.choices[0]
        usage = response.usage
        return Completion(
            raw=picked.message.content or "",
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            latency_ms=latency,
            attempts=attempts,
            finish_reason=picked.finish_reason,
            logprobs=picked.logprobs,
        )


def _body(exc: openai.APIStatusError) -> str | None:
    try:
        return exc.response.text
    except Exception:  # noqa: BLE001 - the body is best-effort evidence only
        return None

"""OpenAI-compatible judge client: pinned-model check, token counting, retried completions over replicas."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
from openai import AsyncOpenAI
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from judge_service.config import Settings
from judge_service.engine.replicas import (
    JudgeInfo,
    JudgeUnavailableError,
    NoReplicaError,
    Replica,
    ReplicaPool,
    ReplicaRefusedError,
)
from judge_service.rubrics.defences import KNOWN_MARKERS, ControlTokens

log = logging.getLogger(__name__)

__all__ = ["Completion", "Fingerprint", "JudgeCallError", "JudgeClient", "JudgeInfo", "JudgeUnavailableError"]

# Worth another try: the server is busy, restarting or briefly unreachable.
TRANSIENT = (
    openai.APIConnectionError,  # includes APITimeoutError
    openai.RateLimitError,
    openai.InternalServerError,
    openai.ConflictError,
)
# A replica that fails like this is taken out for the cooldown; busy (429) or conflicting replies are not.
EJECTING = (openai.APIConnectionError, openai.InternalServerError)


class JudgeCallError(Exception):
    """A completion failed after all retries; carries whatever raw text the server sent."""

    def __init__(self, reason: str, raw: str | None = None, attempts: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw
        self.attempts = attempts


@dataclass(frozen=True)
class Fingerprint:
    """Everything that identifies the judge a verdict came from."""

    model: str
    revision: str
    decoding: dict[str, Any]
    backend_version: str | None
    dtype: str | None = None  # changes the numerics, so verdicts of two dtypes never share a result set

    @property
    def hash(self) -> str:
        """SHA-256 over the canonical JSON of the fingerprint."""
        body: dict[str, Any] = {
            "model": self.model,
            "revision": self.revision,
            "decoding": self.decoding,
            "backend_version": self.backend_version,
        }
        if self.dtype is not None:  # fingerprints recorded before the dtype was known keep their hash
            body["dtype"] = self.dtype
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


class JudgeClient:
    """Talks to the judge's replicas (OpenAI-compatible, vLLM) under a process-wide concurrency limit.

    `JUDGE_CONCURRENCY` caps the calls in flight from this process; each replica takes at most
    `JUDGE_REPLICA_CONCURRENCY` of them, least outstanding first (see `engine/replicas.py`).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.http = httpx.AsyncClient(timeout=10.0)
        self.semaphore = asyncio.Semaphore(settings.concurrency)
        self.pool = ReplicaPool.build(
            settings.base_urls,
            self._openai_for,
            self._probe,
            limit=settings.replica_concurrency,
            cooldown_s=settings.replica_cooldown_s,
            check_ttl_s=settings.model_check_ttl_s,
        )
        self._control_tokens: dict[tuple[str | None, ...], ControlTokens] = {}

    def _openai_for(self, url: str) -> AsyncOpenAI:
        # Our tenacity policy is the only retry layer, so its bounds are the real bounds.
        return AsyncOpenAI(
            base_url=url, api_key=self.settings.api_key, timeout=self.settings.request_timeout_s, max_retries=0
        )

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        for replica in self.pool.replicas:
            await replica.openai.close()
        await self.http.aclose()

    async def check(self, force: bool = False) -> JudgeInfo:
        """Verify that the pinned model is served; each replica's check is cached for `model_check_ttl_s`.

        Returns the judge as the admitted replicas serve it. Raises `JudgeUnavailableError` with
        every replica's reason when none is usable.
        """
        await self.pool.refresh(stale=True, force=force)
        if not any(r.state == "ok" for r in self.pool.replicas):
            await self.pool.refresh(panic=True)
        return self.pool.admitted_info()

    async def _probe(self, replica: Replica) -> JudgeInfo:
        """The pinned-model check of one replica: `/v1/models`, then `/version`."""
        pinned = self.settings.model
        try:
            reply = await self.http.get(f"{replica.url.rstrip('/')}/models")
            reply.raise_for_status()
            models = reply.json().get("data", [])
        except (httpx.HTTPError, ValueError) as exc:
            raise JudgeUnavailableError(f"judge at {replica.url} is unreachable: {exc!r}") from exc
        served = {m.get("id"): m for m in models if isinstance(m, dict)}
        if pinned not in served:
            raise ReplicaRefusedError(
                f"judge at {replica.url} serves {sorted(map(str, served))}, not the pinned model {pinned!r}"
            )
        card = served[pinned]
        # A flaky /version must not change the fingerprint (that would start a new result set).
        version = replica.info.backend_version if replica.info else None
        try:
            got = await self.http.get(f"{replica.server_root}/version")
            if got.status_code == 200:
                version = str(got.json().get("version"))
        except (httpx.HTTPError, ValueError):
            pass  # not every OpenAI-compatible server reports a version
        max_len = card.get("max_model_len")
        dtype, source = await self._reported_dtype(replica), "server"
        if dtype is None:
            dtype, source = self.settings.served_dtype, "configured"
        return JudgeInfo(pinned, int(max_len) if max_len else None, version, card.get("root"), dtype, source)

    async def _reported_dtype(self, replica: Replica) -> str | None:
        """The dtype the replica says it serves, where it says so.

        vLLM 0.32 reports it only on `/server_info`, which exists when the server runs with
        VLLM_SERVER_DEV_MODE=1; its /metrics carry the KV-cache dtype (`auto`), not the model's.
        Elsewhere the configured `JUDGE_MODEL_DTYPE` stands in.
        """
        try:
            reply = await self.http.get(f"{replica.server_root}/server_info", params={"config_format": "json"})
            if reply.status_code != 200:
                return None
            dtype = reply.json()["vllm_config"]["model_config"]["dtype"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return None
        return str(dtype).removeprefix("torch.") if dtype else None

    async def fingerprint(self) -> Fingerprint:
        """The fingerprint of the judge as it is served now: the same whichever replica answers."""
        info = await self.check()
        return Fingerprint(
            info.model, self.settings.model_revision, self.settings.decoding, info.backend_version, info.dtype
        )

    async def control_tokens(self) -> ControlTokens:
        """The served judge's control markers, looked up once per judge fingerprint.

        From the tokenizer files: `JUDGE_TOKENIZER_DIR`, else the folder the server says it serves
        (`root` on /v1/models) when this host can read it. Otherwise by asking the judge's `/tokenize`
        which well-known markers encode to a single id. When neither answers, the built-in list.
        """
        # Keyed by what the fingerprint is made of, read from the pool without a network round per call.
        try:
            info = self.pool.admitted_info()
        except JudgeUnavailableError:
            info = await self.check()
        key = (info.model, info.backend_version, info.dtype, info.root)
        cached = self._control_tokens.get(key)
        if cached is not None:
            return cached
        tokens: ControlTokens | None = None
        for folder in (self.settings.tokenizer_dir, Path(info.root) if info.root else None):
            if folder is not None and folder.is_dir():
                try:
                    tokens = ControlTokens.from_tokenizer_dir(folder)
                    break
                except (FileNotFoundError, ValueError) as exc:
                    log.warning("cannot read tokenizer files in %s: %s", folder, exc)
        if tokens is None:
            tokens = await self._probe_control_tokens()
        self._control_tokens[key] = tokens
        return tokens

    async def _probe_control_tokens(self) -> ControlTokens:
        """Which known markers the judge's tokenizer encodes as one id (vLLM `/tokenize`); builtin if it cannot say."""
        replica = await self.pool.pick()
        url = f"{replica.server_root}/tokenize"

        async def single_id(marker: str) -> bool | None:
            body = {"model": self.settings.model, "prompt": marker, "add_special_tokens": False}
            try:
                reply = await self.http.post(url, json=body)
            except httpx.HTTPError:
                return None
            if reply.status_code != 200:
                return None
            try:
                return int(reply.json()["count"]) == 1
            except (ValueError, KeyError, TypeError):
                return None

        answers = await asyncio.gather(*(single_id(m) for m in KNOWN_MARKERS))
        if any(a is None for a in answers):
            return ControlTokens.builtin()
        return ControlTokens.of([m for m, single in zip(KNOWN_MARKERS, answers, strict=True) if single], "probe")

    async def count_tokens(self, messages: list[dict[str, str]]) -> int | None:
        """Prompt tokens by the judge's own tokenizer and chat template (vLLM `/tokenize`), on an admitted replica.

        None when the server has no such endpoint. An unreachable replica is ejected and the next one tried.
        """
        body = {"model": self.settings.model, "messages": messages, "add_generation_prompt": True}
        reply: httpx.Response | None = None
        error: httpx.HTTPError | None = None
        for _ in range(len(self.pool.replicas)):
            replica = await self.pool.pick()
            try:
                reply = await self.http.post(f"{replica.server_root}/tokenize", json=body)
                break
            except httpx.HTTPError as exc:
                self.pool.eject(replica, f"tokenizer unreachable: {exc!r}")
                error = exc
        if reply is None:
            raise JudgeUnavailableError(f"judge tokenizer unreachable: {error!r}")
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
        """One chat completion on the least busy replica, retried on transient errors (on others when one fails)."""
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
            retry=retry_if_exception_type((*TRANSIENT, NoReplicaError)),
            stop=stop_after_attempt(settings.retry_attempts),
            wait=wait_exponential_jitter(multiplier=0.5, max=settings.retry_max_wait_s),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    async with self.semaphore:
                        replica = await self.pool.acquire()
                        try:
                            started = time.perf_counter()
                            response = await replica.openai.chat.completions.create(**kwargs)
                            latency = (time.perf_counter() - started) * 1000
                        except EJECTING as exc:
                            self.pool.eject(replica, f"{exc.__class__.__name__}: {exc}")
                            raise
                        finally:
                            self.pool.release(replica)
        except openai.APIStatusError as exc:
            raise JudgeCallError(f"judge returned HTTP {exc.status_code}: {exc.message}", _body(exc), attempts) from exc
        except openai.APIError as exc:
            raise JudgeCallError(f"judge call failed: {exc.__class__.__name__}: {exc}", None, attempts) from exc
        except NoReplicaError as exc:
            raise JudgeCallError(str(exc), None, attempts) from exc
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

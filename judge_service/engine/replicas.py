"""Several judge replicas: admission by the pinned-model check, least-outstanding balancing, ejection.

Written by hand on purpose: httpx and the openai client balance nothing, and LiteLLM's Router (the
one well-kept library with least-busy routing and cooldowns for OpenAI-compatible servers) brings a
large dependency tree, a second retry layer beside our tenacity policy (whose bounds must stay the
real bounds) and no way to refuse a replica that serves another model or backend build than the pin.
What the service needs is small: pick the admitted replica with the fewest calls in flight under a
per-replica limit, take a failing one out for a cooldown, and re-admit it only after it passes the
pinned-model check again.

When no replica is admitted the pool panics, as Envoy does below its panic threshold: calls go to
the ejected replicas instead of waiting out their cooldowns, and the pinned-model check probes them
at once, so a lone replica with one bad moment behaves exactly like the single judge did before.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from openai import AsyncOpenAI

ReplicaState = Literal["unchecked", "ok", "refused", "ejected"]


class JudgeUnavailableError(Exception):
    """The judge cannot be used: unreachable, or serving a different model than the pin."""


class ReplicaRefusedError(JudgeUnavailableError):
    """The replica answers, but does not serve the pinned judge."""


class NoReplicaError(JudgeUnavailableError):
    """No replica can take a call right now (all ejected or refused); worth another try later."""


@dataclass(frozen=True)
class JudgeInfo:
    """What a judge server says about itself."""

    model: str
    max_model_len: int | None
    backend_version: str | None
    root: str | None
    dtype: str | None = None
    dtype_source: str | None = None  # "server" when the replica reported it, else "configured"

    @property
    def identity(self) -> tuple[str | None, ...]:
        """What must be equal on every replica of one pin (it enters the judge fingerprint)."""
        return (self.backend_version, self.dtype)

    def describe(self) -> str:
        """The identity in words, for refusal reasons."""
        return f"backend version {self.backend_version or 'unknown'} and dtype {self.dtype or 'unknown'}"


@dataclass
class Replica:
    """One judge server of the pool and what the pool knows about it."""

    index: int
    url: str
    openai: AsyncOpenAI
    state: ReplicaState = "unchecked"
    reason: str | None = None
    info: JudgeInfo | None = None
    checked_at: float = float("-inf")
    ejected_until: float = 0.0  # monotonic clock
    ejected_until_wall: datetime | None = None
    outstanding: int = 0
    started: int = 0
    failures: int = 0
    last_ticket: int = -1  # when it last got a call, in pool tickets

    @property
    def server_root(self) -> str:
        """URL without the `/v1` suffix (vLLM's /version, /tokenize and /metrics live there)."""
        base = self.url.rstrip("/")
        return base[: -len("/v1")] if base.endswith("/v1") else base


@dataclass(frozen=True)
class ReplicaStatus:
    """One replica as /healthz shows it; the URL is optional so callers can redact it."""

    index: int
    url: str | None
    state: ReplicaState
    reason: str | None
    ejected_until: str | None
    outstanding: int
    limit: int
    calls: int
    failures: int
    backend_version: str | None
    dtype: str | None

    def as_dict(self, with_url: bool = True) -> dict[str, Any]:
        """JSON-ready view; `with_url=False` leaves the internal address out."""
        body = {k: v for k, v in self.__dict__.items() if k != "url"}
        if with_url:
            body["url"] = self.url
        return body


Probe = Callable[[Replica], Awaitable[JudgeInfo]]


@dataclass
class ReplicaPool:
    """Judge replicas of one pin, balanced by outstanding calls.

    `probe` runs the pinned-model check on one replica: it returns what the replica serves, raises
    `ReplicaRefusedError` when it serves something else and `JudgeUnavailableError` when it cannot be
    reached. Replicas that serve the pin but a different identity (backend version, dtype) than the
    pool's reference are refused too, so the fingerprint never depends on which replica answered.
    """

    replicas: list[Replica]
    probe: Probe
    limit: int
    cooldown_s: float
    check_ttl_s: float
    identity: tuple[str | None, ...] | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _tickets: int = 0

    @classmethod
    def build(
        cls,
        urls: Sequence[str],
        make_client: Callable[[str], AsyncOpenAI],
        probe: Probe,
        *,
        limit: int,
        cooldown_s: float,
        check_ttl_s: float,
    ) -> ReplicaPool:
        """One replica per URL, each with its own OpenAI client."""
        replicas = [Replica(i, url, make_client(url)) for i, url in enumerate(urls)]
        return cls(replicas, probe, limit, cooldown_s, check_ttl_s)

    # -- admission ------------------------------------------------------------------------------

    async def refresh(self, *, stale: bool = False, force: bool = False, panic: bool = False) -> None:
        """Run the pinned-model check where it is due.

        Always due: replicas never checked and ejected replicas whose cooldown is over. `stale` adds
        admitted and refused replicas whose last check is older than the TTL, `force` all but the
        ejected ones, and `panic` the ejected ones still cooling down (used when none is admitted).
        """
        async with self._lock:
            now = time.monotonic()
            due = [r for r in self.replicas if self._due(r, now, stale=stale, force=force)]
            if panic:
                due += [r for r in self.replicas if r.state == "ejected" and r not in due]
            if not due:
                return
            started = time.monotonic()
            outcomes = await asyncio.gather(*(self._probe(r) for r in due), return_exceptions=True)
            for replica, outcome in zip(due, outcomes, strict=True):
                if replica.state == "ejected" and replica.ejected_until - self.cooldown_s >= started:
                    continue  # a call failed on it while it was being probed: the ejection stands
                replica.checked_at = time.monotonic()
                if isinstance(outcome, ReplicaRefusedError):
                    replica.state, replica.reason, replica.info = "refused", str(outcome), None
                elif isinstance(outcome, BaseException):
                    self._eject(replica, f"unreachable: {outcome}")
                else:
                    replica.info, replica.state, replica.reason = outcome, "ok", None
            self._settle_identity()
            self._wake()

    def _due(self, replica: Replica, now: float, *, stale: bool, force: bool) -> bool:
        if replica.state == "ejected":
            return now >= replica.ejected_until
        if replica.state == "unchecked" or force:
            return True
        return stale and now - replica.checked_at >= self.check_ttl_s

    async def _probe(self, replica: Replica) -> JudgeInfo:
        return await self.probe(replica)

    def _settle_identity(self) -> None:
        """Admit the replicas whose identity is the pool's reference; refuse the others.

        The reference stays while any replica known to have it is in the pool, even ejected, so a
        replica that is down for a moment never hands the fingerprint to a different build. Only
        when no known replica has it any more (the judge was really replaced) does the first listed
        replica's identity become the reference, and with it a new fingerprint.
        """
        known = [r for r in self.replicas if r.info is not None]
        candidates = [r for r in known if r.state in ("ok", "refused")]
        if not candidates:
            return
        if self.identity not in {r.info.identity for r in known if r.info is not None}:
            self.identity = candidates[0].info.identity if candidates[0].info else None
        reference = next((r.info for r in known if r.info is not None and r.info.identity == self.identity), None)
        for replica in candidates:
            assert replica.info is not None and reference is not None
            if replica.info.identity == self.identity:
                replica.state, replica.reason = "ok", None
            else:
                replica.state = "refused"
                replica.reason = (
                    f"serves the pinned model with {replica.info.describe()}, but the pool's judge fingerprint has "
                    f"{reference.describe()}; verdicts of both must not mix"
                )

    # -- balancing ------------------------------------------------------------------------------

    async def acquire(self) -> Replica:
        """An admitted replica with a free slot, least outstanding first; waits while all are busy.

        With none admitted, the ejected replicas take calls anyway (panic), so
        the calls meet the real error and tenacity retries them as it did with a single judge.
        Raises `NoReplicaError` only when every replica is refused.
        """
        while True:
            now = time.monotonic()
            if any(self._due(r, now, stale=False, force=False) for r in self.replicas):
                await self.refresh()
            admitted = [r for r in self.replicas if r.state == "ok"]
            if not admitted:
                admitted = sorted((r for r in self.replicas if r.state == "ejected"), key=lambda r: r.ejected_until)
                if not admitted:
                    raise NoReplicaError(f"no judge replica can take the call: {self.describe()}")
            free = [r for r in admitted if r.outstanding < self.limit]
            if free:
                # Fewest in flight; among equals the least recently used, so light load spreads too.
                replica = min(free, key=lambda r: (r.outstanding, r.last_ticket, r.index))
                replica.outstanding += 1
                replica.started += 1
                replica.last_ticket, self._tickets = self._tickets, self._tickets + 1
                return replica
            await self._wait_for_change()

    def release(self, replica: Replica) -> None:
        """Give a slot back."""
        replica.outstanding -= 1
        self._wake()

    async def pick(self) -> Replica:
        """An admitted replica for a light call (token counting): least outstanding, no slot taken."""
        if not any(r.state == "ok" for r in self.replicas):
            await self.refresh(panic=True)
        admitted = [r for r in self.replicas if r.state == "ok"]
        if not admitted:
            raise NoReplicaError(f"no judge replica is usable: {self.describe()}")
        return min(admitted, key=lambda r: (r.outstanding, r.index))

    def eject(self, replica: Replica, reason: str) -> None:
        """Take a failing replica out for the cooldown; its calls go to the others."""
        replica.failures += 1
        if replica.state != "ejected":
            self._eject(replica, reason)
            self._wake()

    def _eject(self, replica: Replica, reason: str) -> None:
        replica.state, replica.reason = "ejected", reason
        replica.ejected_until = time.monotonic() + self.cooldown_s
        replica.ejected_until_wall = datetime.now(UTC) + timedelta(seconds=self.cooldown_s)

    def _wake(self) -> None:
        # Every waiter holds the old event; setting it wakes them all, new waiters get a fresh one.
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_for_change(self) -> None:
        now = time.monotonic()
        cooling = [r.ejected_until - now for r in self.replicas if r.state == "ejected"]
        timeout = max(0.01, min(cooling)) if cooling else None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    # -- reporting ------------------------------------------------------------------------------

    def admitted_info(self) -> JudgeInfo:
        """The judge as the admitted replicas serve it (smallest context among them)."""
        admitted = [r.info for r in self.replicas if r.state == "ok" and r.info is not None]
        if not admitted:
            raise JudgeUnavailableError(f"no judge replica is usable: {self.describe()}")
        lengths = [i.max_model_len for i in admitted if i.max_model_len]
        first = admitted[0]
        max_len = min(lengths) if lengths else None
        return JudgeInfo(first.model, max_len, first.backend_version, first.root, first.dtype, first.dtype_source)

    def status(self) -> list[ReplicaStatus]:
        """Every replica's state, for /healthz."""
        return [
            ReplicaStatus(
                index=r.index,
                url=r.url,
                state=r.state,
                reason=r.reason,
                ejected_until=_iso(r.ejected_until_wall) if r.state == "ejected" else None,
                outstanding=r.outstanding,
                limit=self.limit,
                calls=r.started,
                failures=r.failures,
                backend_version=r.info.backend_version if r.info else None,
                dtype=r.info.dtype if r.info else None,
            )
            for r in self.replicas
        ]

    def describe(self) -> str:
        """Why each replica is or is not usable, in one line."""
        parts = []
        for r in self.replicas:
            text = f"replica {r.index} ({r.url}) {r.state}"
            parts.append(f"{text}: {r.reason}" if r.reason else text)
        return "; ".join(parts)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None

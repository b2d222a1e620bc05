"""A small OpenAI-compatible fake judge, only for fault injection and fast tests.

It decides like a perfect judge would on test data: the answer containing the marker "GOOD"
wins. Behaviour is switched per test through `FakeJudgeState`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

MARKER = "GOOD"


@dataclass(frozen=True)
class JudgeCall:
    """What an adversarial policy sees of one chat call: both slots' answers, the seed, the mode."""

    answer_a: str
    answer_b: str
    seed: int
    fast: bool
    user: str


@dataclass(frozen=True)
class Decision:
    """A policy's answer: fail the call (HTTP 500), or a winner slot; in fast mode optional slot probabilities."""

    winner: str = "tie"  # A | B | tie
    fail: bool = False
    probs: dict[str, float] | None = None  # fast mode: {"A": p, "B": p, "tie": p}


Policy = Callable[[JudgeCall], Decision]


@dataclass
class FakeJudgeState:
    """What the fake does next. `faults` is consumed one per chat call; then `mode` applies."""

    model: str = "fake-judge"
    mode: str = "marker"  # marker | always_a | invalid_json | error500 | timeout | no_logprobs
    faults: list[str] = field(default_factory=list)
    max_model_len: int = 4096
    calls: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    delay_s: float = 0.0
    capacity: int = 0  # chat calls processed at once (0: unlimited); more wait, like a full GPU batch
    backend_version: str = "fake-1"
    dtype: str | None = None  # reported on /server_info like vLLM's dev mode; None: no such endpoint
    in_flight: int = 0
    peak_in_flight: int = 0
    keep_requests: bool = True  # a long benchmark does not keep every request body
    # Chaos: a seeded share of chat calls fails with HTTP 500 (see `FakeJudgeServer.seed`).
    fail_rate: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    # An adversarial judge (tests/adversarial_judges.py) decides every call when set; `mode` is then ignored.
    policy: Policy | None = None


def answer_block(text: str, slot: str) -> str:
    """The text of answer slot A or B in a rendered judge prompt."""
    # Defended templates put a nonce in the tags (`<<<ANSWER_A 3f9a1c2e>>>`); legacy ones do not.
    match = re.search(rf"<<<ANSWER_{slot}( \w+|)>>>(.*?)<<<END_ANSWER_{slot}\1>>>", text, re.S)
    return match.group(2) if match else ""


def verdict_for(body: dict[str, Any], mode: str, winner: str | None = None) -> str:
    """A schema-valid verdict: the slot holding MARKER wins (or always A when biased, or `winner` when given)."""
    schema = body["response_format"]["json_schema"]["schema"]
    user = body["messages"][-1]["content"]
    a_good, b_good = MARKER in answer_block(user, "A"), MARKER in answer_block(user, "B")
    if winner is None:
        winner = "A" if mode == "always_a" or (a_good and not b_good) else "B" if b_good and not a_good else "tie"
    out: dict[str, Any] = {}
    for key in schema["properties"]:
        if key.endswith("_a") and key != "tags_a":
            out[key] = 5 if winner == "A" else 2
        elif key.endswith("_b") and key != "tags_b":
            out[key] = 5 if winner == "B" else 2
    out["why"] = f"answer {winner} is better" if winner != "tie" else "equally good"
    out["winner"] = winner
    out["tags_a"] = [] if winner != "B" else ["factual_error"]
    out["tags_b"] = [] if winner != "A" else ["factual_error"]
    return json.dumps(out, separators=(",", ":"))


def fast_verdict_for(body: dict[str, Any], mode: str) -> tuple[str, dict[str, Any] | None]:
    """Fast mode: the GOOD slot gets 0.7, the other 0.1, tie 0.2 (position-biased: A gets 0.7)."""
    user = body["messages"][-1]["content"]
    a_good, b_good = MARKER in answer_block(user, "A"), MARKER in answer_block(user, "B")
    winner = "A" if mode == "always_a" or (a_good and not b_good) else "B" if b_good and not a_good else "tie"
    probs = {"A": 0.1, "B": 0.1, "tie": 0.2}
    probs[winner] = 0.7 if winner != "tie" else 0.8
    if mode == "no_logprobs":
        return winner, None
    tops = [{"token": t, "logprob": math.log(p), "bytes": list(t.encode())} for t, p in probs.items()]
    if mode == "no_verdict_tokens":
        tops = [{"token": t, "logprob": math.log(0.3), "bytes": list(t.encode())} for t in ("x", "y")]
    entry = {"token": winner, "logprob": math.log(probs[winner]), "bytes": list(winner.encode()), "top_logprobs": tops}
    return winner, {"content": [entry]}


def fast_reply(probs: dict[str, float]) -> tuple[str, dict[str, Any]]:
    """Fast-mode content and logprobs for given slot probabilities (the argmax is the emitted token)."""
    winner = max(probs, key=lambda t: probs[t])
    tops = [{"token": t, "logprob": math.log(p), "bytes": list(t.encode())} for t, p in probs.items() if p > 0]
    entry = {"token": winner, "logprob": math.log(probs[winner]), "bytes": list(winner.encode()), "top_logprobs": tops}
    return winner, {"content": [entry]}


def policy_reply(state: FakeJudgeState, body: dict[str, Any]) -> tuple[str, dict[str, Any] | None] | None:
    """The adversarial policy's reply (content, logprobs), or None for an HTTP 500."""
    assert state.policy is not None
    user = body["messages"][-1]["content"]
    fast = "structured_outputs" in body
    call = JudgeCall(answer_block(user, "A"), answer_block(user, "B"), int(body.get("seed") or 0), fast, user)
    decision = state.policy(call)
    if decision.fail:
        return None
    if fast:
        probs = decision.probs or {"A": 0.1, "B": 0.1, "tie": 0.1} | {decision.winner: 0.7}
        return fast_reply(probs)
    return verdict_for(body, "marker", decision.winner), None


def build_app(state: FakeJudgeState) -> FastAPI:
    """The fake server's routes: /v1/models, /version, /tokenize, /v1/chat/completions."""
    app = FastAPI()
    gates: dict[int, asyncio.Semaphore] = {}  # per capacity, created on the server's own loop

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": state.model, "object": "model", "max_model_len": state.max_model_len}],
        }

    @app.get("/version")
    async def version() -> dict[str, str]:
        return {"version": state.backend_version}

    @app.get("/server_info", response_model=None)
    async def server_info() -> Any:
        if state.dtype is None:
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        return {"vllm_config": {"model_config": {"dtype": f"torch.{state.dtype}"}}}

    @app.post("/tokenize")
    async def tokenize(request: Request) -> dict[str, Any]:
        body = await request.json()
        if "prompt" in body:  # one token per word, like a tokenizer that knows every verdict word
            words = body["prompt"].split()
            return {"count": len(words), "tokens": list(range(len(words))), "token_strs": words}
        text = "".join(m["content"] for m in body.get("messages", []))
        return {"count": len(text) // 4}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: Request) -> Any:
        body = await request.json()
        state.calls += 1
        if state.keep_requests:
            state.requests.append(body)
        mode = state.faults.pop(0) if state.faults else state.mode
        if state.fail_rate and state.rng.random() < state.fail_rate:
            mode = "error500"
        state.in_flight += 1
        state.peak_in_flight = max(state.peak_in_flight, state.in_flight)
        try:
            gate = gates.setdefault(state.capacity, asyncio.Semaphore(state.capacity)) if state.capacity else None
            async with gate or contextlib.nullcontext():
                if state.delay_s:
                    await asyncio.sleep(state.delay_s)
        finally:
            state.in_flight -= 1
        if state.policy is not None:
            reply = policy_reply(state, body)
            if reply is None:
                return PlainTextResponse("adversarial judge failed this call", status_code=500)
            mode = "policy"
        if mode == "error500":
            return PlainTextResponse("upstream exploded", status_code=500)
        if mode == "error429":
            return JSONResponse({"error": {"message": "slow down"}}, status_code=429)
        if mode == "timeout":
            await asyncio.sleep(30)
        logprobs = None
        if mode == "policy":
            content, logprobs = reply
        elif "structured_outputs" in body:  # fast mode: one verdict word with its log-probabilities
            content, logprobs = fast_verdict_for(body, mode)
        else:
            content = "this is {not json" if mode == "invalid_json" else verdict_for(body, mode)
        return {
            "id": f"chatcmpl-{state.calls}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": state.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                    "logprobs": logprobs,
                }
            ],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
        }

    return app


def free_port() -> int:
    """An unused TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThreadedServer:
    """An ASGI app served by uvicorn in a thread on 127.0.0.1 (the test judges' shared plumbing)."""

    name = "test server"

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base_url(self) -> str:
        """OpenAI-compatible base URL."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> Self:
        """Start and wait until it listens."""
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stop the server thread."""
        self.server.should_exit = True
        self.thread.join(timeout=10)


class FakeJudgeServer(ThreadedServer):
    """Runs the fake in a uvicorn thread on 127.0.0.1."""

    name = "fake judge"

    def __init__(self) -> None:
        self.state = FakeJudgeState()
        super().__init__(build_app(self.state))

    def reset(self) -> None:
        """Back to a well-behaved judge."""
        fresh = FakeJudgeState()
        for name in ("model", "mode", "faults", "max_model_len", "calls", "requests", "delay_s", "capacity"):
            setattr(self.state, name, getattr(fresh, name))
        self.state.backend_version, self.state.dtype, self.state.peak_in_flight = fresh.backend_version, None, 0
        self.state.fail_rate = 0.0
        self.state.policy = None
        self.seed(0)

    def seed(self, seed: int) -> None:
        """Restart the failure draws from `seed` (the same seed fails the same calls)."""
        self.state.rng = random.Random(seed)


def main() -> None:
    """Serve one fake judge in its own process (benchmarks: replicas that do not share a GIL).

    `python -m tests.fake_judge --port P [--capacity N] [--delay S]`; `GET /stats` reports its counters.
    """
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--capacity", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    state = FakeJudgeState(capacity=args.capacity, delay_s=args.delay, keep_requests=False)
    app = build_app(state)

    @app.get("/stats")
    async def stats() -> dict[str, int]:
        return {"calls": state.calls, "peak_in_flight": state.peak_in_flight}

    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()

"""A scripted OpenAI-compatible judge for statistics tests: noisy, position-biased, soft, and fully logged.

Each answer carries a marker ``[[pair=<id> side=<base|ft>]]``, so the judge knows which slot holds FT and which
pair it is judging. A test-supplied `policy(pair, ft_slot, k)` returns the verdict (k counts earlier calls for the
same pair and FT slot, so repeats and re-judges get fresh draws), and every call is logged. Tests compute their
expected statistics from that log and the items they sent, never from the service.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request

from tests.fake_judge import ThreadedServer, answer_block

MARK = re.compile(r"\[\[pair=(\S+) side=(base|ft)\]\]")


@dataclass(frozen=True)
class Verdict:
    """What the judge answers: a hard winner slot (reasoned mode) or slot probabilities (fast mode)."""

    winner: str = "tie"  # "A" | "B" | "tie"
    dims: dict[str, tuple[int, int]] = field(default_factory=dict)  # dimension -> (Base score, FT score)
    probs: tuple[float, float, float] | None = None  # fast mode: P(A), P(B), P(tie)


@dataclass(frozen=True)
class Call:
    """One logged judge call."""

    pair: str
    ft_slot: str  # "A" when FT's answer was shown first
    k: int
    winner: str
    dims: dict[str, tuple[int, int]]  # dimension -> (base score, ft score) as answered
    probs: tuple[float, float, float] | None

    @property
    def s_ft(self) -> float:
        """FT's score of this judgment: 1 FT won, 0 Base won, 0.5 tie; fast mode P(FT) + P(tie) / 2."""
        if self.probs is not None:
            p_a, p_b, p_tie = self.probs
            return (p_a if self.ft_slot == "A" else p_b) + 0.5 * p_tie
        if self.winner == "tie":
            return 0.5
        return 1.0 if self.winner == self.ft_slot else 0.0


Policy = Callable[[str, str, int], Verdict]


class ScriptedJudge(ThreadedServer):
    """Runs the scripted judge in a uvicorn thread; `policy` may be swapped between submissions."""

    model = "scripted-judge"
    name = "scripted judge"

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.calls: list[Call] = []
        self._counts: dict[tuple[str, str], int] = defaultdict(int)
        self._lock = threading.Lock()
        super().__init__(self._app())

    def _decide(self, body: dict[str, Any]) -> Call:
        user = body["messages"][-1]["content"]
        a, b = MARK.search(answer_block(user, "A")), MARK.search(answer_block(user, "B"))
        assert a and b and a.group(1) == b.group(1), "every answer needs its [[pair=... side=...]] marker"
        pair, ft_slot = a.group(1), "A" if a.group(2) == "ft" else "B"
        with self._lock:
            k = self._counts[(pair, ft_slot)]
            self._counts[(pair, ft_slot)] += 1
        verdict = self.policy(pair, ft_slot, k)
        call = Call(pair, ft_slot, k, verdict.winner, dict(verdict.dims), verdict.probs)
        with self._lock:
            self.calls.append(call)
        return call

    def _app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/models")
        async def models() -> dict[str, Any]:
            return {"object": "list", "data": [{"id": self.model, "object": "model", "max_model_len": 8192}]}

        @app.get("/version")
        async def version() -> dict[str, str]:
            return {"version": "scripted-1"}

        @app.post("/tokenize")
        async def tokenize(request: Request) -> dict[str, Any]:
            body = await request.json()
            if "prompt" in body:
                words = body["prompt"].split()
                return {"count": len(words), "tokens": list(range(len(words))), "token_strs": words}
            return {"count": len("".join(m["content"] for m in body.get("messages", []))) // 4}

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> dict[str, Any]:
            body = await request.json()
            call = self._decide(body)
            logprobs = None
            if "structured_outputs" in body:
                assert call.probs is not None, "fast mode needs a policy that returns probs"
                tops = [
                    {"token": t, "logprob": math.log(p), "bytes": list(t.encode())}
                    for t, p in zip(("A", "B", "tie"), call.probs, strict=True)
                ]
                best = max(tops, key=lambda t: float(t["logprob"]))  # type: ignore[arg-type]
                content = str(best["token"])
                logprobs = {"content": [{**best, "top_logprobs": tops}]}
            else:
                schema = body["response_format"]["json_schema"]["schema"]
                out: dict[str, Any] = {}
                for key in schema["properties"]:
                    if key.endswith(("_a", "_b")) and key not in ("tags_a", "tags_b"):
                        dim, slot = key[:-2], key[-1].upper()
                        base, ft = call.dims.get(dim, (3, 3))
                        out[key] = ft if slot == call.ft_slot else base
                out["why"] = f"scripted verdict {call.winner}"
                out["winner"] = call.winner
                out["tags_a"], out["tags_b"] = [], []
                content = json.dumps(out, separators=(",", ":"))
            return {
                "id": f"chatcmpl-{len(self.calls)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.model,
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


def marked_item(pair: str, base_text: str, ft_text: str, **extra: Any) -> dict[str, Any]:
    """A pair whose answers carry the scripted judge's markers."""
    return {
        "id": pair,
        "prompt": f"Question {pair}: how do I reset my password?",
        "base_output": f"[[pair={pair} side=base]] {base_text}",
        "ft_output": f"[[pair={pair} side=ft]] {ft_text}",
        **extra,
    }

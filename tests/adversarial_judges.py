"""Adversarial judge policies for the fake judge (`FakeJudgeState.policy`): judges that carry no signal.

Every policy is deterministic: a decision depends only on the call (answers, seed), never on
the order calls arrive in, so the tests that use them cannot flake. FT's answers carry the
fake's GOOD marker where FT is meant to be better (tests.conftest.pair_items).
"""

from __future__ import annotations

import hashlib

from tests.fake_judge import MARKER, Decision, JudgeCall


def _unit(*parts: object) -> float:
    """A reproducible number in [0, 1) from the parts (a hash, not a shared RNG)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def always_a(call: JudgeCall) -> Decision:
    """Picks whatever is shown first."""
    return Decision("A")


def coin_flip(call: JudgeCall) -> Decision:
    """A, B or tie, each a third of the time, whatever the answers say."""
    u = _unit("coin", call.answer_a, call.answer_b, call.seed)
    return Decision("A" if u < 1 / 3 else "B" if u < 2 / 3 else "tie")


def soft_no_signal(call: JudgeCall) -> Decision:
    """Fast mode: P(A) = 0.6, P(B) = 0.3, P(tie) = 0.1 in every order (the issue's case)."""
    return Decision("A", probs={"A": 0.6, "B": 0.3, "tie": 0.1})


def _ft_in_a(call: JudgeCall) -> bool:
    return MARKER in call.answer_a


def one_order_failing(call: JudgeCall) -> Decision:
    """Always A, and every call with FT in slot A (the ft_first order) fails."""
    return Decision(fail=True) if _ft_in_a(call) else Decision("A")


def uneven_repeats(call: JudgeCall) -> Decision:
    """Always B; with FT in slot A only repeat 0 (seed 0) succeeds.

    With 3 repeats a pair gets base_first [FT, FT, FT] and ft_first [Base]: the mean of the four
    judgments is 0.75 (a "win"), the mean of the order means 0.5.
    """
    if _ft_in_a(call) and call.seed != 0:
        return Decision(fail=True)
    return Decision("B")


def with_signal(call: JudgeCall) -> Decision:
    """Picks the GOOD answer, but says tie on a reproducible 15% of calls (and when neither is GOOD)."""
    a_good, b_good = MARKER in call.answer_a, MARKER in call.answer_b
    if a_good == b_good or _unit("noise", call.answer_a, call.answer_b, call.seed) < 0.15:
        return Decision("tie")
    return Decision("A" if a_good else "B")

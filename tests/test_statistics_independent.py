"""Report statistics against independent computations from the judge's own log (numpy/scipy/statsmodels, by hand).

The scripted judge (tests/scripted_judge.py) is noisy, position-biased, says tie in one order and win in the other,
prefers longer answers and gives uneven dimension scores, so every path below sees non-symmetric, non-integer data.
Each expected number is computed here from the calls the judge logged and the items the test sent, never by another
code path of the service. The module docstring of each test names the deliberate bug it is there to catch.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
import statsmodels.api as sm  # type: ignore[import-untyped]
from scipy import stats
from scipy.special import expit

from judge_service.stats.length import length_controlled_win_rate
from judge_service.stats.position import slot_a_share
from tests.conftest import Service, make_settings, start_service
from tests.scripted_judge import Call, Policy, ScriptedJudge, Verdict, marked_item

Z95 = float(stats.norm.ppf(0.975))


# --- independent computations ------------------------------------------------------------------------------------


def per_pair_fit(d: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """Per-pair Binomial GLM (fractional response) of the score on d: LC win rate, its CI (percent), coefficient."""
    fit = sm.GLM(y, sm.add_constant(d), family=sm.families.Binomial()).fit()
    low, high = fit.conf_int()[0]
    return 100 * expit(fit.params[0]), 100 * expit(low), 100 * expit(high), float(fit.params[1])


def wilson(p: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval by hand (Wilson 1927)."""
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def clustered_slot_a(a: np.ndarray, m: np.ndarray) -> tuple[float, float, float]:
    """Slot-A share over pairs with a decisive verdict, Wilson at the design-effect sample size (docs/statistics.md)."""
    keep = m > 0
    a, m = a[keep].astype(float), m[keep].astype(float)
    n, total = len(a), m.sum()
    p = a.sum() / total
    var_cluster = n / (n - 1) * np.sum((a - p * m) ** 2) / total**2
    deff = max(1.0, var_cluster / (p * (1 - p) / total))
    low, high = wilson(p, total / deff)
    return p, low, high


def verdict(score: float) -> str:
    return "ft" if score > 0.5 else "base" if score < 0.5 else "tie"


class Log:
    """The judge log arranged per pair and FT slot (A: ft_first, B: base_first)."""

    def __init__(self, calls: list[Call], ks: range | None = None) -> None:
        self.by_pair: dict[str, dict[str, list[Call]]] = defaultdict(lambda: defaultdict(list))
        for c in calls:
            if ks is None or c.k in ks:
                self.by_pair[c.pair][c.ft_slot].append(c)
        self.pairs = sorted(self.by_pair)

    def score(self, pair: str) -> float:
        """Mean of the order means (every test design is balanced, so this is also the mean of all judgments)."""
        return float(np.mean([np.mean([c.s_ft for c in cs]) for cs in self.by_pair[pair].values()]))

    def scores(self) -> np.ndarray:
        return np.array([self.score(p) for p in self.pairs])


# --- fixtures ----------------------------------------------------------------------------------------------------


@pytest.fixture
async def scripted(database_url: str) -> AsyncIterator[tuple[Service, ScriptedJudge]]:
    judge = ScriptedJudge(lambda pair, slot, k: Verdict("tie")).start()
    try:
        settings = make_settings(database_url, judge.base_url, judge.model)
        async for svc in start_service(settings):
            yield svc, judge
    finally:
        judge.stop()


async def submit(svc: Service, items: list[dict[str, Any]], experiment: str, **options: Any) -> None:
    body = {
        "experiment": {"name": experiment, "base_model": "base-7b", "ft_model": "ft-7b"},
        "rubric": "customer_service",
        "items": items,
        "options": options,
    }
    reply = await svc.http.post("/judge/pairwise", json=body, headers=svc.auth("submit"))
    assert reply.status_code in (200, 202), reply.text
    if reply.status_code == 202:  # a large submission runs in the background
        await svc.ctx.executor.wait_run(reply.json()["run_id"])


async def get(svc: Service, path: str, **params: Any) -> dict[str, Any]:
    reply = await svc.http.get(path, params=params, headers=svc.auth("read"))
    assert reply.status_code == 200, reply.text
    out: dict[str, Any] = reply.json()
    return out


def other(slot: str) -> str:
    return "B" if slot == "A" else "A"


def adversarial_policy(
    quality: dict[str, float], lengths: dict[str, float], seed: int = 0, bias: float = 0.25, tie: float = 0.15
) -> Policy:
    """Picks slot A with probability `bias`, says tie with `tie`, else prefers FT by quality shifted by length."""

    def policy(pair: str, ft_slot: str, k: int) -> Verdict:
        rng = random.Random(f"{seed}:{pair}:{ft_slot}:{k}")
        u = rng.random()
        p_ft = float(expit(np.log(quality[pair] / (1 - quality[pair])) + 2.5 * lengths[pair]))
        if u < bias:
            winner = "A"
        elif u < bias + tie:
            winner = "tie"
        else:
            winner = ft_slot if rng.random() < p_ft else other(ft_slot)
        base = rng.randint(1, 5)
        ft = min(5, max(1, base + round(rng.gauss(2 * (quality[pair] - 0.4), 1.3))))
        return Verdict(winner, {"accuracy": (base, ft), "resolution": (rng.randint(2, 4), rng.randint(1, 5))})

    return policy


def make_items(n: int, seed: int) -> tuple[list[dict[str, Any]], dict[str, float], dict[str, float]]:
    """n pairs of uneven answer lengths, tagged by topic, with a hidden FT quality per pair."""
    rng = np.random.default_rng(seed)
    items, quality, lengths = [], {}, {}
    for i in range(n):
        pair = f"q{i}"
        base_text = "b" * int(rng.integers(20, 700))
        ft_text = "f" * int(rng.integers(20, 900))
        item = marked_item(pair, base_text, ft_text, tags={"topic": "billing" if i % 3 else "returns"})
        b, f = len(item["base_output"]), len(item["ft_output"])
        quality[pair] = float(rng.uniform(0.2, 0.8))
        lengths[pair] = (f - b) / (f + b)
        items.append(item)
    return items, quality, lengths


# --- length-controlled win rate: the grouped fit against a per-pair statsmodels fit ------------------------------


def test_lc_grouped_fit_matches_per_pair_statsmodels() -> None:
    rng = np.random.default_rng(11)
    n = 20_000
    base_len, ft_len = rng.integers(30, 1500, n), rng.integers(30, 3000, n)  # FT answers longer on average
    d = (ft_len - base_len) / (ft_len + base_len)
    p = expit(-0.3 + 2.2 * d)  # longer answers preferred; at equal length FT is slightly worse
    u = rng.random(n)
    y = np.where(u < 0.85 * p, 1.0, np.where(u < 0.85 * p + 0.15, 0.5, 0.0))  # with ties
    expected = per_pair_fit(d, y)
    # Cells as the rollups keep them, by hand: floor((d + 1) * 20 + 0.5) bins x score, mean d per cell.
    bins = np.floor((d + 1) * 20 + 0.5).astype(int)
    cells: dict[tuple[int, float], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for b, s, x in zip(bins, y, d, strict=True):
        cells[(b, s)][0] += x
        cells[(b, s)][1] += 1
    rows = np.array([(ds / c, s, c) for (_, s), (ds, c) in cells.items()])
    assert len(rows) < 200  # the fit runs on a few cells, not 20,000 rows
    got = length_controlled_win_rate(rows[:, 0], rows[:, 1], rows[:, 2])
    assert got.n == n
    assert got.win_rate == pytest.approx(expected[0], abs=0.1)
    assert got.ci_low == pytest.approx(expected[1], abs=0.1) and got.ci_high == pytest.approx(expected[2], abs=0.1)
    assert got.length_coef == pytest.approx(expected[3], rel=0.01)
    raw = 100 * y.mean()
    assert got.win_rate is not None and got.win_rate < raw - 5  # length control matters on this data
    # One pair per cell is the per-pair fit itself.
    exact = length_controlled_win_rate(d[:3000], y[:3000], np.ones(3000))
    assert exact.win_rate == pytest.approx(per_pair_fit(d[:3000], y[:3000])[0], rel=1e-7)


def test_lc_without_length_effect_is_the_raw_win_rate() -> None:
    rng = np.random.default_rng(5)
    n = 5000
    d = rng.uniform(-0.6, 0.6, n)
    y = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], n, p=[0.2, 0.1, 0.2, 0.15, 0.35])  # soft, no length effect
    got = length_controlled_win_rate(d, y, np.ones(n))
    assert got.win_rate == pytest.approx(100 * y.mean(), abs=1.0)
    assert got.ci_low is not None and got.ci_high is not None and got.ci_low < 100 * y.mean() < got.ci_high
    assert got.length_coef is not None and abs(got.length_coef) < 0.2


def test_lc_undefined_cases_are_null() -> None:
    assert length_controlled_win_rate([0.2], [1.0], [1]).win_rate is None  # one pair
    assert length_controlled_win_rate([0.1, -0.2], [1.0, 1.0], [4, 3]).win_rate is None  # every pair won
    assert length_controlled_win_rate([0.3, 0.3], [1.0, 0.0], [4, 3]).win_rate is None  # d never 0
    separated = length_controlled_win_rate([0.3, -0.3], [1.0, 0.0], [4, 3])  # longer always wins
    assert separated.win_rate is None and separated.n == 7
    only_equal = length_controlled_win_rate([0.0, 0.0], [1.0, 0.0], [3, 1])  # no length spread, all at d = 0
    assert only_equal.win_rate == pytest.approx(75.0) and only_equal.length_coef is None


# --- slot-A share clustered by pair ------------------------------------------------------------------------------


def test_slot_a_share_by_hand_and_repeats_add_no_information() -> None:
    rng = np.random.default_rng(2)
    m = rng.integers(0, 5, 200)
    a = rng.binomial(m, rng.uniform(0.3, 0.9, 200))
    got = slot_a_share(a.sum(), m.sum(), (a * a).sum(), (m * m).sum(), (a * m).sum(), int((m > 0).sum()))
    p, low, high = clustered_slot_a(a, m)
    assert (got.rate, got.ci_low, got.ci_high) == (pytest.approx(p), pytest.approx(low), pytest.approx(high))
    # One verdict per pair, or the same verdict repeated 4 times: the same evidence, the same interval.
    b = rng.binomial(1, 0.6, 300)
    once = slot_a_share(b.sum(), 300, b.sum(), 300, b.sum(), 300)
    four = slot_a_share(4 * b.sum(), 1200, 16 * b.sum(), 16 * 300, 16 * b.sum(), 300)
    assert four.ci_low == pytest.approx(once.ci_low) and four.ci_high == pytest.approx(once.ci_high)
    naive = stats.binomtest(int(4 * b.sum()), 1200).proportion_ci(method="wilson")
    assert four.ci_high - four.ci_low > 1.9 * (naive.high - naive.low)  # not 1200 independent verdicts
    assert slot_a_share(1, 2, 1, 4, 2, 1).standard_error is None  # one pair: SE undefined


# --- through the API: the six deliberate bugs --------------------------------------------------------------------


async def test_report_numbers_match_the_judge_log(scripted: tuple[Service, ScriptedJudge]) -> None:
    """Catches: bootstrap CI at 99% (per-dimension diff CI), position consistency where a tie agrees with a win,
    Base/FT lengths swapped, slot-A Wilson CI at 80%; and checks the length-controlled win rate end to end."""
    svc, judge = scripted
    items, quality, lengths = make_items(70, seed=3)
    judge.policy = adversarial_policy(quality, lengths)
    await submit(svc, items, "adv", repeats=2)
    log = Log(judge.calls)
    assert len(judge.calls) == 70 * 4
    rep = await get(svc, "/reports/win-rate", experiment="adv")
    overall = rep["overall"]
    scores = log.scores()
    assert overall["n_pairs"] == 70 and overall["win_rate"] == pytest.approx(100 * scores.mean())

    # Lengths (bug: Base/FT swapped).
    base_chars = np.mean([len(i["base_output"]) for i in items])
    ft_chars = np.mean([len(i["ft_output"]) for i in items])
    assert abs(base_chars - ft_chars) > 50  # the data can tell the two apart
    assert overall["length"]["mean_base_chars"] == pytest.approx(base_chars)
    assert overall["length"]["mean_ft_chars"] == pytest.approx(ft_chars)

    # Length-controlled win rate: grouped fit in the service vs a per-pair statsmodels fit here.
    d = np.array([lengths[p] for p in log.pairs])
    lc_win, lc_low, lc_high, coef = per_pair_fit(d, scores)
    lc = overall["length_controlled"]
    assert lc["n"] == 70 and coef > 0.5  # longer answers preferred, and the sign says FT-longer
    assert lc["win_rate"] == pytest.approx(lc_win, abs=1.0)
    assert lc["ci_low"] == pytest.approx(lc_low, abs=1.0) and lc["ci_high"] == pytest.approx(lc_high, abs=1.0)
    assert lc["length_coef"] == pytest.approx(coef, rel=0.1)

    # Position consistency (bug: a tie in one order agreeing with a win in the other).
    agree = both = 0
    tie_vs_win = 0
    for pair in log.pairs:
        orders = log.by_pair[pair]
        if len(orders) == 2:
            both += 1
            v = [verdict(float(np.mean([c.s_ft for c in orders[s]]))) for s in ("A", "B")]
            agree += v[0] == v[1]
            tie_vs_win += "tie" in v and v[0] != v[1]
    assert tie_vs_win >= 5  # the data exercise the tie-against-win case
    assert overall["position_consistency"] == pytest.approx(agree / both)

    # Slot-A share and its CI clustered by pair (bug: Wilson at 80%).
    a = np.array([sum(c.winner == "A" for cs in log.by_pair[p].values() for c in cs) for p in log.pairs])
    m = np.array([sum(c.winner != "tie" for cs in log.by_pair[p].values() for c in cs) for p in log.pairs])
    rate, low, high = clustered_slot_a(a, m)
    assert overall["position_a_rate"] == pytest.approx(rate)
    assert overall["position_a_ci_low"] == pytest.approx(low) and overall["position_a_ci_high"] == pytest.approx(high)
    consistency = await get(svc, "/reports/consistency", experiment="adv")
    bias = consistency["position_bias"]
    assert bias["slot_a_rate"] == pytest.approx(rate)
    assert bias["ci_low"] == pytest.approx(low) and bias["ci_high"] == pytest.approx(high)

    # Per-dimension mean difference and its bootstrap CI (bug: 99% instead of 95%).
    for dim in ("accuracy", "resolution"):
        diffs = np.array(
            [
                np.mean([c.dims[dim][1] for cs in log.by_pair[p].values() for c in cs])
                - np.mean([c.dims[dim][0] for cs in log.by_pair[p].values() for c in cs])
                for p in log.pairs
            ]
        )
        boot = stats.bootstrap(
            (diffs,), np.mean, confidence_level=0.95, method="percentile", n_resamples=20_000, random_state=1
        ).confidence_interval
        t_half = stats.t.ppf(0.975, len(diffs) - 1) * diffs.std(ddof=1) / np.sqrt(len(diffs))
        entry = next(e for e in overall["per_dimension"] if e["dimension"] == dim)
        width = boot.high - boot.low
        assert entry["diff"] == pytest.approx(diffs.mean())
        assert entry["diff_ci_low"] == pytest.approx(boot.low, abs=0.07 * width)
        assert entry["diff_ci_high"] == pytest.approx(boot.high, abs=0.07 * width)
        assert entry["diff_ci_high"] - entry["diff_ci_low"] == pytest.approx(2 * t_half, rel=0.1)

    # Slices (the filtered aggregation path): LC per slice against a per-pair fit on that slice.
    sliced = await get(svc, "/reports/win-rate", experiment="adv", group_by="topic")
    for s in sliced["slices"]:
        members = [i for i, p in enumerate(log.pairs) if items[int(p[1:])]["tags"]["topic"] == s["value"]]
        expected = per_pair_fit(d[members], scores[members])
        assert s["length_controlled"]["n"] == len(members)
        assert s["length_controlled"]["win_rate"] == pytest.approx(expected[0], abs=1.5)
        assert s["position_a_rate"] == pytest.approx(clustered_slot_a(a[members], m[members])[0])
    assert sliced["overall"]["length_controlled"] == pytest.approx(lc)


async def test_agreement_report_orientation(scripted: tuple[Service, ScriptedJudge]) -> None:
    """Catches: label orientation flipped in the agreement report (Base and FT swapped on either side)."""
    svc, judge = scripted
    items, quality, lengths = make_items(40, seed=8)
    judge.policy = adversarial_policy(quality, dict.fromkeys(lengths, 0.0), seed=4)
    await submit(svc, items, "lab")
    log = Log(judge.calls)
    judge_verdicts = {p: verdict(log.score(p)) for p in log.pairs}
    rng = random.Random(9)
    human: dict[str, str] = {}
    for p in log.pairs:  # mostly "ft" where FT is good, "base" where it is not; 15% disagree at random
        human[p] = ("ft" if quality[p] > 0.45 else "base") if rng.random() > 0.15 else rng.choice(["base", "tie"])
    records = [{"pair_id": p, "annotator": "ann1", "verdict": v} for p, v in human.items()]
    reply = await svc.http.post(
        "/experiments/lab/labels",
        json={"source": "human", "format": "jsonl", "records": records},
        headers=svc.auth("submit"),
    )
    assert reply.status_code == 200, reply.text
    comparison = next(c for c in (await get(svc, "/reports/agreement", experiment="lab"))["comparisons"])
    categories = ["base", "tie", "ft"]
    table = np.zeros((3, 3), dtype=int)
    for p in log.pairs:
        table[categories.index(judge_verdicts[p]), categories.index(human[p])] += 1
    assert not np.array_equal(table, table.T) and not np.array_equal(table, table[::-1, ::-1])  # orientation shows
    assert (comparison["a"], comparison["b"], comparison["categories"]) == ("judge", "human", categories)
    assert comparison["confusion"] == table.tolist()
    n = table.sum()
    po, pe = np.trace(table) / n, table.sum(axis=1) @ table.sum(axis=0) / n**2
    assert comparison["agreement"] == pytest.approx(po)
    assert comparison["cohen_kappa"] == pytest.approx((po - pe) / (1 - pe))
    labelled = await get(svc, "/reports/win-rate", experiment="lab", source="human")
    expected = np.mean([{"base": 0.0, "tie": 0.5, "ft": 1.0}[v] for v in human.values()])
    assert labelled["overall"]["win_rate"] == pytest.approx(100 * expected)


async def test_rejudge_change_ci_is_paired(scripted: tuple[Service, ScriptedJudge]) -> None:
    """Catches: the re-judge change CI computed unpaired; and the drift alert raised on the paired change CI."""
    svc, judge = scripted
    items, _, _ = make_items(60, seed=12)
    # Strongly pair-dependent verdicts: each pair's two judgings are highly correlated, so pairing matters.
    quality = {i["id"]: (0.99 if n % 2 else 0.02) for n, i in enumerate(items)}
    flat = dict.fromkeys(quality, 0.0)
    judge.policy = adversarial_policy(quality, flat, seed=21, bias=0.04, tie=0.04)
    await submit(svc, items, "drift")
    # The re-judge sees a slightly more FT-friendly judge: a small, real, paired drift.
    shifted = {p: min(0.99, q + 0.2) for p, q in quality.items()}
    judge.policy = adversarial_policy(shifted, flat, bias=0.04, tie=0.04)
    spec = {"name": "drift-check", "experiments": ["drift"], "sample_fraction": 1.0, "cron": "0 3 * * *"}
    schedule = (await svc.http.post("/schedules", json=spec, headers=svc.auth("admin"))).json()
    fired = (await svc.http.post(f"/schedules/{schedule['id']}/run", headers=svc.auth("admin"))).json()
    for run_id in fired["run_ids"]:
        await svc.ctx.executor.wait_run(run_id)
    run = (await get(svc, "/reports/rejudge", experiment="drift"))["runs"][-1]
    old, new = Log(judge.calls, range(0, 1)), Log(judge.calls, range(1, 2))
    assert old.pairs == new.pairs and run["compared_pairs"] == 60
    before, after = old.scores(), new.scores()
    diffs = after - before
    paired = stats.bootstrap(
        (diffs,), np.mean, confidence_level=0.95, method="percentile", n_resamples=20_000, random_state=2
    ).confidence_interval
    unpaired = stats.bootstrap(
        (after, before),
        lambda x, y: np.mean(x) - np.mean(y),
        confidence_level=0.95,
        method="percentile",
        n_resamples=20_000,
        random_state=2,
    ).confidence_interval
    width = 100 * (paired.high - paired.low)
    assert 100 * (unpaired.high - unpaired.low) > 1.4 * width  # pairing matters on this data
    change = run["win_rate_change"]
    assert change["change"] == pytest.approx(100 * diffs.mean())
    assert change["ci_low"] == pytest.approx(100 * paired.low, abs=0.08 * width)
    assert change["ci_high"] == pytest.approx(100 * paired.high, abs=0.08 * width)
    drift = any(a["kind"] == "win_rate_drift" for a in run["alerts"])
    assert drift == (paired.low > 0 or paired.high < 0)
    # On this data the drift is real (paired CI above 0) yet the re-judged win rate stays inside the original's
    # own CI: the old rule (original's unpaired CI) would have stayed silent.
    original_ci = stats.bootstrap(
        (before,), np.mean, confidence_level=0.95, method="percentile", n_resamples=20_000, random_state=3
    ).confidence_interval
    assert drift and original_ci.low < after.mean() < original_ci.high


async def test_rollup_migration_refills_length_bins(scripted: tuple[Service, ScriptedJudge], database_url: str) -> None:
    """Migration 0010 rebuilds the rollups with length bins and per-pair sums: down to 0009 (below it, whatever
    the head) and up again gives the rollups the incremental refreshes kept, and the same report."""
    import asyncio

    from alembic import command
    from sqlalchemy import select

    from judge_service.store.db import alembic_config
    from judge_service.store.models import PairResultRollup

    svc, judge = scripted
    items, quality, lengths = make_items(30, seed=17)
    judge.policy = adversarial_policy(quality, lengths, seed=5)
    await submit(svc, items, "mig")

    async def rollups() -> list[tuple[Any, ...]]:
        async with svc.ctx.sessions() as session:
            rows = (await session.execute(select(PairResultRollup).where(PairResultRollup.pairs != 0))).scalars()
            return sorted(
                (r.score, r.inconsistent, r.orders_agree, r.length_cmp, r.length_bin, r.pairs, r.a_picks,
                 r.decisive, r.base_len, r.ft_len, round(r.length_diff, 9), r.decisive_pairs, r.a_picks_sq,
                 r.decisive_sq, r.a_picks_decisive)
                for r in rows
            )  # fmt: skip

    before, report = await rollups(), await get(svc, "/reports/win-rate", experiment="mig")
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0009")
    await asyncio.to_thread(command.upgrade, alembic_config(database_url), "head")
    assert await rollups() == before
    again = await get(svc, "/reports/win-rate", experiment="mig")
    assert again["overall"]["length_controlled"] == pytest.approx(report["overall"]["length_controlled"])
    assert again["overall"]["position_a_ci_low"] == pytest.approx(report["overall"]["position_a_ci_low"])


def test_one_pair_has_no_interval() -> None:
    """SE and CIs are undefined (null) for n < 2, never a zero-width interval."""
    from judge_service.reports.rejudge import paired_change
    from judge_service.reports.winrate import block
    from judge_service.store.aggregate import DimensionData, SliceData

    data = SliceData(
        score_values=np.array([1.0]),
        score_counts=np.array([1]),
        sums={"pairs": 1, "valid_pairs": 1, "a_picks": 1, "decisive_verdicts": 2, "decisive_pairs": 1},
        dimensions={"accuracy": DimensionData([2.0], [1], 1, 3.0, 5.0, 1.0, 1)},
        length_cells=np.array([[0.2, 1.0, 1.0]]),
    )
    out = block(data)
    entry = out["per_dimension"][0]
    assert entry["diff"] == 2.0 and entry["diff_ci_low"] is None and entry["diff_ci_high"] is None
    assert out["length_controlled"] == {"win_rate": None, "ci_low": None, "ci_high": None, "length_coef": None, "n": 1}
    assert out["position_a_rate"] == 0.5 and out["position_a_ci_low"] < 0.5 < out["position_a_ci_high"]
    change = paired_change(np.array([0.0]), np.array([1.0]))
    assert change["change"] == 100.0 and change["ci_low"] is None and change["standard_error"] is None


async def test_fast_mode_soft_scores(scripted: tuple[Service, ScriptedJudge]) -> None:
    """Soft fast-mode scores (every pair score distinct) through the rollups: LC and slot-A share against the log."""
    svc, judge = scripted
    items, quality, lengths = make_items(50, seed=23)

    def soft(pair: str, ft_slot: str, k: int) -> Verdict:
        rng = random.Random(f"soft:{pair}:{ft_slot}:{k}")
        p_ft = float(expit(np.log(quality[pair] / (1 - quality[pair])) + 3.0 * lengths[pair]))
        p_tie = rng.uniform(0.05, 0.3)
        p_first = 0.15  # position bias: slot A gets extra mass
        p_a = (1 - p_tie) * (p_ft if ft_slot == "A" else 1 - p_ft)
        p_a = min(0.95 - p_tie, p_a + p_first)
        return Verdict(probs=(p_a, 1 - p_tie - p_a, p_tie))

    judge.policy = soft
    await submit(svc, items, "soft", mode="fast")
    log = Log(judge.calls)
    scores = log.scores()
    assert len(np.unique(scores)) == 50  # non-integer, all distinct
    overall = (await get(svc, "/reports/win-rate", experiment="soft", mode="fast"))["overall"]
    assert overall["win_rate"] == pytest.approx(100 * scores.mean())
    d = np.array([lengths[p] for p in log.pairs])
    win, low, high, coef = per_pair_fit(d, scores)
    lc = overall["length_controlled"]
    assert lc["win_rate"] == pytest.approx(win, abs=1.0) and lc["length_coef"] == pytest.approx(coef, rel=0.1)
    assert lc["ci_low"] == pytest.approx(low, abs=1.0) and lc["ci_high"] == pytest.approx(high, abs=1.0)

    def argmax(c: Call) -> str:
        return ("A", "B", "tie")[int(np.argmax(c.probs))]

    a = np.array([sum(argmax(c) == "A" for cs in log.by_pair[p].values() for c in cs) for p in log.pairs])
    m = np.array([sum(argmax(c) != "tie" for cs in log.by_pair[p].values() for c in cs) for p in log.pairs])
    rate, ci_low, ci_high = clustered_slot_a(a, m)
    assert overall["position_a_rate"] == pytest.approx(rate)
    assert (overall["position_a_ci_low"], overall["position_a_ci_high"]) == (
        pytest.approx(ci_low),
        pytest.approx(ci_high),
    )

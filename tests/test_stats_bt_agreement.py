"""Bradley–Terry ratings and judge agreement against hand-computed values."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import statsmodels.api as sm  # type: ignore[import-untyped]

from judge_service.stats.agreement import (
    VERDICTS,
    confusion_matrix,
    fleiss_kappa,
    pairwise_agreement,
    verdict_of_score,
)
from judge_service.stats.bradley_terry import (
    ELO_SCALE,
    Battle,
    bootstrap_bradley_terry,
    fit_bradley_terry,
    unbounded_models,
)

MLE = 0.0  # no prior: the plain maximum-likelihood fit these hand-computed values describe
TRUE_THETA = {"alpha": 0.0, "beta": 0.5, "gamma": 1.2}


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# --- Bradley–Terry ---------------------------------------------------------------------------------------------


def test_two_models_75_of_100() -> None:
    battles = [Battle("a", "b", 1.0, 75), Battle("a", "b", 0.0, 25)]
    ratings = fit_bradley_terry(battles, prior_ties=MLE)
    assert ratings["a"] == 1000.0  # alphabetically first model is the anchor
    # Odds 3:1 -> theta_b - theta_a = ln 3, i.e. 400 * log10(3) Elo points.
    assert math.isclose(ratings["b"] - ratings["a"], ELO_SCALE * math.log(3), abs_tol=1e-3)
    assert math.isclose(ratings["b"] - ratings["a"], 400 * math.log10(3), abs_tol=1e-3)
    assert math.isclose(ratings["b"] - ratings["a"], 190.85, abs_tol=0.01)


def test_orientation_does_not_matter() -> None:
    # The same 75/25 outcome written with the models swapped.
    ratings = fit_bradley_terry([Battle("b", "a", 0.0, 75), Battle("b", "a", 1.0, 25)], prior_ties=MLE)
    assert math.isclose(ratings["b"] - ratings["a"], 400 * math.log10(3), abs_tol=1e-3)


def test_ties_count_half() -> None:
    # 50 wins + 50 ties = 75 of 100 points for b.
    with_ties = fit_bradley_terry([Battle("a", "b", 1.0, 50), Battle("a", "b", 0.5, 50)], prior_ties=MLE)
    assert math.isclose(with_ties["b"] - with_ties["a"], 400 * math.log10(3), abs_tol=1e-3)
    # A soft score of 0.75 on each of 100 pairs is the same likelihood.
    soft = fit_bradley_terry([Battle("a", "b", 0.75, 100)], prior_ties=MLE)
    assert math.isclose(soft["b"], with_ties["b"], abs_tol=1e-3)
    # All ties: equal strength.
    assert math.isclose(fit_bradley_terry([Battle("a", "b", 0.5, 10)], prior_ties=MLE)["b"], 1000.0, abs_tol=1e-3)


def test_exact_recovery_three_models() -> None:
    # Soft scores equal to the true win probabilities: the MLE is the generating strength itself.
    battles = [
        Battle(a, b, _sigmoid(TRUE_THETA[b] - TRUE_THETA[a]), 1000) for a, b in itertools.combinations(TRUE_THETA, 2)
    ]
    ratings = fit_bradley_terry(battles, prior_ties=MLE)
    for model, theta in TRUE_THETA.items():
        assert math.isclose(ratings[model], 1000 + ELO_SCALE * theta, abs_tol=0.01)


def test_recovery_from_simulated_pairs() -> None:
    rng = np.random.default_rng(42)
    battles = []
    n = 20_000
    for a, b in itertools.combinations(TRUE_THETA, 2):
        wins_b = int(rng.binomial(n, _sigmoid(TRUE_THETA[b] - TRUE_THETA[a])))
        battles += [Battle(a, b, 1.0, wins_b), Battle(a, b, 0.0, n - wins_b)]
    ratings = fit_bradley_terry(battles, prior_ties=MLE)
    assert sorted(ratings, key=ratings.__getitem__) == ["alpha", "beta", "gamma"]
    for x, y in itertools.combinations(TRUE_THETA, 2):
        fitted = (ratings[y] - ratings[x]) / ELO_SCALE
        assert math.isclose(fitted, TRUE_THETA[y] - TRUE_THETA[x], abs_tol=0.06)  # ~4 standard errors


def test_matches_binomial_glm() -> None:
    # Independent check: BT with soft scores is a weighted binomial GLM on +1/-1 design rows, no intercept.
    rng = np.random.default_rng(3)
    names = [f"m{i}" for i in range(5)]
    theta = rng.normal(0.0, 1.0, len(names))
    battles = []
    for i, j in itertools.combinations(range(len(names)), 2):
        n = int(rng.integers(5, 100))
        wins = int(rng.binomial(n, _sigmoid(theta[j] - theta[i])))
        ties = int(rng.binomial(n - wins, 0.3))
        for score, count in ((1.0, wins), (0.5, ties), (0.0, n - wins - ties)):
            if count:
                battles.append(Battle(names[i], names[j], score, count))
    design = np.zeros((len(battles), len(names)))
    for k, battle in enumerate(battles):
        design[k, names.index(battle.model_b)] += 1
        design[k, names.index(battle.model_a)] -= 1
    glm = sm.GLM(
        np.array([b.score_b for b in battles]),
        design[:, 1:],  # m0 is the anchor
        family=sm.families.Binomial(),
        freq_weights=np.array([b.count for b in battles], dtype=float),
    ).fit()
    ratings = fit_bradley_terry(battles, prior_ties=MLE)
    for name, coef in zip(names, np.r_[0.0, glm.params], strict=True):
        assert math.isclose(ratings[name], 1000 + ELO_SCALE * coef, abs_tol=1e-2)


def test_anchor_shifts_only() -> None:
    battles = [Battle("a", "b", 1.0, 30), Battle("a", "b", 0.0, 10), Battle("b", "c", 0.5, 20), Battle("c", "a", 0, 5)]
    default = fit_bradley_terry(battles)
    anchored = fit_bradley_terry(battles, anchor="c")
    assert anchored["c"] == 1000.0
    for m in default:
        assert math.isclose(anchored[m] - anchored["a"], default[m] - default["a"], abs_tol=1e-3)


def test_undefeated_model_stays_finite() -> None:
    ratings = fit_bradley_terry([Battle("a", "b", 1.0, 10), Battle("b", "c", 1.0, 10), Battle("a", "c", 1.0, 3)])
    assert all(math.isfinite(r) for r in ratings.values())
    assert ratings["a"] < ratings["b"] < ratings["c"]


def test_weak_prior_keeps_an_undefeated_model_modest() -> None:
    # By hand: one virtual tie makes 10 wins of 10 pairs 10.5 of 11 points, odds 10.5 / 0.5 = 21 = 2n + 1.
    ratings = fit_bradley_terry([Battle("base", "ft", 1.0, 10)])
    assert math.isclose(ratings["ft"] - ratings["base"], 400 * math.log10(21), abs_tol=0.01)  # +529, not +2236
    mle = fit_bradley_terry([Battle("base", "ft", 1.0, 10)], prior_ties=MLE)
    assert mle["ft"] - mle["base"] > 2000  # the MLE only stops where the optimizer gives up
    assert unbounded_models([Battle("base", "ft", 1.0, 10)]) == {"ft"}
    # 75/25 with the prior: 75.5 / 25.5 by hand; nothing is unbounded once both models scored.
    battles = [Battle("a", "b", 1.0, 75), Battle("a", "b", 0.0, 25)]
    assert math.isclose(fit_bradley_terry(battles)["b"] - 1000, 400 * math.log10(75.5 / 25.5), abs_tol=0.01)
    assert unbounded_models(battles) == set()
    # A chain a < b < c where c never lost: only c (outside the anchor's component) is unbounded.
    chain = [Battle("a", "b", 1.0, 5), Battle("a", "b", 0.0, 2), Battle("b", "c", 1.0, 4)]
    assert unbounded_models(chain) == {"c"}
    with pytest.raises(ValueError):
        fit_bradley_terry(battles, prior_ties=-1)


def test_bootstrap_ci_contains_estimate_and_is_reproducible() -> None:
    battles = [
        Battle("a", "b", 1.0, 60),
        Battle("a", "b", 0.5, 10),
        Battle("a", "b", 0.0, 30),
        Battle("b", "c", 1.0, 40),
        Battle("b", "c", 0.0, 40),
        Battle("a", "c", 1.0, 55),
        Battle("a", "c", 0.0, 45),
    ]
    first = bootstrap_bradley_terry(battles, n_resamples=300, seed=7)
    point = fit_bradley_terry(battles)
    assert first.keys() == point.keys()
    assert first["a"] == (1000.0, 1000.0, 1000.0)  # the anchor has no uncertainty by construction
    for model in ("b", "c"):
        estimate, low, high = first[model]
        assert estimate == point[model]
        assert low < estimate < high
    assert bootstrap_bradley_terry(battles, n_resamples=300, seed=7) == first
    assert bootstrap_bradley_terry(battles, n_resamples=300, seed=8) != first
    # A wider level gives a wider interval.
    wide = bootstrap_bradley_terry(battles, n_resamples=300, seed=7, level=0.99)
    assert wide["b"][1] <= first["b"][1] and wide["b"][2] >= first["b"][2]


def test_bradley_terry_errors() -> None:
    with pytest.raises(ValueError, match="not connected"):
        fit_bradley_terry([Battle("a", "b", 1.0, 5), Battle("c", "d", 0.0, 5)])
    with pytest.raises(ValueError, match="not connected"):
        bootstrap_bradley_terry([Battle("a", "b", 1.0, 5), Battle("c", "d", 0.0, 5)])
    with pytest.raises(ValueError, match="at least 2 models"):
        fit_bradley_terry([])
    with pytest.raises(ValueError, match="two different models"):
        fit_bradley_terry([Battle("a", "a", 1.0)])
    with pytest.raises(ValueError, match="anchor"):
        fit_bradley_terry([Battle("a", "b", 1.0)], anchor="z")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fit_bradley_terry([Battle("a", "b", 1.5)])
    with pytest.raises(ValueError, match="count"):
        fit_bradley_terry([Battle("a", "b", 1.0, 0)])


# --- Agreement -------------------------------------------------------------------------------------------------

# Rows: judge A's verdict, columns: judge B's, in VERDICTS order (base, tie, ft).
TABLE = [[4, 1, 1], [1, 2, 1], [0, 1, 5]]


def _labels_from_table(table: list[list[int]]) -> tuple[list[str], list[str]]:
    a: list[str] = []
    b: list[str] = []
    for i, row in enumerate(table):
        for j, count in enumerate(row):
            a += [VERDICTS[i]] * count
            b += [VERDICTS[j]] * count
    return a, b


def test_confusion_matrix() -> None:
    a, b = _labels_from_table(TABLE)
    assert confusion_matrix(a, b).tolist() == TABLE
    assert confusion_matrix(b, a).tolist() == np.array(TABLE).T.tolist()
    with pytest.raises(ValueError, match="different numbers"):
        confusion_matrix(["ft"], [])
    with pytest.raises(ValueError, match="not among the categories"):
        confusion_matrix(["ft"], ["win"])


def test_cohen_kappa_hand_computed() -> None:
    a, b = _labels_from_table(TABLE)
    n = 16
    po = (4 + 2 + 5) / n
    rows, cols = [6, 4, 6], [5, 4, 7]
    pe = sum(r * c for r, c in zip(rows, cols, strict=True)) / n**2  # 88 / 256
    expected = (po - pe) / (1 - pe)
    assert math.isclose(expected, 11 / 21)
    result = pairwise_agreement(a, b)
    assert result.n == n
    assert result.cohen_kappa is not None and math.isclose(result.cohen_kappa, expected)
    assert math.isclose(result.agreement, 11 / 16)
    # Without ties: base/base 4, base/ft 1, ft/base 0, ft/ft 5 -> 9 of 10.
    assert result.n_without_ties == 10
    assert result.agreement_without_ties is not None and math.isclose(result.agreement_without_ties, 0.9)
    assert result.confusion == TABLE and result.categories == list(VERDICTS)
    assert result.as_dict()["cohen_kappa"] == result.cohen_kappa
    # κ is symmetric in the raters.
    swapped = pairwise_agreement(b, a)
    assert swapped.cohen_kappa is not None and math.isclose(swapped.cohen_kappa, expected)


def test_pairwise_agreement_edge_cases() -> None:
    # Both raters constant on the same label: expected agreement 1, κ undefined.
    same = pairwise_agreement(["tie"] * 5, ["tie"] * 5)
    assert (same.agreement, same.cohen_kappa, same.agreement_without_ties, same.n_without_ties) == (1.0, None, None, 0)
    constant = pairwise_agreement(["ft"] * 4, ["ft"] * 4)
    assert (constant.agreement, constant.agreement_without_ties, constant.cohen_kappa) == (1.0, 1.0, None)
    # Constant on different labels: pe = 0, κ = 0.
    apart = pairwise_agreement(["ft"] * 4, ["base"] * 4)
    assert (apart.agreement, apart.agreement_without_ties, apart.cohen_kappa) == (0.0, 0.0, 0.0)
    perfect = pairwise_agreement(["ft", "base", "tie", "ft"], ["ft", "base", "tie", "ft"])
    assert perfect.cohen_kappa is not None and math.isclose(perfect.cohen_kappa, 1.0)
    empty = pairwise_agreement([], [])
    assert empty.n == 0 and math.isnan(empty.agreement) and empty.cohen_kappa is None
    assert empty.agreement_without_ties is None


def test_fleiss_kappa_hand_computed() -> None:
    items = [
        ["base", "base", "base"],
        ["base", "tie", "ft"],
        ["ft", "ft", "tie"],
        ["ft", "ft", "ft"],
        ["base", "base", "ft"],
    ]
    # n_ij: ratings of item i in category j (base, tie, ft).
    counts = [[3, 0, 0], [1, 1, 1], [0, 1, 2], [0, 0, 3], [2, 0, 1]]
    n_items, n_raters = 5, 3
    p_i = [(sum(c * c for c in row) - n_raters) / (n_raters * (n_raters - 1)) for row in counts]
    p_bar = sum(p_i) / n_items  # 8 / 15
    p_j = [sum(row[j] for row in counts) / (n_items * n_raters) for j in range(3)]  # 6/15, 2/15, 7/15
    pe = sum(p * p for p in p_j)  # 89 / 225
    expected = (p_bar - pe) / (1 - pe)
    assert math.isclose(expected, 31 / 136)
    result = fleiss_kappa(items)
    assert result is not None and math.isclose(result, expected)


def test_fleiss_kappa_edge_cases() -> None:
    assert fleiss_kappa([["ft"] * 3] * 4) is None  # one category only: undefined
    assert fleiss_kappa([]) is None
    agreeing = fleiss_kappa([["ft"] * 3, ["base"] * 3, ["tie"] * 3])
    assert agreeing is not None and math.isclose(agreeing, 1.0)
    with pytest.raises(ValueError, match="same number of ratings"):
        fleiss_kappa([["ft", "ft", "base"], ["ft", "tie"]])
    with pytest.raises(ValueError, match="at least 2 ratings"):
        fleiss_kappa([["ft"], ["base"]])
    with pytest.raises(ValueError, match="not among the categories"):
        fleiss_kappa([["ft", "ft", "draw"]])


def test_verdict_of_score() -> None:
    assert [verdict_of_score(s) for s in (1.0, 0.75, 0.5, 0.25, 0.0)] == ["ft", "ft", "tie", "base", "base"]

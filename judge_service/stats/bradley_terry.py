"""Bradley–Terry strengths from pairwise battles, on an Elo-like scale, with bootstrap CIs (pure functions, no I/O).

Model: P(b beats a) = sigmoid(theta_b - theta_a). A battle with score s in [0, 1] counts as s wins for b and
1 - s for a, so the loss is the count-weighted binary cross-entropy with target s (ties = 0.5 count half).
Strengths are reported as ``ELO_SCALE * theta + ELO_BASE`` with ``ELO_SCALE = 400 / ln(10)``: a difference of
400 points means 10:1 odds, as in Elo. The anchor model is fixed at theta = 0, i.e. rating ``ELO_BASE`` = 1000.

Weak prior (docs/statistics.md, "Bradley–Terry"): every two models that met get ``prior_ties`` virtual
ties (default 1), so a model that won all n of its pairs against one opponent is rated
``ELO_SCALE * ln(2n + 1)`` above it (n = 10: +529) instead of running off to infinity. ``prior_ties=0`` is
the plain maximum-likelihood fit; `unbounded_models` names the models whose MLE would be infinite.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.special import expit

ELO_SCALE = 400.0 / math.log(10.0)
ELO_BASE = 1000.0
DEFAULT_PRIOR_TIES = 1.0

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Battle:
    """``count`` pairs in which model_b scored ``score_b`` against model_a (1 = b won, 0.5 = tie, 0 = a won)."""

    model_a: str
    model_b: str
    score_b: float
    count: int = 1


@dataclass(frozen=True)
class _Data:
    """Battles as arrays: model names (sorted), row indices of a and b, scores and counts."""

    models: list[str]
    idx_a: IntArray
    idx_b: IntArray
    scores: FloatArray
    counts: IntArray
    anchor: int
    prior_a: IntArray
    prior_b: IntArray


def _prepare(battles: Sequence[Battle], anchor: str | None) -> _Data:
    """Validate the battles and turn them into arrays; raise ValueError on bad input or a disconnected graph."""
    for b in battles:
        if b.model_a == b.model_b:
            raise ValueError(f"a battle needs two different models, got {b.model_a!r} against itself")
        if not 0.0 <= b.score_b <= 1.0:
            raise ValueError(f"score_b must be in [0, 1], got {b.score_b} for {b.model_a!r} vs {b.model_b!r}")
        if b.count < 1:
            raise ValueError(f"count must be a positive integer, got {b.count} for {b.model_a!r} vs {b.model_b!r}")
    models = sorted({b.model_a for b in battles} | {b.model_b for b in battles})
    if len(models) < 2:
        raise ValueError(f"Bradley–Terry needs battles between at least 2 models, got {len(models)}")
    if anchor is None:
        anchor = models[0]
    elif anchor not in models:
        raise ValueError(f"anchor model {anchor!r} does not appear in any battle")
    index = {m: i for i, m in enumerate(models)}
    idx_a = np.array([index[b.model_a] for b in battles], dtype=np.int64)
    idx_b = np.array([index[b.model_b] for b in battles], dtype=np.int64)
    graph = coo_matrix((np.ones(len(battles)), (idx_a, idx_b)), shape=(len(models), len(models)))
    n_components, labels = connected_components(graph, directed=False)
    if n_components > 1:
        apart = [m for m, label in zip(models, labels, strict=True) if label != labels[index[anchor]]]
        raise ValueError(
            f"the comparison graph is not connected ({n_components} components); "
            f"not linked to {anchor!r} by any chain of battles: {', '.join(apart)}"
        )
    met = sorted({(min(a, b), max(a, b)) for a, b in zip(idx_a.tolist(), idx_b.tolist(), strict=True)})
    return _Data(
        models=models,
        idx_a=idx_a,
        idx_b=idx_b,
        scores=np.array([b.score_b for b in battles], dtype=np.float64),
        counts=np.array([b.count for b in battles], dtype=np.int64),
        anchor=index[anchor],
        prior_a=np.array([a for a, _ in met], dtype=np.int64),
        prior_b=np.array([b for _, b in met], dtype=np.int64),
    )


def _fit_theta(
    data: _Data, counts: IntArray, l2: float, prior_ties: float = 0.0, start: FloatArray | None = None
) -> FloatArray:
    """Penalized ML strengths (logit scale, anchor = 0) for the given per-row counts, optionally warm-started.

    The prior's virtual ties are extra rows (score 0.5, weight ``prior_ties``) for every two models that met;
    they are part of the model, not data, so a bootstrap keeps them in every resample.
    """
    n_models = len(data.models)
    free = np.array([i for i in range(n_models) if i != data.anchor], dtype=np.int64)
    if prior_ties > 0:
        data = _Data(
            models=data.models,
            idx_a=np.r_[data.idx_a, data.prior_a],
            idx_b=np.r_[data.idx_b, data.prior_b],
            scores=np.r_[data.scores, np.full(data.prior_a.size, 0.5)],
            counts=data.counts,
            anchor=data.anchor,
            prior_a=data.prior_a,
            prior_b=data.prior_b,
        )
    weights = np.r_[counts.astype(np.float64), np.full(data.idx_a.size - counts.size, prior_ties)]
    total = float(weights.sum())
    # Dividing by the number of pairs changes nothing about the minimizer but keeps gradients O(1).
    norm = 1.0 / total if total > 0 else 1.0

    def objective(x: FloatArray) -> tuple[float, FloatArray]:
        theta = np.zeros(n_models)
        theta[free] = x
        d = theta[data.idx_b] - theta[data.idx_a]
        # BCE with target s on logit d: s * softplus(-d) + (1 - s) * softplus(d) = softplus(d) - s * d.
        loss = float(np.sum(weights * (np.logaddexp(0.0, d) - data.scores * d))) + l2 * float(x @ x)
        residual = weights * (expit(d) - data.scores)
        grad = np.bincount(data.idx_b, residual, n_models) - np.bincount(data.idx_a, residual, n_models)
        return loss * norm, (grad[free] + 2.0 * l2 * x) * norm

    result = minimize(
        objective,
        np.zeros(free.size) if start is None else start[free],
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 10_000, "ftol": 1e-15, "gtol": 1e-10},
    )
    theta = np.zeros(n_models)
    theta[free] = result.x
    return theta


def _to_elo(theta: FloatArray) -> FloatArray:
    """Logit-scale strengths to Elo-like ratings."""
    return ELO_SCALE * theta + ELO_BASE


def fit_bradley_terry(
    battles: Sequence[Battle], anchor: str | None = None, l2: float = 1e-6, prior_ties: float = DEFAULT_PRIOR_TIES
) -> dict[str, float]:
    """Bradley–Terry ratings (posterior mode under the virtual-tie prior), Elo-scaled: ``400 / ln(10) * theta + 1000``.

    ``anchor`` (default: the alphabetically first model) is fixed at 1000. ``prior_ties`` virtual ties per pair of
    models that met keep an undefeated model finite and modest; 0 gives the maximum-likelihood fit. ``l2`` adds
    ``l2 * sum(theta**2)`` (numerical safety only). Raises ValueError for fewer than 2 models, invalid battles, an
    unknown anchor or a comparison graph that is not connected.
    """
    if prior_ties < 0:
        raise ValueError(f"prior_ties must be >= 0, got {prior_ties}")
    data = _prepare(battles, anchor)
    ratings = _to_elo(_fit_theta(data, data.counts, l2, prior_ties))
    return {m: float(r) for m, r in zip(data.models, ratings, strict=True)}


def bootstrap_bradley_terry(
    battles: Sequence[Battle],
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    anchor: str | None = None,
    l2: float = 1e-6,
    prior_ties: float = DEFAULT_PRIOR_TIES,
) -> dict[str, tuple[float, float, float]]:
    """Ratings with percentile bootstrap CIs: model -> (estimate, ci_low, ci_high), Elo-scaled as in the fit.

    Resamples individual pairs (a Battle is ``count`` identical pairs): each resample draws the row counts from a
    multinomial over the rows with probabilities count / total, and is refit. A model that drops out of a resample,
    or a component cut off from the anchor, is held near 1000 by ``l2``; this only happens with very sparse data.
    Seeded, so the same input and seed give the same intervals.
    """
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if prior_ties < 0:
        raise ValueError(f"prior_ties must be >= 0, got {prior_ties}")
    data = _prepare(battles, anchor)
    theta = _fit_theta(data, data.counts, l2, prior_ties)
    estimate = _to_elo(theta)
    total = int(data.counts.sum())
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(total, data.counts / total, size=n_resamples)
    samples = np.array([_to_elo(_fit_theta(data, row, l2, prior_ties, theta)) for row in draws])
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(samples, [alpha, 1.0 - alpha], axis=0)
    return {m: (float(e), float(lo), float(hi)) for m, e, lo, hi in zip(data.models, estimate, low, high, strict=True)}


def unbounded_models(battles: Sequence[Battle], anchor: str | None = None) -> set[str]:
    """Models whose maximum-likelihood rating is infinite relative to the anchor.

    The MLE exists iff the "scored against" graph (an edge a -> b when b took any points from a) is strongly
    connected (Zermelo; Ford 1957). Models outside the anchor's strongly connected component drift to +/- infinity
    without the prior, e.g. a model that never lost or never won.
    """
    data = _prepare(battles, anchor)
    n = len(data.models)
    took = data.scores > 0  # b took points from a
    gave = data.scores < 1  # a took points from b
    rows = np.r_[data.idx_a[took], data.idx_b[gave]]
    cols = np.r_[data.idx_b[took], data.idx_a[gave]]
    graph = coo_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=True, connection="strong")
    return {m for m, label in zip(data.models, labels, strict=True) if label != labels[data.anchor]}

"""Agreement between judges on pairwise verdicts: raw agreement, Cohen's κ and Fleiss' κ (pure functions, no I/O)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from statsmodels.stats import inter_rater

VERDICTS = ("base", "tie", "ft")
TIE = "tie"

# Expected agreement this close to 1 leaves κ = (po - pe) / (1 - pe) undefined.
_UNDEFINED_EPS = 1e-12


def verdict_of_score(score: float) -> str:
    """Verdict of a pair score (1 = FT better, 0 = Base better): "ft" if > 0.5, "base" if < 0.5, else "tie"."""
    if score > 0.5:
        return "ft"
    if score < 0.5:
        return "base"
    return TIE


def _codes(labels: Sequence[str], categories: Sequence[str]) -> npt.NDArray[np.int64]:
    """Labels as indices into categories; raise ValueError on an unknown label."""
    index = {c: i for i, c in enumerate(categories)}
    unknown = sorted({label for label in labels if label not in index})
    if unknown:
        raise ValueError(f"labels not among the categories {list(categories)}: {unknown}")
    return np.array([index[label] for label in labels], dtype=np.int64)


def confusion_matrix(a: Sequence[str], b: Sequence[str], categories: Sequence[str] = VERDICTS) -> npt.NDArray[np.int64]:
    """Counts of (a, b) label pairs: rows are a's labels, columns b's, both in the order of ``categories``."""
    if len(a) != len(b):
        raise ValueError(f"the two raters label different numbers of items: {len(a)} and {len(b)}")
    k = len(categories)
    flat = _codes(a, categories) * k + _codes(b, categories)
    return np.bincount(flat, minlength=k * k).astype(np.int64).reshape(k, k)


@dataclass(frozen=True)
class Agreement:
    """Agreement of two raters over the same items; κ is None where undefined."""

    n: int
    agreement: float
    agreement_without_ties: float | None
    n_without_ties: int
    cohen_kappa: float | None
    confusion: list[list[int]]
    categories: list[str]

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)


def _kappa_or_none(value: float) -> float | None:
    """A κ from statsmodels as a float, or None if it is not finite."""
    return float(value) if math.isfinite(value) else None


def pairwise_agreement(a: Sequence[str], b: Sequence[str], categories: Sequence[str] = VERDICTS) -> Agreement:
    """Raw agreement, agreement on items where neither says "tie", and Cohen's κ (statsmodels) of two raters.

    ``agreement`` is NaN for no items. ``cohen_kappa`` is None when undefined (no items, or expected agreement 1,
    e.g. both raters always give the same single label).
    """
    table = confusion_matrix(a, b, categories)
    n = int(table.sum())
    agreement = float(np.trace(table)) / n if n else float("nan")
    decisive = [i for i, c in enumerate(categories) if c != TIE]
    sub = table[np.ix_(decisive, decisive)]
    n_without_ties = int(sub.sum())
    without_ties = float(np.trace(sub)) / n_without_ties if n_without_ties else None
    kappa: float | None = None
    if n:
        expected = float(table.sum(axis=1) @ table.sum(axis=0)) / n**2
        if 1.0 - expected > _UNDEFINED_EPS:
            kappa = _kappa_or_none(float(inter_rater.cohens_kappa(table, return_results=False)))
    return Agreement(
        n=n,
        agreement=agreement,
        agreement_without_ties=without_ties,
        n_without_ties=n_without_ties,
        cohen_kappa=kappa,
        confusion=table.tolist(),
        categories=list(categories),
    )


def fleiss_kappa(labels_per_item: Sequence[Sequence[str]], categories: Sequence[str] = VERDICTS) -> float | None:
    """Fleiss' κ (statsmodels) for several raters; every item needs the same number (>= 2) of ratings.

    Meant for 3+ raters (with 2 it is Scott's π). Returns None when undefined: no items, or all ratings in a
    single category (expected agreement 1). Raises ValueError for unequal or too few ratings per item.
    """
    if not labels_per_item:
        return None
    sizes = {len(item) for item in labels_per_item}
    if len(sizes) > 1:
        raise ValueError(f"every item needs the same number of ratings, got {sorted(sizes)}")
    n_raters = sizes.pop()
    if n_raters < 2:
        raise ValueError(f"Fleiss' κ needs at least 2 ratings per item, got {n_raters}")
    codes = np.array([_codes(item, categories) for item in labels_per_item], dtype=np.int64)
    table, _ = inter_rater.aggregate_raters(codes, n_cat=len(categories))
    shares = table.sum(axis=0) / table.sum()
    if 1.0 - float(shares @ shares) <= _UNDEFINED_EPS:
        return None
    return _kappa_or_none(float(inter_rater.fleiss_kappa(table, method="fleiss")))

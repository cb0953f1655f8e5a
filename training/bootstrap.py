"""Bootstrap 95 % intervals for the comparison's headline metrics (docs/methods.md §3.3).

The compared customers are resampled with replacement; every metric is
recomputed on each resample, vectorised over resamples (ranks for ROC-AUC and
Spearman, bincounts for kappa). Differences between two models are *paired*:
both are evaluated on the same resample, so the interval of the difference
measures how the models differ on the same customers.

Every table has the columns ``value`` (the metric on all customers), ``low``
and ``high`` (the percentile interval).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

N_RESAMPLES = 200
LEVEL = 0.95
TOP_SHARE = 0.1
"""The share of highest-scored customers behind the top-decile lift."""
CHURN_METRICS = ("roc_auc", "brier", "top_decile_lift")
HIGHER_IS_BETTER = {"roc_auc": True, "brier": False, "top_decile_lift": True}


def resample_indices(n: int, n_resamples: int = N_RESAMPLES, seed: int = 0) -> np.ndarray:
    """(n_resamples, n) customer positions drawn with replacement (seeded)."""
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def _row(value: float, samples: np.ndarray, level: float) -> dict[str, float]:
    tail = 100 * (1 - level) / 2
    low, high = (
        np.nanpercentile(samples, [tail, 100 - tail])
        if np.isfinite(samples).any()
        else (np.nan, np.nan)
    )
    return {"value": float(value), "low": float(low), "high": float(high)}


def _auc(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """ROC-AUC per row of (resamples, n) labels and scores (Mann–Whitney, mid-ranks)."""
    ranks = rankdata(p, axis=1)
    positives = y.sum(axis=1)
    negatives = y.shape[1] - positives
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((ranks * y).sum(axis=1) - positives * (positives + 1) / 2) / (positives * negatives)


def _top_lift(y: np.ndarray, p: np.ndarray, share: float = TOP_SHARE) -> np.ndarray:
    k = max(int(np.ceil(share * y.shape[1])), 1)
    top = np.argsort(-p, axis=1, kind="stable")[:, :k]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.take_along_axis(y, top, axis=1).mean(axis=1) / y.mean(axis=1)


def churn_metric_samples(y: np.ndarray, p: np.ndarray, idx: np.ndarray) -> dict[str, np.ndarray]:
    """Each churn metric of one score on every resample (``idx`` from :func:`resample_indices`)."""
    yb, pb = np.asarray(y, dtype=float)[idx], np.asarray(p, dtype=float)[idx]
    return {
        "roc_auc": _auc(yb, pb),
        "brier": ((pb - yb) ** 2).mean(axis=1),
        "top_decile_lift": _top_lift(yb, pb),
    }


@dataclass(frozen=True)
class ChurnIntervals:
    """Intervals of each model's churn metrics and of the paired differences between models.

    ``metrics``: index (model, metric); ``differences``: index (model, versus,
    metric), the value being ``metric(model) − metric(versus)`` on the same
    customers, for every pair of models in both orders.
    """

    metrics: pd.DataFrame
    differences: pd.DataFrame


def churn_intervals(
    y: np.ndarray,
    scores: dict[str, np.ndarray],
    *,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
) -> ChurnIntervals:
    """Bootstrap intervals of ROC-AUC, Brier score and top-decile lift, per model and per pair."""
    y = np.asarray(y, dtype=float)
    idx = resample_indices(len(y), n_resamples, seed)
    full = np.arange(len(y))[None, :]
    point = {m: churn_metric_samples(y, p, full) for m, p in scores.items()}
    samples = {m: churn_metric_samples(y, p, idx) for m, p in scores.items()}
    metrics = {
        (m, k): _row(point[m][k][0], samples[m][k], level) for m in scores for k in CHURN_METRICS
    }
    differences = {}
    for a, b in combinations(scores, 2):
        for k in CHURN_METRICS:
            d = _row(point[a][k][0] - point[b][k][0], samples[a][k] - samples[b][k], level)
            differences[(a, b, k)] = d
            differences[(b, a, k)] = {"value": -d["value"], "low": -d["high"], "high": -d["low"]}
    return ChurnIntervals(
        pd.DataFrame(metrics).T.rename_axis(["model", "metric"]),
        pd.DataFrame(differences).T.rename_axis(["model", "versus", "metric"]),
    )


def _kappa(codes: np.ndarray, n_classes: int) -> tuple[float, float]:
    """Accuracy and Cohen's kappa from pair codes ``fuzzy * k + network`` (docs/methods.md §3.1)."""
    matrix = np.bincount(codes, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    n = matrix.sum()
    observed = np.trace(matrix) / n
    expected = (matrix.sum(axis=0) * matrix.sum(axis=1)).sum() / n**2
    kappa = (observed - expected) / (1 - expected) if expected < 1 else np.nan
    return float(observed), float(kappa)


def agreement_intervals(
    fuzzy: np.ndarray,
    network: np.ndarray,
    *,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
) -> pd.DataFrame:
    """Intervals of segment accuracy and Cohen's kappa between two segmentations."""
    labels, inverse = np.unique(
        np.concatenate([np.asarray(fuzzy), np.asarray(network)]), return_inverse=True
    )
    k, n = len(labels), len(fuzzy)
    codes = inverse[:n] * k + inverse[n:]
    idx = resample_indices(n, n_resamples, seed)
    samples = np.array([_kappa(codes[row], k) for row in idx]).reshape(-1, 2)
    accuracy, kappa = _kappa(codes, k)
    return pd.DataFrame(
        {
            "segment_accuracy": _row(accuracy, samples[:, 0], level),
            "segment_kappa": _row(kappa, samples[:, 1], level),
        }
    ).T


def spearman_intervals(
    candidates: pd.DataFrame,
    future_spend: pd.Series,
    *,
    reference: str = "pv_score",
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
) -> pd.DataFrame:
    """Intervals of each candidate's Spearman ρ with realised future spend, and of its lead.

    Columns ``value``, ``low``, ``high`` (ρ) and, when ``reference`` is a
    candidate, ``lead``, ``lead_low``, ``lead_high``: ρ(candidate) −
    ρ(reference) on the same resamples.
    """
    spend = future_spend.loc[candidates.index].to_numpy(dtype=float)
    idx = resample_indices(len(spend), n_resamples, seed)
    full = np.arange(len(spend))[None, :]

    def rho(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
        a, b = rankdata(values[rows], axis=1), rankdata(spend[rows], axis=1)
        a -= a.mean(axis=1, keepdims=True)
        b -= b.mean(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))

    point, samples = {}, {}
    for name, values in candidates.items():
        v = values.to_numpy(dtype=float)
        point[name], samples[name] = rho(v, full)[0], rho(v, idx)
    rows = {name: _row(point[name], samples[name], level) for name in candidates}
    if reference in point:
        for name in candidates:
            lead = _row(point[name] - point[reference], samples[name] - samples[reference], level)
            rows[name].update(lead=lead["value"], lead_low=lead["low"], lead_high=lead["high"])
    return pd.DataFrame(rows).T.rename_axis("score")

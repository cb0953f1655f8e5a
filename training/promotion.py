"""The promotion gate: a challenger takes the ``champion`` alias only on fair, recorded evidence.

Fair: both models are scored on the same customers, which neither trained,
tuned nor early-stopped on: the dataset's fixed evaluation split
(:mod:`~valuecube.training.evaluation_split`) of the file the challenger was
trained on, found from its lineage tags, or an explicit ``eval_data`` file.
Each model's logged split (:mod:`~valuecube.training.lineage`) is checked: if
any evaluation customer was in a model's training or validation data the gate
refuses to evaluate (:class:`LeakageError`).

The checks (one row each in the evidence table):

* paired bootstrap of the churn ROC-AUC difference (challenger − champion) and
  the Brier difference (champion − challenger), resampling the same customers
  for both models: the lower end of the interval must be ≥ −margin
  (non-inferiority at the margin);
* absolute checks, which the first promotion also passes: ROC-AUC ≥
  ``min_auc``, expected calibration error ≤ ``max_ece``, segment agreement with
  the fuzzy cube ≥ ``segment_accuracy_floor`` (and ≥ the champion's −
  ``segment_margin``).

This module is the pure part (metrics and checks on arrays);
:mod:`~valuecube.training.promotion_job` loads the models and customers,
moves the alias and records the decision in MLflow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import rankdata


@dataclass(frozen=True)
class GatePolicy:
    """Margins and floors of the gate (see the module doc)."""

    auc_margin: float = 0.01
    brier_margin: float = 0.005
    min_auc: float = 0.6
    max_ece: float = 0.1
    segment_accuracy_floor: float = 0.5
    segment_margin: float = 0.05
    confidence: float = 0.95
    n_boot: int = 1000
    seed: int = 0


# ------------------------------------------------------------------ metrics


def bootstrap_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    """``n_boot`` resamples (with replacement) of ``n`` positions, one per row."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def resampled_auc(y: np.ndarray, p: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """ROC-AUC on each resample (rows of ``idx``), vectorised by the rank-sum identity.

    AUC = (Σ ranks of positives − n₁(n₁+1)/2) / (n₁·n₀), average ranks for ties
    (the Mann–Whitney statistic). Resamples with one class only give NaN.
    """
    ys, ranks = y[idx], rankdata(p[idx], axis=1)
    n1 = ys.sum(axis=1)
    n0 = ys.shape[1] - n1
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((ranks * ys).sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def resampled_brier(y: np.ndarray, p: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Brier score on each resample."""
    return ((p[idx] - y[idx]) ** 2).mean(axis=1)


def interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval of bootstrap values (NaN replicates dropped)."""
    tail = (1 - confidence) / 2 * 100
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_intervals(
    y: np.ndarray, scores: dict[str, np.ndarray], *, n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """ROC-AUC and Brier of each score with 95 % bootstrap intervals (same resamples for all)."""
    y = np.asarray(y, dtype=float)
    idx = bootstrap_indices(len(y), n_boot, seed)
    full = np.arange(len(y))[None, :]
    rows = {}
    for name, p in scores.items():
        p = np.asarray(p, dtype=float)
        auc, brier = resampled_auc(y, p, idx), resampled_brier(y, p, idx)
        rows[name] = {
            "roc_auc": float(resampled_auc(y, p, full)[0]),
            **dict(zip(("roc_auc_low", "roc_auc_high"), interval(auc, 0.95), strict=True)),
            "brier": float(resampled_brier(y, p, full)[0]),
            **dict(zip(("brier_low", "brier_high"), interval(brier, 0.95), strict=True)),
        }
    return pd.DataFrame(rows).T.rename_axis("model")


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Σ_b (n_b / n)·|mean(y)_b − mean(p)_b| over equal-width probability bins."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    b = np.minimum((p * bins).astype(int), bins - 1)
    n = np.bincount(b, minlength=bins)
    gap = np.abs(np.bincount(b, y, bins) - np.bincount(b, p, bins))
    return float(gap.sum() / max(n.sum(), 1))


# ------------------------------------------------------------------ the gate


@dataclass(frozen=True)
class Evaluation:
    """One model's predictions on the evaluation customers (aligned by customer id)."""

    churn: np.ndarray
    probability: np.ndarray
    segment: np.ndarray
    segment_model: np.ndarray

    @property
    def segment_accuracy(self) -> float:
        """Share of customers where the network's segment equals the fuzzy cube's."""
        return float(np.mean(self.segment == self.segment_model))


@dataclass(frozen=True)
class GateDecision:
    """The evidence table (one row per check) and the verdict."""

    table: pd.DataFrame
    n_customers: int
    policy: GatePolicy = field(default_factory=GatePolicy)

    @property
    def passed(self) -> bool:
        """Every check passed."""
        return bool(self.table["pass"].all())


def _row(challenger, champion, delta, low, high, bound: str, ok: bool) -> dict:
    return dict(
        challenger=challenger,
        champion=champion,
        **{"Δ": delta},
        low=low,
        high=high,
        bound=bound,
        **{"pass": bool(ok)},
    )


def gate(
    challenger: Evaluation, champion: Evaluation | None, policy: GatePolicy | None = None
) -> GateDecision:
    """Run the checks of the module doc; ``champion=None``: a first promotion (absolute checks)."""
    policy = policy or GatePolicy()
    y, p = challenger.churn.astype(float), challenger.probability
    full = np.arange(len(y))[None, :]
    auc = float(resampled_auc(y, p, full)[0])
    ece = expected_calibration_error(y, p)
    seg = challenger.segment_accuracy
    nan = np.nan
    rows = {}
    if champion is not None:
        q = champion.probability
        idx = bootstrap_indices(len(y), policy.n_boot, policy.seed)
        d_auc = resampled_auc(y, p, idx) - resampled_auc(y, q, idx)
        d_brier = resampled_brier(y, q, idx) - resampled_brier(y, p, idx)
        champ_auc = float(resampled_auc(y, q, full)[0])
        brier_p, brier_q = float(np.mean((p - y) ** 2)), float(np.mean((q - y) ** 2))
        lo, hi = interval(d_auc, policy.confidence)
        rows["Δ churn roc_auc"] = _row(
            auc,
            champ_auc,
            auc - champ_auc,
            lo,
            hi,
            f"low ≥ −{policy.auc_margin}",
            lo >= -policy.auc_margin,
        )
        lo, hi = interval(d_brier, policy.confidence)
        rows["Δ churn brier (lower is better)"] = _row(
            brier_p,
            brier_q,
            brier_q - brier_p,
            lo,
            hi,
            f"low ≥ −{policy.brier_margin}",
            lo >= -policy.brier_margin,
        )
    rows["churn roc_auc"] = _row(
        auc, nan, nan, nan, nan, f"≥ {policy.min_auc}", auc >= policy.min_auc
    )
    rows["calibration ECE"] = _row(
        ece,
        nan if champion is None else expected_calibration_error(y, champion.probability),
        nan,
        nan,
        nan,
        f"≤ {policy.max_ece}",
        ece <= policy.max_ece,
    )
    floor = policy.segment_accuracy_floor
    if champion is not None:
        floor = max(floor, champion.segment_accuracy - policy.segment_margin)
    rows["segment accuracy"] = _row(
        seg,
        nan if champion is None else champion.segment_accuracy,
        nan,
        nan,
        nan,
        f"≥ {floor:.3f}",
        seg >= floor,
    )
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("check")
    return GateDecision(table, len(y), policy)

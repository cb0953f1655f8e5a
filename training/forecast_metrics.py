"""Metrics of the three forecast targets, one table per target (docs/forecasting.md).

* segment after the horizon: accuracy and macro-F1;
* spend in the horizon: Spearman rank correlation, normalised Gini, the
  share of realised spend captured by the top decile of predictions, and the
  mean absolute error (only for predictions in money: a score such as the PV
  score ranks customers but is not a spend, so its MAE is left empty);
* churn in the horizon: ROC-AUC, PR-AUC and the Brier score
  (:func:`training.evaluate.churn_metrics`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import accuracy_score, f1_score

from valuecube.training.evaluate import churn_metrics

SEGMENT_METRICS = ("accuracy", "macro_f1")
SPEND_METRICS = ("spearman", "gini", "top_decile_share", "mae")
CHURN_METRICS = ("roc_auc", "pr_auc", "brier")
TARGETS = ("segment_next", "future_spend", "churn")


def segment_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 of predicted segments."""
    return {
        "accuracy": float(accuracy_score(actual, predicted)),
        "macro_f1": float(f1_score(actual, predicted, average="macro", zero_division=0)),
    }


def _gini(actual: np.ndarray, order: np.ndarray) -> float:
    """Gini of ``actual`` sorted by ``order``: area between its Lorenz curve and the diagonal."""
    n = len(actual)
    captured = np.cumsum(actual[order]) / actual.sum()
    return float(captured.sum() / n - (n + 1) / (2 * n))


def normalised_gini(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Gini of the realised spend ranked by the prediction, over the Gini of the perfect ranking.

    1 for a perfect ranking, 0 for a random one (the model-lift measure of
    Wang, Liu & Miao 2019). Ties in ``predicted`` keep the input order.
    """
    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    if actual.sum() <= 0:
        return float("nan")
    by_model = np.argsort(-predicted, kind="stable")
    by_truth = np.argsort(-actual, kind="stable")
    return _gini(actual, by_model) / _gini(actual, by_truth)


def top_decile_share(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Share of the total realised spend made by the 10 % of customers predicted highest."""
    actual = np.asarray(actual, dtype=float)
    k = max(1, int(np.ceil(0.1 * len(actual))))
    top = np.argsort(-np.asarray(predicted, dtype=float), kind="stable")[:k]
    total = actual.sum()
    return float(actual[top].sum() / total) if total > 0 else float("nan")


def spend_metrics(actual: np.ndarray, predicted: np.ndarray, *, money: bool = True) -> dict:
    """Spearman, normalised Gini, top-decile share and (for money predictions) MAE."""
    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    return {
        "spearman": float(spearmanr(actual, predicted).statistic),
        "gini": normalised_gini(actual, predicted),
        "top_decile_share": top_decile_share(actual, predicted),
        "mae": float(np.abs(actual - predicted).mean()) if money else float("nan"),
    }


def segment_table(actual: np.ndarray, predictions: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """One row of segment metrics per model."""
    rows = {name: segment_metrics(actual, p) for name, p in predictions.items()}
    return pd.DataFrame(rows).T.rename_axis("model")[list(SEGMENT_METRICS)]


def spend_table(
    actual: np.ndarray, predictions: Mapping[str, np.ndarray], scores: Mapping[str, np.ndarray]
) -> pd.DataFrame:
    """One row of spend metrics per model: ``predictions`` in money, ``scores`` ranks only."""
    rows = {name: spend_metrics(actual, p) for name, p in predictions.items()}
    rows |= {name: spend_metrics(actual, s, money=False) for name, s in scores.items()}
    return pd.DataFrame(rows).T.rename_axis("model")[list(SPEND_METRICS)]


def churn_table(actual: np.ndarray, probabilities: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """One row of churn metrics per model."""
    rows = {name: churn_metrics(actual, p) for name, p in probabilities.items()}
    return pd.DataFrame(rows).T.rename_axis("model")[list(CHURN_METRICS)]


def table_metrics(tables: Mapping[str, pd.DataFrame]) -> dict[str, float]:
    """Flat MLflow metrics ``test_<target>_<metric>_<model>`` (NaN cells skipped)."""
    out = {}
    for target, table in tables.items():
        for model, row in table.iterrows():
            for metric, value in row.items():
                if np.isfinite(value):
                    out[f"test_{target}_{metric}_{model}"] = float(value)
    return out

"""Metrics and plots for churn scores and segment agreement (scikit-learn's metrics, matplotlib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    RocCurveDisplay,
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    cohen_kappa_score,
    f1_score,
    log_loss,
    roc_auc_score,
)

from valuecube.models.segments import SEGMENT_CODES


def _pyplot():
    """matplotlib's pyplot on the Agg backend, imported on first use.

    Importing it costs about a second; ``valuecube score`` imports this module
    for its metrics (monitoring) and never plots.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def churn_metrics(y_true: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    """ROC-AUC, PR-AUC (average precision), Brier score and log loss of churn probabilities."""
    p = np.clip(np.asarray(probability, dtype=float), 1e-7, 1 - 1e-7)
    return {
        "roc_auc": float(roc_auc_score(y_true, p)),
        "pr_auc": float(average_precision_score(y_true, p)),
        "brier": float(brier_score_loss(y_true, p)),
        "log_loss": float(log_loss(y_true, p, labels=[0, 1])),
    }


def segment_agreement(reference: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-F1 and Cohen's kappa of predicted segments against reference ones."""
    return {
        "segment_accuracy": float(accuracy_score(reference, predicted)),
        "segment_macro_f1": float(f1_score(reference, predicted, average="macro", zero_division=0)),
        "segment_kappa": float(cohen_kappa_score(reference, predicted)),
    }


def plot_roc(
    y_true: np.ndarray, scores: dict[str, np.ndarray], path: Path, title: str = "Churn ROC (test)"
) -> Path:
    """ROC curves of several churn scores on one axis."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, p in scores.items():
        RocCurveDisplay.from_predictions(y_true, p, name=name, ax=ax)
    ax.plot([0, 1], [0, 1], ls=":", c="grey")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_confusion(reference: np.ndarray, predicted: np.ndarray, path: Path, title: str) -> Path:
    """Confusion matrix over the eight segments (rows: reference, columns: predicted)."""
    labels = [c for c in SEGMENT_CODES if c in set(reference) | set(predicted)]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 6))
    ConfusionMatrixDisplay.from_predictions(
        reference, predicted, labels=labels, ax=ax, xticks_rotation=45, colorbar=False
    )
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def comparison_table(y_true: np.ndarray, scores: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row of churn metrics per model."""
    return pd.DataFrame(
        {name: churn_metrics(y_true, p) for name, p in scores.items()}
    ).T.rename_axis("model")

"""Numbers for people: percentages, intervals, differences, currency, dates.

One place for how the report, its verdict and the command line print a
number, so the same metric reads the same everywhere.
"""

from __future__ import annotations

import math

MODEL_LABELS = {
    "bp_network": "BP network",
    "logistic_regression": "logistic regression",
    "lightgbm": "LightGBM",
    "fuzzy_baseline": "fuzzy churn score",
}
METRIC_LABELS = {
    "roc_auc": "ROC-AUC",
    "brier": "Brier score",
    "top_decile_lift": "top-decile lift",
    "segment_accuracy": "segment agreement",
    "segment_kappa": "Cohen's kappa",
}
PERCENT_METRICS = frozenset({"segment_accuracy"})


def model_label(name: str) -> str:
    """The reader's name of a model (``bp_network`` → "BP network")."""
    return MODEL_LABELS.get(name, name)


def pct(share: float, digits: int = 1) -> str:
    """A share as a percentage: 0.2431 → "24.3 %"; NaN → "–"."""
    return "–" if share is None or math.isnan(share) else f"{100 * share:.{digits}f} %"


def number(value: float, digits: int = 3) -> str:
    """A value to at most ``digits`` decimals, no trailing zeros (20.750 → "20.75"); NaN → "–"."""
    if value is None or math.isnan(value):
        return "–"
    text = f"{value:,.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def metric(name: str, value: float) -> str:
    """A metric in its unit: agreement as a percentage, lift as a multiple, others to 3 decimals."""
    if name in PERCENT_METRICS:
        return pct(value)
    if name == "top_decile_lift":
        return "–" if math.isnan(value) else f"{value:.2f}×"
    return "–" if math.isnan(value) else f"{value:.3f}"


def interval(name: str, low: float, high: float) -> str:
    """A 95 % interval in the metric's unit: "0.851–0.899", "95.1–97.6 %"."""
    if math.isnan(low) or math.isnan(high):
        return "–"
    if name in PERCENT_METRICS:
        return f"{100 * low:.1f}–{100 * high:.1f} %"
    if name == "top_decile_lift":
        return f"{low:.2f}–{high:.2f}×"
    return f"{low:.3f}–{high:.3f}"


def with_interval(name: str, value: float, low: float, high: float) -> str:
    """A metric and its interval: "0.876 (95 % CI 0.851–0.899)"."""
    return f"{metric(name, value)} (95 % CI {interval(name, low, high)})"


def difference(value: float, low: float, high: float, digits: int = 3) -> str:
    """A signed difference with its interval: "+0.004 (−0.003 to +0.012)"."""

    def signed(x: float) -> str:
        return f"{x:+.{digits}f}".replace("-", "−")

    return f"{signed(value)} (95 % CI {signed(low)} to {signed(high)})"


def money(amount: float, currency: str = "$") -> str:
    """An amount with its currency: 81.2 → "$81.20"; NaN → "–"."""
    return "–" if amount is None or math.isnan(amount) else f"{currency}{amount:,.2f}"

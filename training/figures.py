"""The comparison report's charts (matplotlib), and each as a base64 PNG for embedding.

One colour per thing on every chart: each segment keeps its colour
(:data:`SEGMENT_COLOURS`, a pastel palette) and each model its colour and
line style (:data:`MODEL_STYLES`, saturated colours, so a model is never
mistaken for a segment). The two classifiers of the cube take their model's
style: the fuzzy rule that of the fuzzy churn score, the network its own.
Every figure is drawn at the size it is shown, so the page never stretches it.
"""

from __future__ import annotations

import base64
import io
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score, roc_curve

from valuecube.models.segments import BY_CODE, SEGMENT_CODES
from valuecube.training.compare import (
    CLASSIFIERS,
    DIMENSION_LABELS,
    ScoredCustomers,
    gain_curve,
)
from valuecube.training.formatting import model_label
from valuecube.training.peers import FUZZY, NETWORK

DPI = 96
"""Pixels per inch of the page: a figure of w × h inches is shown at 96·w × 96·h CSS pixels."""
SCALE = 2
"""PNGs are rendered at twice the displayed resolution (sharp on high-density screens)."""
SEGMENT_COLOURS = dict(zip(SEGMENT_CODES, plt.get_cmap("Set2").colors[:8], strict=True))


class Style(NamedTuple):
    """How one model is drawn."""

    colour: str
    linestyle: str
    marker: str


MODEL_STYLES = {
    NETWORK: Style("#1b2a6b", "-", "o"),
    "logistic_regression": Style("#b5179e", "--", "s"),
    "lightgbm": Style("#b85c00", "-.", "^"),
    FUZZY: Style("#2b7a0b", ":", "D"),
}
CLASSIFIER_STYLES = {"fuzzy": MODEL_STYLES[FUZZY], "network": MODEL_STYLES[NETWORK]}
CLASSIFIER_LABELS = {"fuzzy": "fuzzy rule", "network": "BP network"}
REFERENCE = "#8a8f98"
NEUTRAL, NEGATIVE = "#5c6b7a", "#9b2226"
"""Bars that belong to no model or segment: positive and negative values."""
MAX_POINTS = 2500
"""Scatter plots draw at most this many customers (a seeded sample) to keep the file small."""


def _style(name: str) -> Style:
    return MODEL_STYLES.get(name, Style("#444444", "-", "o"))


def figure_uri(fig: Figure) -> str:
    """The figure as a ``data:image/png;base64`` URI (the figure is closed)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI * SCALE)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def display_size(fig: Figure) -> tuple[int, int]:
    """The figure's width and height in CSS pixels (its natural size on the page)."""
    w, h = fig.get_size_inches()
    return round(w * DPI), round(h * DPI)


def _sample(table: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    return table.sample(MAX_POINTS, random_state=seed) if len(table) > MAX_POINTS else table


def segment_legend(fig: Figure, codes: list[str]) -> None:
    """A legend of segment colours along the bottom of ``fig``."""
    handles = [
        plt.Line2D([], [], ls="", marker="o", color=SEGMENT_COLOURS[c], label=BY_CODE[c].name)
        for c in codes
    ]
    fig.legend(handles=handles, loc="lower center", ncol=4, frameon=False, fontsize=9)


def cube_projections(scored: ScoredCustomers, seed: int = 0) -> Figure:
    """Customers by each pair of VA scores, coloured by fuzzy (top) and network (bottom) segment."""
    t = _sample(scored.table, seed)
    fig, axes = plt.subplots(2, 3, figsize=(11.5, 8.2), sharex=True, sharey=True)
    cols = ["cv_score", "pv_score", "ra_score"]
    for r, name in enumerate(CLASSIFIERS):
        colours = [SEGMENT_COLOURS[c] for c in t[f"segment_{name}"]]
        for ax, (i, j) in zip(axes[r], [(0, 1), (0, 2), (1, 2)], strict=True):
            ax.scatter(t[cols[i]], t[cols[j]], c=colours, s=9, alpha=0.8, linewidths=0)
            ax.axvline(scored.threshold, c=REFERENCE, ls=":", lw=1)
            ax.axhline(scored.threshold, c=REFERENCE, ls=":", lw=1)
            ax.set(xlim=(1, 9), ylim=(1, 9), aspect="equal")
            ax.set(xlabel=f"{DIMENSION_LABELS[i]} score", ylabel=f"{DIMENSION_LABELS[j]} score")
            ax.set_title(
                f"{CLASSIFIER_LABELS[name]}'s segments: {DIMENSION_LABELS[j]} against "
                f"{DIMENSION_LABELS[i]}",
                fontsize=10,
            )
    segment_legend(fig, list(SEGMENT_CODES))
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def _paired_bars(ax: plt.Axes, frame: pd.DataFrame, metric: str, xlabel: str) -> None:
    """Horizontal bars per segment, fuzzy rule and network side by side, in their model colours."""
    y = np.arange(len(SEGMENT_CODES))
    for k, name in enumerate(CLASSIFIERS):
        ax.barh(
            y + (0.2 if k else -0.2),
            frame[(metric, name)].fillna(0),
            height=0.4,
            label=CLASSIFIER_LABELS[name],
            color=CLASSIFIER_STYLES[name].colour,
        )
    ax.set_yticks(y, [BY_CODE[c].name for c in SEGMENT_CODES])
    for tick, code in zip(ax.get_yticklabels(), SEGMENT_CODES, strict=True):
        tick.set_bbox({"facecolor": SEGMENT_COLOURS[code], "edgecolor": "none", "pad": 1.5})
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.legend(frameon=False, fontsize=9)


def segment_sizes_figure(segments: pd.DataFrame) -> Figure:
    """Customers per segment under both classifiers."""
    fig, ax = plt.subplots(figsize=(6.2, 4.2))
    _paired_bars(ax, segments, "customers", "customers")
    ax.set_title("customers per segment: fuzzy rule and BP network", fontsize=11)
    fig.tight_layout()
    return fig


def confusion_figure(confusion: pd.DataFrame) -> Figure:
    """Confusion matrix: fuzzy segment (rows) × network segment (columns), counts of customers."""
    fig, ax = plt.subplots(figsize=(7.0, 6.0))
    m = confusion.to_numpy()
    ax.imshow(np.log1p(m), cmap="Blues")
    for (i, j), v in np.ndenumerate(m):
        if v:
            ax.text(
                j,
                i,
                f"{v:,}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if np.log1p(v) > 0.6 * np.log1p(m.max()) else "black",
            )
    labels = [BY_CODE[c].name for c in confusion.index]
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="BP network's segment", ylabel="fuzzy rule's segment")
    ax.set_title("customers: fuzzy segment (rows) × network segment (columns)", fontsize=10)
    fig.tight_layout()
    return fig


def roc_figure(y_true: np.ndarray, scores: dict[str, np.ndarray]) -> Figure:
    """ROC curves of every churn score on the same customers (legend: ROC-AUC to 3 decimals)."""
    fig, ax = plt.subplots(figsize=(5.6, 5.2))
    for name, p in scores.items():
        fpr, tpr, _ = roc_curve(y_true, p)
        s = _style(name)
        auc = roc_auc_score(y_true, p)
        ax.plot(
            fpr,
            tpr,
            color=s.colour,
            ls=s.linestyle,
            lw=1.8,
            label=f"{model_label(name)} (AUC {auc:.3f})",
        )
    ax.plot([0, 1], [0, 1], ls=":", c=REFERENCE, label="random (AUC 0.500)")
    ax.set(
        xlabel="share of non-churners flagged (false positive rate)",
        ylabel="share of churners flagged (true positive rate)",
        aspect="equal",
    )
    ax.set_title("ROC: churners against non-churners flagged", fontsize=11)
    ax.legend(frameon=False, fontsize=9, loc="lower right")
    fig.tight_layout()
    return fig


def gain_figure(y_true: np.ndarray, scores: dict[str, np.ndarray]) -> Figure:
    """Cumulative gain (share of churners reached) and lift against the share contacted."""
    fig, (gain, lift) = plt.subplots(1, 2, figsize=(11, 4.4))
    for name, p in scores.items():
        curve = gain_curve(y_true, p)
        s = _style(name)
        kw = {"color": s.colour, "ls": s.linestyle, "lw": 1.8, "label": model_label(name)}
        gain.plot(100 * curve["targeted"], 100 * curve["captured"], **kw)
        lift.plot(100 * curve["targeted"][5:], curve["lift"][5:], **kw)
    gain.plot([0, 100], [0, 100], ls=":", c=REFERENCE, label="random")
    lift.axhline(1, ls=":", c=REFERENCE)
    gain.set(
        xlabel="customers contacted, highest churn score first (%)", ylabel="churners reached (%)"
    )
    gain.set_title("cumulative gain: churners reached by contacting the top x %", fontsize=10)
    lift.set(
        xlabel="customers contacted, highest churn score first (%)",
        ylabel="churn rate among them ÷ overall churn rate",
    )
    lift.set_title("lift over contacting at random", fontsize=10)
    gain.legend(frameon=False, fontsize=9)
    fig.tight_layout()
    return fig


def calibration_figure(points: pd.DataFrame) -> Figure:
    """Observed churn rate against mean predicted probability, ten equal-count groups per model."""
    fig, ax = plt.subplots(figsize=(5.6, 5.2))
    for name, part in points.groupby("model", sort=False):
        s = _style(str(name))
        ax.plot(
            100 * part["mean_predicted"],
            100 * part["observed_rate"],
            color=s.colour,
            ls=s.linestyle,
            marker=s.marker,
            ms=4,
            lw=1.5,
            label=model_label(str(name)),
        )
    ax.plot([0, 100], [0, 100], ls=":", c=REFERENCE, label="perfectly calibrated")
    ax.set(
        xlabel="mean predicted churn probability (%)",
        ylabel="observed churn rate (%)",
        xlim=(0, 100),
        ylim=(0, 100),
        aspect="equal",
    )
    ax.set_title("calibration: predicted against observed churn", fontsize=11)
    ax.legend(frameon=False, fontsize=9)
    fig.tight_layout()
    return fig


def churn_by_segment_figure(segments: pd.DataFrame) -> Figure:
    """Observed churn rate per segment under both classifiers."""
    fig, ax = plt.subplots(figsize=(6.2, 4.2))
    shown = segments.copy()
    for name in CLASSIFIERS:
        shown[("churn_rate", name)] = 100 * shown[("churn_rate", name)]
    _paired_bars(ax, shown, "churn_rate", "observed churn rate (%)")
    ax.set_title("observed churn rate per segment", fontsize=11)
    fig.tight_layout()
    return fig


def value_figure(
    segments: pd.DataFrame, correlations: pd.DataFrame, spend_label: str = "mean future spend"
) -> Figure:
    """Mean realised future spend per segment (both classifiers) and each PV score's Spearman ρ."""
    fig, (bars, rho) = plt.subplots(1, 2, figsize=(11, 4.4), gridspec_kw={"width_ratios": [1.1, 1]})
    _paired_bars(bars, segments, "mean_future_spend", spend_label)
    bars.set_title("spend realised in the holdout, per segment", fontsize=10)
    c = correlations["spearman"]
    rho.barh(c.index, c, color=[NEUTRAL if v >= 0 else NEGATIVE for v in c])
    rho.axvline(0, c=REFERENCE, lw=0.8)
    rho.invert_yaxis()
    rho.set(xlabel="Spearman ρ with spend realised in the holdout")
    rho.set_title("rank correlation of each PV score with future spend", fontsize=10)
    fig.tight_layout()
    return fig


def importance_figure(importances: pd.DataFrame, top: int = 15) -> Figure:
    """Drop in churn ROC-AUC when each input group is shuffled (mean ± std over repeats)."""
    part = importances.head(top)
    fig, ax = plt.subplots(figsize=(7.2, 0.32 * len(part) + 1.3))
    ax.barh(part.index, part["importance"], xerr=part["std"], color=MODEL_STYLES[NETWORK].colour)
    ax.invert_yaxis()
    ax.set(xlabel="drop in the network's churn ROC-AUC when the input is shuffled")
    ax.set_title("permutation importance: drop in churn ROC-AUC per input", fontsize=11)
    fig.tight_layout()
    return fig

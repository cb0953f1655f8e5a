"""The analysts' comparison report as one self-contained HTML file.

Every figure is a matplotlib PNG embedded as a base64 ``data:`` URI and the
style sheet is inline, so the file opens offline and can be mailed as it is.
The figure functions return matplotlib figures (the notebook shows them
inline); :func:`render_report` lays a :class:`~training.compare.Comparison`
out in the order of the issue: headline, the model's identity, the value cube,
agreement, churn, value, explanations.
"""

from __future__ import annotations

import base64
import html
import io
import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay

from valuecube.models.segments import BY_CODE, SEGMENT_CODES
from valuecube.training.compare import (
    CLASSIFIERS,
    DIMENSION_LABELS,
    Comparison,
    ScoredCustomers,
    calibration,
    gain_curve,
)

SEGMENT_COLOURS = dict(zip(SEGMENT_CODES, plt.get_cmap("tab10").colors[:8], strict=True))
MODEL_LABELS = {
    "bp_network": "BP network",
    "logistic_regression": "logistic regression",
    "lightgbm": "LightGBM",
    "fuzzy_baseline": "fuzzy churn score",
}
HEADLINE_LABELS = {
    "customers": "customers compared",
    "segment_accuracy": "segment agreement (accuracy)",
    "cohen_kappa": "Cohen's kappa",
    **{f"roc_auc_{m}": f"churn ROC-AUC · {label}" for m, label in MODEL_LABELS.items()},
    "spearman_pv_future_spend": "Spearman(PV score, future spend)",
}
MAX_POINTS = 2500
"""Scatter plots draw at most this many customers (a seeded sample) to keep the file small."""
LOCAL_ROWS = 12
"""Per-customer explanations list the inputs with the largest mean absolute effect."""

CSS = """
body{font:14px/1.45 -apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1d2330;margin:0;background:#f5f6f8}
main{max-width:1180px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:24px;margin:0 0 4px} h2{font-size:19px;margin:34px 0 8px;border-bottom:2px solid #e3e6ea;padding-bottom:4px}
h3{font-size:15px;margin:20px 0 6px} .sub{color:#5b6472;margin:0 0 18px}
.kpis{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0 6px}
.kpi{border:1px solid #dde1e6;border-radius:8px;padding:8px 14px;min-width:150px;background:#fafbfc}
.kpi .v{display:block;font-size:22px;font-weight:600} .kpi .k{color:#5b6472;font-size:12px}
table.t{border-collapse:collapse;font-size:12.5px;margin:6px 0 10px}
table.t th,table.t td{border:1px solid #e3e6ea;padding:3px 8px;text-align:right;white-space:nowrap}
table.t th{background:#f3f4f6} .scroll{overflow-x:auto}
img{max-width:100%;height:auto;display:block;margin:6px 0} .row{display:flex;flex-wrap:wrap;gap:12px}
.row img{max-width:calc(50% - 6px)} .note{color:#5b6472;font-size:13px} .read{background:#f3f7fb;border-left:3px solid #7aa7d6;padding:6px 12px;margin:8px 0}
"""


def figure_uri(fig: Figure, dpi: int = 96) -> str:
    """The figure as a ``data:image/png;base64`` URI (the figure is closed)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def headline_text(headline: dict[str, float]) -> dict[str, str]:
    """Label → formatted value of the headline numbers, exactly as the report and the CLI print them."""
    return {
        HEADLINE_LABELS.get(k, k): (f"{v:,.0f}" if k == "customers" else f"{v:.3f}")
        for k, v in headline.items()
    }


def _sample(table: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    return table.sample(MAX_POINTS, random_state=seed) if len(table) > MAX_POINTS else table


def _legend(fig: Figure, codes: list[str]) -> None:
    handles = [
        plt.Line2D([], [], ls="", marker="o", color=SEGMENT_COLOURS[c], label=BY_CODE[c].name)
        for c in codes
    ]
    fig.legend(handles=handles, loc="lower center", ncol=4, frameon=False, fontsize=9)


def cube_projections(scored: ScoredCustomers, seed: int = 0) -> Figure:
    """The customers in each pair of VA scores, coloured by fuzzy (top row) and network (bottom row) segment."""
    t = _sample(scored.table, seed)
    fig, axes = plt.subplots(2, 3, figsize=(12, 8.2), sharex=True, sharey=True)
    pairs = [(0, 1), (0, 2), (1, 2)]
    cols = ["cv_score", "pv_score", "ra_score"]
    for r, name in enumerate(CLASSIFIERS):
        colours = [SEGMENT_COLOURS[c] for c in t[f"segment_{name}"]]
        for ax, (i, j) in zip(axes[r], pairs, strict=True):
            ax.scatter(t[cols[i]], t[cols[j]], c=colours, s=7, alpha=0.65, linewidths=0)
            ax.axvline(scored.threshold, c="grey", ls=":", lw=1)
            ax.axhline(scored.threshold, c="grey", ls=":", lw=1)
            ax.set(
                xlim=(1, 9),
                ylim=(1, 9),
                xlabel=f"{DIMENSION_LABELS[i]} score",
                ylabel=f"{DIMENSION_LABELS[j]} score",
            )
            ax.set_title(
                f"{name} segments: {DIMENSION_LABELS[i]} × {DIMENSION_LABELS[j]}", fontsize=10
            )
    _legend(fig, list(SEGMENT_CODES))
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def cube_3d(scored: ScoredCustomers, seed: int = 0) -> Figure:
    """The value cube in 3-D (CV, PV, RA), coloured by fuzzy segment."""
    t = _sample(scored.table, seed)
    fig = plt.figure(figsize=(6.4, 6))
    ax = fig.add_subplot(projection="3d")
    ax.scatter(
        t["cv_score"],
        t["pv_score"],
        t["ra_score"],
        c=[SEGMENT_COLOURS[c] for c in t["segment_fuzzy"]],
        s=6,
        alpha=0.6,
        linewidths=0,
    )
    ax.set(
        xlim=(1, 9),
        ylim=(1, 9),
        zlim=(1, 9),
        xlabel="CV score",
        ylabel="PV score",
        zlabel="RA score",
    )
    ax.view_init(elev=22, azim=-58)
    ax.set_title("the value cube (fuzzy segments; colours as above)", fontsize=11)
    return fig


def _paired_bars(ax: plt.Axes, frame: pd.DataFrame, metric: str, xlabel: str) -> None:
    """Horizontal bars per segment, fuzzy and network side by side."""
    y = np.arange(len(SEGMENT_CODES))
    for k, name in enumerate(CLASSIFIERS):
        ax.barh(
            y + (0.2 if k else -0.2),
            frame[(metric, name)].fillna(0),
            height=0.4,
            label=name,
            color="#7aa7d6" if k == 0 else "#e07b39",
        )
    ax.set_yticks(y, [BY_CODE[c].name for c in SEGMENT_CODES])
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.legend(frameon=False, fontsize=9)


def segment_sizes_figure(segments: pd.DataFrame) -> Figure:
    """Customers per segment under both classifiers."""
    fig, ax = plt.subplots(figsize=(6.4, 4))
    _paired_bars(ax, segments, "customers", "customers")
    ax.set_title("segment sizes", fontsize=11)
    fig.tight_layout()
    return fig


def confusion_figure(confusion: pd.DataFrame) -> Figure:
    """Confusion matrix: fuzzy segment (rows) × network segment (columns)."""
    fig, ax = plt.subplots(figsize=(6.6, 5.8))
    labels = [BY_CODE[c].name for c in confusion.index]
    ConfusionMatrixDisplay(confusion.to_numpy(), display_labels=labels).plot(
        ax=ax, colorbar=False, xticks_rotation=45
    )
    ax.set(xlabel="network segment", ylabel="fuzzy segment", title="fuzzy × network")
    fig.tight_layout()
    return fig


def roc_figure(y_true: np.ndarray, scores: dict[str, np.ndarray]) -> Figure:
    """ROC curves of every churn score on the same customers."""
    fig, ax = plt.subplots(figsize=(5.4, 5))
    for name, p in scores.items():
        RocCurveDisplay.from_predictions(y_true, p, name=MODEL_LABELS.get(name, name), ax=ax)
    ax.plot([0, 1], [0, 1], ls=":", c="grey")
    ax.set_title("churn ROC", fontsize=11)
    fig.tight_layout()
    return fig


def gain_figure(y_true: np.ndarray, scores: dict[str, np.ndarray]) -> Figure:
    """Cumulative gain (share of churners reached) and lift against the share of customers targeted."""
    fig, (gain, lift) = plt.subplots(1, 2, figsize=(10, 4.2))
    for name, p in scores.items():
        curve = gain_curve(y_true, p)
        gain.plot(curve["targeted"], curve["captured"], label=MODEL_LABELS.get(name, name))
        lift.plot(curve["targeted"][5:], curve["lift"][5:], label=MODEL_LABELS.get(name, name))
    gain.plot([0, 1], [0, 1], ls=":", c="grey", label="random")
    lift.axhline(1, ls=":", c="grey")
    gain.set(
        xlabel="share of customers targeted (highest churn score first)",
        ylabel="share of churners reached",
        title="cumulative gain",
    )
    lift.set(xlabel="share of customers targeted", ylabel="lift over random", title="lift")
    gain.legend(frameon=False, fontsize=9)
    fig.tight_layout()
    return fig


def calibration_figure(points: pd.DataFrame) -> Figure:
    """Reliability diagram: observed churn rate against mean predicted probability (equal-count bins)."""
    fig, ax = plt.subplots(figsize=(5.4, 5))
    for name, part in points.groupby("model", sort=False):
        ax.plot(
            part["mean_predicted"],
            part["observed_rate"],
            marker="o",
            ms=4,
            label=MODEL_LABELS.get(name, name),
        )
    ax.plot([0, 1], [0, 1], ls=":", c="grey", label="perfectly calibrated")
    ax.set(
        xlabel="mean predicted churn probability", ylabel="observed churn rate", title="calibration"
    )
    ax.legend(frameon=False, fontsize=9)
    fig.tight_layout()
    return fig


def churn_by_segment_figure(segments: pd.DataFrame) -> Figure:
    """Observed churn rate per segment under both classifiers."""
    fig, ax = plt.subplots(figsize=(6.4, 4))
    _paired_bars(ax, segments, "churn_rate", "observed churn rate")
    ax.set_title("churn rate per segment", fontsize=11)
    fig.tight_layout()
    return fig


def value_figure(segments: pd.DataFrame, correlations: pd.DataFrame) -> Figure:
    """Mean realised future spend per segment (both classifiers) and each PV score's Spearman with it."""
    fig, (bars, rho) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1.1, 1]})
    _paired_bars(bars, segments, "mean_future_spend", "mean future spend")
    bars.set_title("realised future spend per segment", fontsize=11)
    c = correlations["spearman"]
    rho.barh(c.index, c, color=["#2e7d32" if v >= 0 else "#c62828" for v in c])
    rho.axvline(0, c="grey", lw=0.8)
    rho.invert_yaxis()
    rho.set(xlabel="Spearman ρ with future spend", title="potential-value scores")
    fig.tight_layout()
    return fig


def importance_figure(importances: pd.DataFrame, top: int = 15) -> Figure:
    """Drop in churn ROC-AUC when each input group is shuffled (mean ± std over repeats)."""
    part = importances.head(top)
    fig, ax = plt.subplots(figsize=(6.8, 0.32 * len(part) + 1.2))
    ax.barh(part.index, part["importance"], xerr=part["std"], color="#7aa7d6")
    ax.invert_yaxis()
    ax.set(
        xlabel="drop in churn ROC-AUC when shuffled",
        title="what moves the network's churn probability",
    )
    fig.tight_layout()
    return fig


def _fmt(value: object) -> str:
    if isinstance(value, float | np.floating):
        return "–" if np.isnan(value) else f"{value:,.3f}"
    if isinstance(value, str) and value in BY_CODE:
        return BY_CODE[value].name
    return str(value)


def table_html(frame: pd.DataFrame, index: bool = True) -> str:
    """A DataFrame as a compact HTML table (numbers to 3 decimals, segment codes as names)."""
    shown = frame.copy()
    shown.index = [_fmt(v) for v in shown.index] if shown.index.nlevels == 1 else shown.index
    return (
        '<div class="scroll">'
        + shown.map(_fmt).to_html(classes="t", border=0, index=index, escape=True)
        + "</div>"
    )


def _img(fig: Figure, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="{figure_uri(fig)}">'


def _section(title: str, *parts: str) -> str:
    return f"<section><h2>{html.escape(title)}</h2>{''.join(parts)}</section>"


def _read(text: str) -> str:
    return f'<p class="read">{text}</p>'


def render_report(
    comparison: Comparison, identity: dict[str, str], *, title: str = "", customers: str = ""
) -> str:
    """The whole report as one HTML string (see the module docstring).

    ``identity``: facts about the model (name, version, run id, training data,
    date) shown as a table; ``customers``: a sentence saying which customers
    were compared (e.g. "the model's test split").
    """
    c, s = comparison, comparison.scored
    head = headline_text(c.headline)
    kpis = "".join(
        f'<div class="kpi"><span class="v">{v}</span><span class="k">{html.escape(k)}</span></div>'
        for k, v in head.items()
    )
    ident = pd.DataFrame({"": list(identity.values())}, index=list(identity.keys()))
    excluded = (
        f" {len(s.rejected):,} customer(s) could not be scored and are left out."
        if len(s.rejected)
        else ""
    )

    cube = _section(
        "1 · The value cube",
        _read(
            "Each dot is a customer placed by its three fuzzy scores (1–9; dotted lines: the high/low threshold "
            f"{s.threshold:g}). Top row: the fuzzy rule's segments; bottom row: the network's. Where colours "
            "differ between rows, the network has moved a customer across a boundary."
        ),
        _img(cube_projections(s), "2-D projections of the value cube"),
        '<div class="row">',
        _img(cube_3d(s), "3-D value cube"),
        _img(segment_sizes_figure(c.segments), "segment sizes"),
        "</div>",
        "<h3>Segment sizes</h3>",
        table_html(c.segments[["customers", "share"]]),
    )
    acc, kappa = c.agreement["segment_accuracy"], c.agreement["segment_kappa"]
    local = ""
    if c.local_effects is not None:
        order = c.local_effects.abs().mean(axis=1).sort_values(ascending=False).index[:LOCAL_ROWS]
        local = (
            "<h3>Why the network said what it said, for the same customers</h3>"
            + _read(
                "Change in the network's churn probability due to each input: the probability minus the "
                "probability with that input set to a typical training customer's value (median; most "
                "common level for a category), one input at a time. Positive: this input raises churn for "
                f"this customer. The {LOCAL_ROWS} inputs with the largest mean effect are listed."
            )
            + table_html(c.local_effects.loc[order])
        )
    agree = _section(
        "2 · Agreement: network × fuzzy",
        _read(
            f"The network reproduces the fuzzy segment for {acc:.1%} of these customers (Cohen's kappa {kappa:.3f}: "
            "agreement beyond chance; 1 = perfect, 0 = chance). Rows: fuzzy segment, columns: network segment."
        ),
        '<div class="row">',
        _img(confusion_figure(c.confusion), "confusion matrix"),
        "<div>" + table_html(pd.DataFrame({"value": c.agreement})) + "</div>",
        "</div>",
        "<h3>Customers where they disagree most</h3>",
        _read(
            "Customers the two place differently, lowest network probability for the fuzzy segment first. "
            "<b>VA score</b> and the five-grade <b>memberships</b> (high … low) of each dimension are why the "
            "fuzzy rule chose its segment (a dimension is high when its score ≥ the threshold); <b>factor</b> "
            "rows are the raw inputs of the rule; <b>network P</b> rows are the network's class probabilities."
        )
        if len(c.disagreements)
        else '<p class="note">The two classifiers agree on every customer.</p>',
        table_html(c.disagreements.T) if len(c.disagreements) else "",
        local,
    )
    if c.churn_metrics is not None:
        y = s.table["churn"].to_numpy()
        best = c.churn_metrics["roc_auc"].idxmax()
        churn = _section(
            "3 · Churn",
            _read(
                "All scores are on the same customers. The peers (logistic regression, LightGBM) were refit on "
                "the model's own training split with the network's inputs; the fuzzy churn score is a logistic "
                "regression on the three VA scores. Highest ROC-AUC: "
                f"<b>{MODEL_LABELS.get(best, best)}</b> ({c.churn_metrics.loc[best, 'roc_auc']:.3f}). "
                "Lower Brier score and log loss are better; top-decile lift = churn rate among the 10 % "
                "highest-scored over the overall rate."
            ),
            table_html(c.churn_metrics.rename(index=MODEL_LABELS)),
            '<div class="row">',
            _img(roc_figure(y, c.churn_scores), "ROC curves"),
            _img(calibration_figure(calibration(y, c.churn_scores)), "calibration"),
            "</div>",
            _img(gain_figure(y, c.churn_scores), "cumulative gain and lift"),
            '<div class="row">',
            _img(churn_by_segment_figure(c.segments), "churn rate per segment"),
            "<div>" + table_html(c.segments[["customers", "churn_rate"]]) + "</div>",
            "</div>",
        )
    else:
        churn = _section(
            "3 · Churn", '<p class="note">No churn labels in this input: nothing to evaluate.</p>'
        )
    if c.value_correlations is not None:
        value = _section(
            "4 · Value",
            _read(
                "Realised future spend (the holdout window) per segment, and how well each potential-value score "
                "ranks customers by it (Spearman ρ; a cost-direction factor such as an inter-purchase time "
                "ranks with a negative ρ)."
            ),
            _img(
                value_figure(c.segments, c.value_correlations),
                "future spend per segment and PV correlations",
            ),
            '<div class="row">',
            table_html(c.segments[["customers", "mean_future_spend"]]),
            table_html(
                c.value_correlations.assign(
                    p_value=c.value_correlations["p_value"].map("{:.1e}".format)
                )
            ),
            "</div>",
        )
    else:
        value = _section(
            "4 · Value",
            '<p class="note">No realised-value labels (future spend) in this input: '
            "only transaction logs with a holdout window have them.</p>",
        )
    explain = _section(
        "5 · Explanations",
        _read(
            "Permutation importance (scikit-learn) of the network's inputs: how much churn ROC-AUC drops when "
            "one input is shuffled across these customers (one-hot columns of a category together). Inputs that "
            "carry the same information share the credit."
        )
        + _img(importance_figure(c.importances), "permutation importance")
        + table_html(c.importances.head(20))
        if c.importances is not None
        else '<p class="note">Needs churn labels.</p>',
    )
    name = html.escape(title or "valuecube: network vs fuzzy value cube")
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{name}</title>'
        f"<style>{CSS}</style></head><body><main><h1>{name}</h1>"
        f'<p class="sub">{html.escape(customers)}{excluded}</p><div class="kpis">{kpis}</div>'
        f"<h3>The model</h3>{table_html(ident)}{cube}{agree}{churn}{value}{explain}</main></body></html>"
    )


def write_report(text: str, path: str | Path) -> Path:
    """Write the HTML atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a report is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path

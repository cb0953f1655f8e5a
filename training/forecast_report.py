"""The report's "Where customers are heading" sections, as self-contained HTML fragments.

:func:`forecast_sections` takes one row per customer — the forecasting
model's output (:data:`models.packaged.MODEL_OUTPUT_COLUMNS`: ``segment``
now, ``segment_next``, ``expected_spend``, ``churn_probability``) and, when
the input has the purchases after the horizon, the realised
``segment_next_actual`` and ``future_spend`` — and returns:

1. the migration matrix, segment now → segment after the horizon, predicted
   and (where known) actual;
2. accuracy of the network against persistence per current segment;
3. predicted against realised spend per decile of predicted spend
   (calibration);
4. the gain curve of spend: the share of realised spend captured by the
   customers ranked highest by the prediction;
5. the customers the network expects to move down a segment, most likely
   to churn first: the ones a retention team should call.

Figures are base64 PNG ``<img>`` tags and tables HTML, so a renderer only
concatenates ``html``.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from valuecube.models.segments import SEGMENT_CODES

ACTUAL_SEGMENT = "segment_next_actual"
ACTUAL_SPEND = "future_spend"
CALL_LIST_ROWS = 25


@dataclass(frozen=True)
class ReportSection:
    """One report section: a title and a self-contained HTML fragment."""

    title: str
    html: str


def _png(fig: plt.Figure) -> str:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="figure" src="data:image/png;base64,{encoded}">'


def _table(frame: pd.DataFrame, float_format: str = "{:.3f}") -> str:
    return frame.to_html(
        float_format=float_format.format, border=0, classes="forecast", escape=True
    )


def _crosstab(now: pd.Series, later: pd.Series) -> pd.DataFrame:
    present = [c for c in SEGMENT_CODES if c in set(now) | set(later)]
    table = pd.crosstab(pd.Categorical(now, present), pd.Categorical(later, present))
    return table.rename_axis(index="now", columns="after the horizon")


def _rank(segments: pd.Series) -> np.ndarray:
    """Position in the segment catalogue (0 = key attack-and-defend, 7 = release)."""
    return pd.Categorical(segments, categories=list(SEGMENT_CODES)).codes


def migration_section(frame: pd.DataFrame, horizon_days: int) -> ReportSection:
    """Segment now → segment after the horizon: the network's forecast and the realised one."""
    parts = [
        f"<p>Customers per segment now (rows) and after {horizon_days} days (columns), "
        "by the value cube frozen at training.</p>",
        "<h4>Predicted by the network</h4>",
        _table(_crosstab(frame["segment"], frame["segment_next"]), "{:.0f}"),
    ]
    if ACTUAL_SEGMENT in frame:
        parts += [
            "<h4>Actual (purchases up to the end of the horizon)</h4>",
            _table(_crosstab(frame["segment"], frame[ACTUAL_SEGMENT]), "{:.0f}"),
        ]
    return ReportSection("Migration between segments", "\n".join(parts))


def accuracy_section(frame: pd.DataFrame) -> ReportSection:
    """Next-segment accuracy of the network and of persistence, per current segment."""
    actual = frame[ACTUAL_SEGMENT]
    hits = pd.DataFrame(
        {
            "customers": 1,
            "network": (frame["segment_next"] == actual).astype(float),
            "persistence": (frame["segment"] == actual).astype(float),
        }
    )
    by_segment = hits.groupby(frame["segment"].to_numpy()).agg(
        customers=("customers", "sum"),
        network=("network", "mean"),
        persistence=("persistence", "mean"),
    )
    by_segment = by_segment.reindex([c for c in SEGMENT_CODES if c in by_segment.index])
    by_segment.loc["all customers"] = [
        len(hits),
        hits["network"].mean(),
        hits["persistence"].mean(),
    ]
    by_segment = by_segment.rename_axis("segment now")
    return ReportSection(
        "Next-segment accuracy: network vs persistence",
        "<p>Share of customers whose segment after the horizon was predicted right; persistence "
        "predicts that the segment stays where it is now.</p>"
        + _table(by_segment.astype({"customers": int})),
    )


def spend_deciles(predicted: np.ndarray, actual: np.ndarray) -> pd.DataFrame:
    """Mean predicted and realised spend per decile of predicted spend (decile 1 = highest)."""
    order = np.argsort(-np.asarray(predicted, dtype=float), kind="stable")
    decile = np.empty(len(order), dtype=int)
    decile[order] = np.arange(len(order)) * 10 // max(len(order), 1) + 1
    frame = pd.DataFrame({"decile": decile, "predicted": predicted, "realised": actual})
    return frame.groupby("decile")[["predicted", "realised"]].mean()


def gain_curve(predicted: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Share of customers (ranked by prediction, highest first) against share of realised spend."""
    actual = np.asarray(actual, dtype=float)
    order = np.argsort(-np.asarray(predicted, dtype=float), kind="stable")
    customers = np.arange(len(actual) + 1) / max(len(actual), 1)
    spend = np.concatenate([[0.0], np.cumsum(actual[order])]) / max(actual.sum(), 1e-12)
    return customers, spend


def calibration_section(frame: pd.DataFrame) -> ReportSection:
    """Bar chart of mean predicted vs realised spend per decile of predicted spend."""
    deciles = spend_deciles(frame["expected_spend"].to_numpy(), frame[ACTUAL_SPEND].to_numpy())
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    x = deciles.index.to_numpy()
    ax.bar(x - 0.2, deciles["predicted"], width=0.4, label="predicted")
    ax.bar(x + 0.2, deciles["realised"], width=0.4, label="realised")
    ax.set_xticks(x)
    ax.set_xlabel("decile of predicted spend (1 = highest)")
    ax.set_ylabel("mean spend in the horizon")
    ax.legend()
    return ReportSection(
        "Spend per decile: predicted vs realised", _png(fig) + _table(deciles, "{:.2f}")
    )


def gain_section(frame: pd.DataFrame) -> ReportSection:
    """Gain curve of spend, with the perfect ranking and a random one for reference."""
    predicted = frame["expected_spend"].to_numpy()
    actual = frame[ACTUAL_SPEND].to_numpy()
    customers, spend = gain_curve(predicted, actual)
    best_customers, best = gain_curve(actual, actual)
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    ax.plot(customers, spend, label="network")
    ax.plot(best_customers, best, ls="--", label="perfect ranking")
    ax.plot([0, 1], [0, 1], ls=":", c="grey", label="random")
    ax.set_xlabel("share of customers (highest predicted first)")
    ax.set_ylabel("share of realised spend")
    ax.legend()
    top = spend[int(np.ceil(0.1 * len(actual)))]
    return ReportSection(
        "Gain curve of spend",
        _png(fig) + f"<p>The top 10 % of customers by predicted spend made {top:.1%} of the "
        "realised spend.</p>",
    )


def call_list_section(frame: pd.DataFrame, rows: int = CALL_LIST_ROWS) -> ReportSection:
    """Customers expected in a lower segment after the horizon, likeliest churners first."""
    down = frame[_rank(frame["segment_next"]) > _rank(frame["segment"])]
    columns = ["customer_id", "segment", "segment_next", "churn_probability", "expected_spend"]
    listed = down.sort_values(["churn_probability", "expected_spend"], ascending=[False, False])
    body = (
        f"<p>{len(down)} of {len(frame)} customers are expected to move down a segment; "
        f"the {min(rows, len(down))} most likely to churn:</p>"
    )
    table = listed[[c for c in columns if c in listed]].head(rows).reset_index(drop=True)
    return ReportSection("Customers expected to move down", body + _table(table))


def forecast_sections(frame: pd.DataFrame, horizon_days: int) -> list[ReportSection]:
    """The "Where customers are heading" sections for these customers (see the module docstring).

    Parameters
    ----------
    frame : DataFrame
        One row per customer with ``customer_id``, ``segment``, ``segment_next``,
        ``expected_spend`` and ``churn_probability``; optionally
        ``segment_next_actual`` and ``future_spend`` (the realised values),
        which add the accuracy, calibration and gain sections.
    horizon_days : int
        The model's forecast horizon.

    Raises
    ------
    ValueError
        If a required column is missing.
    """
    required = ["customer_id", "segment", "segment_next", "expected_spend", "churn_probability"]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(
            f"forecast sections need the column(s) {missing}: score with a transaction-log model"
        )
    sections = [migration_section(frame, horizon_days)]
    if ACTUAL_SEGMENT in frame:
        sections.append(accuracy_section(frame))
    if ACTUAL_SPEND in frame:
        sections += [calibration_section(frame), gain_section(frame)]
    sections.append(call_list_section(frame))
    return sections

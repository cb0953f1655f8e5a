"""BTYD diagnostics as users of lifetimes / PyMC-Marketing draw them (docs/lifetimes.md).

* calibration vs holdout: mean holdout purchases by calibration repeat
  frequency, actual against the model's conditional expectation;
* cumulative repeat purchases week by week over calibration and holdout,
  actual against the model's expectation for the customers' cohorts;
* the P(alive) matrix by repeat frequency × recency at the longest tenure.

Each is a function returning a frame, a figure function draws it, and
:func:`btyd_sections` packs all three as self-contained HTML fragments for
the comparison report. Model outputs use the point estimate (draw 0 of
:meth:`features.btyd.BtydValue.predictors`).
"""

from __future__ import annotations

import base64
import io
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from valuecube.features.btyd import BTYD_MODELS, BtydValue, library_model, parameter_summary

__all__ = [
    "ReportSection",
    "btyd_sections",
    "calibration_vs_holdout",
    "cumulative_repeat_purchases",
    "html_fragment",
    "p_alive_matrix",
]


@dataclass(frozen=True)
class ReportSection:
    """One block of the HTML report: a title and a self-contained HTML fragment."""

    title: str
    html: str


def _point(values) -> np.ndarray:
    """The point estimate (draw 0) of a library output shaped (chain, draw, customer)."""
    return np.asarray(values)[0, 0]


def calibration_vs_holdout(
    model: BtydValue, customers: pd.DataFrame, holdout_days: float, max_frequency: int = 7
) -> pd.DataFrame:
    """Mean holdout purchases by calibration repeat frequency: actual and predicted.

    ``customers`` has the model's input columns and ``future_purchases``
    (purchase days in the holdout). The last bucket pools ``max_frequency``
    and above.
    """
    purchases, _, h = model.predictors(customers)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predicted = _point(
            purchases.expected_purchases(h, future_t=holdout_days / model.time_unit_days)
        )
    bucket = np.minimum(customers["repeat_frequency"].to_numpy(dtype=int), max_frequency)
    frame = pd.DataFrame(
        {
            "frequency": bucket,
            "actual": customers["future_purchases"].to_numpy(dtype=float),
            "predicted": predicted,
        }
    )
    table = frame.groupby("frequency").agg(
        customers=("actual", "size"), actual=("actual", "mean"), predicted=("predicted", "mean")
    )
    table.index = [str(i) if i < max_frequency else f"{max_frequency}+" for i in table.index]
    table.index.name = "calibration repeat purchases"
    return table


def cumulative_repeat_purchases(
    model: BtydValue,
    log: pd.DataFrame,
    *,
    window_start: pd.Timestamp,
    as_of: pd.Timestamp,
    end: pd.Timestamp,
) -> pd.DataFrame:
    """Cumulative repeat purchase days per week since ``window_start``: actual and predicted.

    ``log`` has ``customer_id`` and ``date``; only customers whose first
    purchase is in [window_start, as_of] count. A repeat purchase is a
    purchase day after the customer's first. The prediction sums the
    model's expected purchases of a new customer, E[X(t − s_i)], over the
    customers' first-purchase days s_i (grouped by day: one evaluation per
    cohort and week).
    """
    days = log[["customer_id", "date"]].drop_duplicates()
    days = days[(days["date"] >= window_start) & (days["date"] <= end)]
    first = days.groupby("customer_id")["date"].transform("min")
    days = days[first <= as_of].assign(first=first[first <= as_of])
    weeks = int(np.ceil((end - window_start).days / 7))
    week_of = ((days["date"] - window_start).dt.days // 7 + 1).to_numpy()
    repeat = days["date"].to_numpy() > days["first"].to_numpy()
    actual = np.bincount(week_of[repeat], minlength=weeks + 1)[1 : weeks + 1].cumsum()

    cohorts = days.groupby("customer_id")["first"].first().value_counts()
    start_day = (cohorts.index - window_start).days.to_numpy(dtype=float)
    t = np.clip(np.arange(1, weeks + 1)[:, np.newaxis] * 7.0 - start_day, 0, None)
    grid = pd.DataFrame({"customer_id": np.arange(t.size)})
    class_name, _, names = BTYD_MODELS[model.model]
    library = library_model(
        class_name,
        names,
        grid.assign(frequency=0.0, recency=0.0, T=1.0),
        {k: [v] for k, v in model.params_.items()},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        per_cohort = _point(
            library.expected_purchases_new_customer(grid, t=t.ravel() / model.time_unit_days)
        ).reshape(t.shape)
    predicted = per_cohort @ cohorts.to_numpy(dtype=float)
    week = pd.Index(np.arange(1, weeks + 1), name="week")
    # Week w covers days 7(w − 1) .. 7w − 1 after window_start; holdout weeks start after as_of.
    holdout = (week.to_numpy() - 1) * 7 > (as_of - window_start).days
    return pd.DataFrame({"actual": actual, "predicted": predicted, "holdout": holdout}, index=week)


def p_alive_matrix(model: BtydValue, max_frequency: int = 20, max_recency: int | None = None):
    """P(alive) by repeat frequency (rows) × recency in model units (columns) at the longest T."""
    T = model.max_tenure_
    recency_max = int(np.floor(T)) if max_recency is None else max_recency
    freq, rec = np.meshgrid(np.arange(max_frequency + 1), np.arange(recency_max + 1), indexing="ij")
    valid = (freq > 0) | (rec == 0)
    grid = pd.DataFrame(
        {
            "repeat_frequency": freq[valid].astype(float),
            "first_to_last_days": rec[valid] * float(model.time_unit_days),
            "tenure_days": T * model.time_unit_days,
            "repeat_monetary_avg": 0.0,
        }
    )
    purchases, _, h = model.predictors(grid)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alive = _point(purchases.expected_probability_alive(h))
    matrix = np.full(freq.shape, np.nan)
    matrix[valid] = alive
    return pd.DataFrame(
        matrix,
        index=pd.Index(np.arange(max_frequency + 1), name="repeat purchases"),
        columns=pd.Index(np.arange(recency_max + 1), name="recency"),
    )


def _figure_calibration(table: pd.DataFrame):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["actual"], 0.4, label="actual")
    ax.bar(x + 0.2, table["predicted"], 0.4, label="model")
    ax.set_xticks(x, table.index)
    ax.set_xlabel("repeat purchases in calibration")
    ax.set_ylabel("mean purchases in holdout")
    ax.legend()
    return fig


def _figure_cumulative(frame: pd.DataFrame):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(frame.index, frame["actual"], label="actual")
    ax.plot(frame.index, frame["predicted"], "--", label="model")
    start = frame.index[frame["holdout"]].min()
    ax.axvline(start - 0.5, color="grey", lw=0.8)
    ax.set_xlabel("week")
    ax.set_ylabel("cumulative repeat purchases")
    ax.legend()
    return fig


def _figure_p_alive(matrix: pd.DataFrame):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    image = ax.imshow(matrix.to_numpy(), origin="lower", aspect="auto", vmin=0, vmax=1)
    ax.set_xlabel(f"recency ({matrix.columns.name})")
    ax.set_ylabel("repeat purchases")
    fig.colorbar(image, ax=ax, label="P(alive)")
    return fig


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def html_fragment(caption: str, fig, table: pd.DataFrame | None) -> str:
    """A figure (base64 PNG, closed afterwards) with its caption, and optionally a table."""
    html = (
        f'<figure><img alt="{caption}" src="data:image/png;base64,{_png(fig)}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )
    if table is not None:
        html += table.round(3).to_html(border=0)
    return html


def btyd_sections(
    model: BtydValue,
    customers: pd.DataFrame,
    log: pd.DataFrame,
    *,
    window_start: pd.Timestamp,
    as_of: pd.Timestamp,
    holdout_end: pd.Timestamp,
) -> list[ReportSection]:
    """The three diagnostics as report sections (figures as base64 PNGs, tables as HTML).

    Parameters
    ----------
    model : BtydValue
        Fitted on ``customers``' calibration histories.
    customers : DataFrame
        Per-customer table (model inputs and ``future_purchases``).
    log : DataFrame
        Transactions with ``customer_id`` and ``date`` (calibration and holdout).
    window_start, as_of, holdout_end : Timestamp
        Calibration start, calibration end, holdout end.
    """
    import matplotlib

    matplotlib.use("Agg")
    summary = parameter_summary(model)
    holdout_days = float((holdout_end - as_of).days)
    calibration = calibration_vs_holdout(model, customers, holdout_days)
    cumulative = cumulative_repeat_purchases(
        model, log, window_start=window_start, as_of=as_of, end=holdout_end
    )
    alive = p_alive_matrix(model)
    weekly = cumulative.iloc[np.r_[0 : len(cumulative) : 13, len(cumulative) - 1]]
    return [
        ReportSection(
            "Calibration vs holdout",
            html_fragment(
                f"Mean holdout purchases by calibration frequency ({summary})",
                _figure_calibration(calibration),
                calibration,
            ),
        ),
        ReportSection(
            "Cumulative repeat purchases",
            html_fragment(
                "Cumulative repeat purchases by week; the line marks the holdout start",
                _figure_cumulative(cumulative),
                weekly,
            ),
        ),
        ReportSection(
            "P(alive) by frequency and recency",
            html_fragment(
                f"P(alive) at the longest tenure ({model.model})", _figure_p_alive(alive), None
            ),
        ),
    ]

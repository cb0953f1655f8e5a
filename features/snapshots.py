"""Forward labels on rolling as-of snapshots of a transaction log (docs/forecasting.md).

For a customer seen as of a date *t* the labels come from the horizon
``(t, t + horizon]``: ``churn`` (no purchase in it) and ``future_spend`` (its
total spend); the customer's purchases up to ``t + horizon`` give the
per-customer table from which a frozen value cube derives ``segment_next``
(that step needs the cube, so it lives in :mod:`training.forecast_data`).

Features always come from purchases up to *t* only: every function here
cuts the log at the dates it is given, and :func:`idle_projection` derives
"the customer as of t + horizon if they buy nothing more" from the
per-customer table as of *t* alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from valuecube.features.config import DatasetConfig, InputSpec
from valuecube.features.inputs import ValidatedInput
from valuecube.features.transactions import HISTORY_QUARTERS, QUARTER_DAYS, customer_features

__all__ = [
    "Snapshot",
    "forecast_horizon_days",
    "forward_snapshot",
    "idle_projection",
    "log_frame",
    "snapshot_dates",
]


def log_frame(validated: ValidatedInput, spec: InputSpec) -> pd.DataFrame:
    """The validated log as ``customer_id, date, quantity, amount`` (dates at day precision)."""
    data = validated.data
    return pd.DataFrame(
        {
            "customer_id": data[spec.id_column].astype(str),
            "date": data[spec.date_column].dt.normalize(),
            "quantity": data[spec.quantity_column].astype("float64"),
            "amount": data[spec.amount_column].astype("float64"),
        }
    )


def forecast_horizon_days(config: DatasetConfig) -> int:
    """The forecast horizon: ``forecast.horizon_days``, else the holdout ``holdout_end - as_of``.

    Raises
    ------
    ValueError
        For a log config with neither (or a holdout that does not end after ``as_of``).
    """
    if config.forecast.horizon_days is not None:
        return int(config.forecast.horizon_days)
    spec = config.input
    if spec.as_of is None or spec.holdout_end is None or spec.holdout_end <= spec.as_of:
        raise ValueError(
            f"{config.name}: set forecast.horizon_days, or input.as_of and a later "
            "input.holdout_end (the horizon defaults to the holdout window)"
        )
    return (spec.holdout_end - spec.as_of).days


def snapshot_dates(
    first: pd.Timestamp, last: pd.Timestamp, every_months: int = 1
) -> list[pd.Timestamp]:
    """Month-end snapshot dates from ``last`` back to ``first`` every ``every_months``, ascending.

    ``last`` is always a snapshot (it need not be a month end): the final
    evaluation happens there.
    """
    first, last = pd.Timestamp(first).normalize(), pd.Timestamp(last).normalize()
    if last < first:
        raise ValueError(f"no snapshot: the last date {last.date()} is before {first.date()}")
    dates = [last]
    month_end = (last - pd.offsets.MonthEnd(1)) if not last.is_month_end else last
    step = pd.offsets.MonthEnd(every_months)
    current = month_end if month_end < last else month_end - step
    while current >= first:
        dates.append(current)
        current = current - step
    return sorted(dates)


@dataclass(frozen=True)
class Snapshot:
    """One as-of snapshot: customers as of ``as_of`` with forward labels, and at the horizon end.

    ``now`` has the per-customer features from purchases up to ``as_of``
    plus ``churn``, ``future_spend`` and ``future_purchases`` from
    ``(as_of, horizon_end]``; ``later`` has the same customers' features from
    purchases up to ``horizon_end`` (nothing after it), in the same order.
    """

    as_of: pd.Timestamp
    horizon_end: pd.Timestamp
    now: pd.DataFrame
    later: pd.DataFrame


def forward_snapshot(
    log: pd.DataFrame,
    as_of: pd.Timestamp,
    horizon_days: int,
    *,
    window_start: pd.Timestamp | None = None,
    customers: pd.Index | None = None,
    observed_until: pd.Timestamp | None = None,
) -> Snapshot:
    """The customers seen by ``as_of`` (optionally only ``customers``) and their forward labels.

    ``observed_until``: the last date the log covers (default its last
    purchase date; pass the whole log's when ``log`` holds some customers only).

    Raises
    ------
    ValueError
        If the log does not reach ``as_of + horizon_days``: the labels would
        count a horizon that has not been observed in full.
    """
    as_of = pd.Timestamp(as_of).normalize()
    end = as_of + pd.Timedelta(days=int(horizon_days))
    last = pd.Timestamp(observed_until) if observed_until is not None else log["date"].max()
    if end > last:
        raise ValueError(
            f"snapshot {as_of.date()}: its horizon ends {end.date()}, after the log's last "
            f"date {last.date()}; labels need the full horizon"
        )
    if customers is not None:
        log = log[log["customer_id"].isin(customers)]
    seen = log[log["date"] <= end]
    now = customer_features(seen, as_of, window_start=window_start, holdout_end=end)
    later = customer_features(seen, end, window_start=window_start).loc[now.index]
    return Snapshot(as_of, end, now, later)


def idle_projection(customers: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
    """The per-customer table as of ``t + horizon_days`` if the customer buys nothing after ``t``.

    Computed from the table as of ``t`` alone (known at ``t``): recency,
    tenure and the window grow by the horizon; frequency and spend stay; a
    one-time buyer's inter-purchase time stays the tenure (a lower bound, as
    in :func:`features.transactions.customer_features`). ``purchase_growth``
    needs the spend in the second half of the longer window, which starts
    ``horizon / 2`` days later: it is read from the quarterly history
    (``spend_q1`` …, spread evenly over each quarter), exactly when the new
    midpoint falls after ``t`` (no spend there: growth −1), and at most from
    the last year otherwise. The quarterly history shifts by the horizon.
    """
    h = float(horizon_days)
    out = customers.copy()
    out["recency_days"] = customers["recency_days"] + h
    out["tenure_days"] = customers["tenure_days"] + h
    one_time = customers["frequency"].to_numpy() <= 1
    out["interpurchase_days"] = np.where(
        one_time, out["tenure_days"], customers["interpurchase_days"]
    )
    window = customers["window_days"].to_numpy(dtype=float)
    # days from the new midpoint to t: (window + h) / 2 days before t + h
    second_half = np.clip(window - (window + h) / 2.0, 0.0, None)
    spend = customers[[f"spend_q{q}" for q in range(1, HISTORY_QUARTERS + 1)]].to_numpy(float)
    covered = np.clip(second_half[:, None] - QUARTER_DAYS * np.arange(HISTORY_QUARTERS), 0, None)
    s2 = (spend * np.minimum(covered, QUARTER_DAYS) / QUARTER_DAYS).sum(axis=1)
    total = customers["monetary_total"].to_numpy(dtype=float)
    s2 = np.minimum(s2, total)
    out["purchase_growth"] = np.divide(
        2 * s2 - total, total, out=np.zeros(len(total)), where=total > 0
    )
    out["window_days"] = window + h
    shift = round(h / QUARTER_DAYS)
    for q in range(HISTORY_QUARTERS, 0, -1):
        source = q - shift
        for prefix in ("spend_q", "purchase_days_q"):
            out[f"{prefix}{q}"] = customers[f"{prefix}{source}"] if source >= 1 else 0.0
    return out

"""Examples for the forecasting network: rolling as-of snapshots of a log (docs/forecasting.md).

The protocol:

* the value cube is fitted once, on the training customers as of the
  config's ``as_of``, and then frozen: every segment below (now, and after
  the horizon) is that cube's answer, so a segment means the same thing at
  both dates;
* training customers contribute one example per snapshot date where they
  exist (month ends up to the last date that still has a full horizon
  after it); validation and test customers are evaluated at ``as_of`` only;
* an example's inputs come from purchases up to its snapshot date *t*; its
  labels from ``(t, t + horizon]``: ``churn``, ``future_spend`` and
  ``segment_next`` (the frozen cube on the purchases up to ``t + horizon``).
  No purchase after ``t + horizon`` is read for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from valuecube.features.factors import split_computable
from valuecube.features.snapshots import forward_snapshot, snapshot_dates
from valuecube.models.design import NetworkDesign
from valuecube.models.value_cube import ValueCube

AS_OF = "as_of"
"""Index level of the snapshot date in a stacked part."""


@dataclass(frozen=True)
class ForecastPart:
    """Stacked examples of one part of the split (index: ``as_of``, ``customer_id``).

    ``X``: the network's input matrix; ``y``: ``segment`` (the segment after
    the horizon), ``churn`` and ``spend`` (the spend in the horizon);
    ``segment_now``: the rule's segment at the snapshot date; ``scores``: the
    VA scores then; ``customers``: the per-customer table as of the snapshot
    date; ``dropped``: examples left out because their factors, now or after
    the horizon, could not be computed.
    """

    X: pd.DataFrame
    y: pd.DataFrame
    segment_now: np.ndarray
    scores: np.ndarray
    customers: pd.DataFrame
    dropped: int


def last_full_horizon(log: pd.DataFrame, horizon_days: int) -> pd.Timestamp:
    """The last as-of date whose horizon the log covers in full."""
    return log["date"].max().normalize() - pd.Timedelta(days=int(horizon_days))


def training_snapshot_dates(
    log: pd.DataFrame,
    horizon_days: int,
    as_of: pd.Timestamp,
    *,
    window_start: pd.Timestamp | None,
    every_months: int = 1,
    first: pd.Timestamp | None = None,
) -> list[pd.Timestamp]:
    """Snapshot dates for training: month ends up to ``min(as_of, last full horizon)``."""
    last = min(pd.Timestamp(as_of), last_full_horizon(log, horizon_days))
    start = pd.Timestamp(window_start) if window_start is not None else log["date"].min()
    first = pd.Timestamp(first) if first is not None else start + pd.offsets.MonthEnd(1)
    return snapshot_dates(first, last, every_months)


def forecast_part(
    log: pd.DataFrame,
    cube: ValueCube,
    design: NetworkDesign,
    customers: pd.Index,
    dates: list[pd.Timestamp],
    horizon_days: int,
    *,
    window_start: pd.Timestamp | None,
) -> ForecastPart:
    """The examples of ``customers`` at each of ``dates``, stacked in date order."""
    observed_until = log["date"].max()
    log = log[log["customer_id"].isin(customers)]
    pieces = []
    dropped = 0
    for date in dates:
        snap = forward_snapshot(
            log, date, horizon_days, window_start=window_start, observed_until=observed_until
        )
        if not len(snap.now):
            continue
        now_factors = cube.factors(snap.now)
        later_factors = cube.factors(snap.later)
        ok = split_computable(now_factors)[0] & split_computable(later_factors)[0]
        dropped += int((~ok).sum())
        now, now_factors, later_factors = snap.now[ok], now_factors[ok], later_factors[ok]
        X = design.transform(now, now_factors)
        scores = cube.fuzzy_.transform(now_factors)
        index = pd.MultiIndex.from_arrays(
            [np.full(len(now), date), now.index], names=[AS_OF, now.index.name]
        )
        y = pd.DataFrame(
            {
                "segment": cube.fuzzy_.predict(later_factors),
                "churn": now["churn"].to_numpy(),
                "spend": now["future_spend"].to_numpy(),
            },
            index=index,
        )
        X.index = index
        pieces.append((X, y, cube.fuzzy_.predict(now_factors), scores, now.set_axis(index)))
    if not pieces:
        raise ValueError("no forecast examples: no customer exists at any snapshot date")
    return ForecastPart(
        X=pd.concat([p[0] for p in pieces]),
        y=pd.concat([p[1] for p in pieces]),
        segment_now=np.concatenate([p[2] for p in pieces]),
        scores=np.concatenate([p[3] for p in pieces]),
        customers=pd.concat([p[4] for p in pieces]),
        dropped=dropped,
    )

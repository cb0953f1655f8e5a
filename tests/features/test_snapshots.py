"""Forward labels on as-of snapshots: a hand-made log with known answers; no leak past a horizon."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from valuecube.features.snapshots import forward_snapshot, idle_projection, snapshot_dates
from valuecube.features.transactions import customer_features

T = pd.Timestamp
START = T("2024-01-01")
HORIZON = 30  # days


def _log(extra: list[tuple[str, str, float]] = ()) -> pd.DataFrame:
    rows = [
        ("A", "2024-01-05", 10.0),
        ("A", "2024-02-10", 20.0),
        ("A", "2024-03-20", 30.0),
        ("A", "2024-05-01", 40.0),  # after every horizon below
        ("B", "2024-01-20", 15.0),
        ("C", "2024-02-15", 50.0),
        ("C", "2024-02-25", 5.0),
        *extra,
    ]
    log = pd.DataFrame(rows, columns=["customer_id", "date", "amount"]).assign(quantity=1.0)
    log["date"] = pd.to_datetime(log["date"])
    return log


def _labels(log: pd.DataFrame, as_of: str) -> pd.DataFrame:
    snap = forward_snapshot(log, T(as_of), HORIZON, window_start=START)
    return snap.now[["churn", "future_spend", "future_purchases"]]


def test_labels_at_two_snapshots_by_hand() -> None:
    # t = Jan 31: horizon (Jan 31, Mar 1]; C has not bought yet, so it is not in the snapshot
    first = _labels(_log(), "2024-01-31")
    assert list(first.index) == ["A", "B"]
    assert first.to_dict("index") == {
        "A": {"churn": 0, "future_spend": 20.0, "future_purchases": 1},
        "B": {"churn": 1, "future_spend": 0.0, "future_purchases": 0},
    }
    # t = Feb 29: horizon (Feb 29, Mar 30]
    second = _labels(_log(), "2024-02-29")
    assert second.to_dict("index") == {
        "A": {"churn": 0, "future_spend": 30.0, "future_purchases": 1},
        "B": {"churn": 1, "future_spend": 0.0, "future_purchases": 0},
        "C": {"churn": 1, "future_spend": 0.0, "future_purchases": 0},
    }


def test_features_and_later_table_stop_at_their_dates() -> None:
    snap = forward_snapshot(_log(), T("2024-01-31"), HORIZON, window_start=START)
    assert snap.horizon_end == T("2024-03-01")
    assert snap.now.loc["A", "monetary_total"] == 10.0  # Feb 10 is a label, not a feature
    assert snap.later.loc["A", "monetary_total"] == 30.0  # up to Mar 1: Jan 5 + Feb 10
    assert snap.later.loc["A", "frequency"] == 2
    assert snap.later.loc["B", "recency_days"] == (T("2024-03-01") - T("2024-01-20")).days


def test_no_label_reads_a_purchase_after_its_horizon() -> None:
    """A purchase one day after a snapshot's horizon changes nothing of that snapshot."""
    before = forward_snapshot(_log(), T("2024-01-31"), HORIZON, window_start=START)
    after = forward_snapshot(
        _log([("B", "2024-03-02", 999.0), ("D", "2024-03-02", 1.0)]),
        T("2024-01-31"),
        HORIZON,
        window_start=START,
    )
    pd.testing.assert_frame_equal(before.now, after.now)
    pd.testing.assert_frame_equal(before.later, after.later)
    # ... while the next snapshot, whose horizon covers Mar 2, sees it
    assert _labels(_log([("B", "2024-03-02", 999.0)]), "2024-02-29").loc["B", "churn"] == 0


def test_snapshot_needs_a_full_horizon() -> None:
    with pytest.raises(ValueError, match="labels need the full horizon"):
        forward_snapshot(_log(), T("2024-04-15"), HORIZON)


def test_snapshot_dates_are_month_ends_up_to_the_last_date() -> None:
    assert snapshot_dates(T("2024-01-01"), T("2024-03-15")) == [
        T("2024-01-31"),
        T("2024-02-29"),
        T("2024-03-15"),
    ]
    assert snapshot_dates(T("2024-01-01"), T("2024-06-30"), 2) == [
        T("2024-02-29"),
        T("2024-04-30"),
        T("2024-06-30"),
    ]


def test_idle_projection_is_the_customer_after_the_horizon_without_purchases() -> None:
    """From the table at t alone: the same numbers as the log up to t read at t + horizon."""
    log, as_of, horizon = _log(), T("2024-02-29"), 120
    now = customer_features(log[log["date"] <= as_of], as_of, window_start=START)
    truth = customer_features(
        log[log["date"] <= as_of], as_of + pd.Timedelta(days=horizon), window_start=START
    )
    projected = idle_projection(now, horizon)
    exact = [
        "recency_days",
        "frequency",
        "monetary_total",
        "monetary_avg",
        "tenure_days",
        "interpurchase_days",
        "purchase_growth",  # the longer window's midpoint falls after t: growth -1
        "window_days",
        "repeat_rate",
    ]
    assert_allclose(projected[exact].to_numpy(), truth[exact].to_numpy())
    assert (projected["purchase_growth"] == -1).all()
    assert np.all(projected["spend_q1"] == 0)  # 120 days later, the last quarter is empty

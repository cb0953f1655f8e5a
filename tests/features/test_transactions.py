from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from valuecube.features.transactions import (
    HISTORY_COLUMNS,
    customer_features,
    holdout_only_customers,
)

CDNOW = Path(__file__).resolve().parents[2] / "data" / "cdnow_master.txt"
T = pd.Timestamp


def _tiny_log() -> pd.DataFrame:
    rows = [
        # customer, date, quantity, amount (deliberately not in id/date order)
        ("C", "2024-01-09", 2.0, 18.0),
        ("A", "2024-01-01", 1.0, 10.0),
        ("B", "2024-01-08", 3.0, 30.0),
        ("A", "2024-01-05", 1.0, 20.0),
        ("D", "2024-01-11", 1.0, 9.0),  # holdout-only customer
        ("A", "2024-01-01", 2.0, 5.0),  # second row on the same day
        ("C", "2024-01-03", 1.0, 12.0),
        ("A", "2024-01-12", 1.0, 7.0),
        ("C", "2024-01-10", 1.0, 4.0),
        ("A", "2024-01-12", 1.0, 3.0),
        ("C", "2024-01-20", 1.0, 50.0),
        ("A", "2024-01-15", 1.0, 4.0),
        ("A", "2024-02-01", 1.0, 100.0),  # after holdout_end: ignored
    ]
    log = pd.DataFrame(rows, columns=["customer_id", "date", "quantity", "amount"])
    log["date"] = pd.to_datetime(log["date"])
    return log


def test_tiny_log_by_hand() -> None:
    # window_start defaults to 2024-01-01; window length 9 days, midpoint
    # 2024-01-05 12:00, so the first half is Jan 1..5 and the second Jan 6..10.
    feats = customer_features(_tiny_log(), T("2024-01-10"), holdout_end=T("2024-01-31"))
    expected = pd.DataFrame(
        {
            "recency_days": [5.0, 2.0, 0.0],
            "frequency": [2, 1, 3],
            "repeat_frequency": [1, 0, 2],
            "monetary_total": [35.0, 30.0, 34.0],
            "monetary_avg": [17.5, 30.0, 34.0 / 3],
            "repeat_monetary_avg": [20.0, 0.0, 11.0],
            "quantity_total": [4.0, 3.0, 4.0],
            "tenure_days": [9.0, 2.0, 7.0],
            "first_to_last_days": [4.0, 0.0, 7.0],
            "interpurchase_days": [4.0, 2.0, 3.5],
            "purchase_growth": [-1.0, 1.0, (22.0 - 12.0) / 34.0],
            "repeat_rate": [0.5, 0.0, 2.0 / 3.0],
            "churn": [0, 1, 0],
            "future_spend": [14.0, 0.0, 50.0],
            "future_purchases": [2, 0, 1],
        },
        index=pd.Index(["A", "B", "C"], name="customer_id"),
    )
    pd.testing.assert_frame_equal(feats[expected.columns], expected, check_index_type=False)
    assert set(feats.columns) == set(expected.columns) | set(HISTORY_COLUMNS)
    assert feats["frequency"].dtype == np.int64
    assert feats["churn"].dtype == np.int64
    assert feats["future_purchases"].dtype == np.int64

    assert list(holdout_only_customers(_tiny_log(), T("2024-01-10"))) == ["D"]
    assert holdout_only_customers(_tiny_log(), T("2024-01-10")).name == "customer_id"


def test_tiny_log_window_start_and_no_holdout() -> None:
    log = _tiny_log()
    feats = customer_features(log, T("2024-01-10"), window_start=T("2024-01-04"))
    assert "churn" not in feats.columns
    # A keeps only its Jan 5 purchase; window Jan 4..10 (midpoint Jan 7 00:00).
    a = feats.loc["A"]
    assert a["frequency"] == 1 and a["monetary_total"] == 20.0
    assert a["tenure_days"] == 5.0 and a["interpurchase_days"] == 5.0
    assert a["purchase_growth"] == -1.0
    # C keeps Jan 9 and Jan 10, both in the second half.
    assert feats.loc["C", "frequency"] == 2 and feats.loc["C", "purchase_growth"] == 1.0
    # A one-day window with no purchase in it: everyone who buys later is
    # holdout-only, including A whose Jan 1 purchase is before the window.
    everyone = ["A", "B", "C", "D"]
    assert list(holdout_only_customers(log, T("2024-01-02"), T("2024-01-02"))) == everyone
    assert list(holdout_only_customers(log, T("2024-01-10"), T("2024-01-04"))) == ["D"]


def test_quarterly_history_by_hand() -> None:
    """Quarters are 91-day periods back from as_of, most recent first; days are distinct days."""
    rows = [
        ("A", "2024-12-31", 10.0),  # q1: (Oct 1, Dec 31]
        ("A", "2024-12-31", 5.0),  # same day: one purchase day
        ("A", "2024-10-01", 7.0),  # 91 days before: q2
        ("A", "2024-01-05", 3.0),  # 361 days before: q4
        ("A", "2023-12-01", 100.0),  # more than a year before: in no quarter
        ("B", "2024-07-01", 20.0),  # 183 days before: q3
    ]
    log = pd.DataFrame(rows, columns=["customer_id", "date", "amount"]).assign(quantity=1.0)
    log["date"] = pd.to_datetime(log["date"])
    feats = customer_features(log, T("2024-12-31"))
    spend = feats[[f"spend_q{q}" for q in range(1, 5)]].to_numpy()
    days = feats[[f"purchase_days_q{q}" for q in range(1, 5)]].to_numpy()
    assert_allclose(spend, [[15.0, 7.0, 0.0, 3.0], [0.0, 0.0, 20.0, 0.0]])
    assert_allclose(days, [[1, 1, 0, 1], [0, 0, 1, 0]])
    assert_allclose(feats["window_days"], [397.0, 397.0])  # 2023-12-01 .. 2024-12-31


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    log = pd.read_csv(CDNOW, sep=r"\s+", dtype={"customer_id": str, "date": str})
    log = log.rename(columns={"number_of_cds": "quantity", "dollar_value": "amount"})
    log["date"] = pd.to_datetime(log["date"], format="%Y%m%d")
    log["quantity"] = log["quantity"].astype(float)
    return log


AS_OF, HOLDOUT_END, WINDOW_START = T("1997-09-30"), T("1998-06-30"), T("1997-01-01")


def test_cdnow_against_pandas_reference(cdnow: pd.DataFrame) -> None:
    feats = customer_features(cdnow, AS_OF, window_start=WINDOW_START, holdout_end=HOLDOUT_END)
    calib = cdnow[(cdnow["date"] >= WINDOW_START) & (cdnow["date"] <= AS_OF)]
    assert len(feats) == calib["customer_id"].nunique() == 18_856
    assert feats.index.is_monotonic_increasing and feats.index.is_unique
    assert feats.index[0] == "00001"  # leading zeros kept

    ref = calib.groupby("customer_id").agg(
        monetary_total=("amount", "sum"), frequency=("date", "nunique"), last=("date", "max")
    )
    ref = ref.loc[feats.index]
    assert_allclose(feats["monetary_total"], ref["monetary_total"])
    assert_allclose(feats["frequency"], ref["frequency"])
    assert_allclose(feats["recency_days"], (AS_OF - ref["last"]).dt.days)

    holdout = cdnow[(cdnow["date"] > AS_OF) & (cdnow["date"] <= HOLDOUT_END)]
    future = holdout.groupby("customer_id")["amount"].sum().reindex(feats.index, fill_value=0.0)
    assert_allclose(feats["future_spend"], future)
    assert_allclose(feats["churn"], (future == 0).astype(int))
    assert 0.3 < feats["churn"].mean() < 0.9
    assert feats["purchase_growth"].between(-1, 1).all()
    assert not feats.isna().any().any()


def test_customer_alone_equals_inside_whole_log(cdnow: pd.DataFrame) -> None:
    kwargs = {"window_start": WINDOW_START, "holdout_end": HOLDOUT_END}
    full = customer_features(cdnow, AS_OF, **kwargs)
    busiest = cdnow["customer_id"].value_counts().index[0]
    for cid in ["00001", "00004", busiest, full.index[-1]]:
        alone = customer_features(cdnow[cdnow["customer_id"] == cid], AS_OF, **kwargs)
        pd.testing.assert_frame_equal(alone, full.loc[[cid]], check_exact=True)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"as_of": T("2023-12-31"), "window_start": T("2024-01-01")}, "before window_start"),
        ({"as_of": T("2023-12-31")}, "before window_start"),
        ({"as_of": T("2024-01-10"), "holdout_end": T("2024-01-10")}, "must be after as_of"),
        ({"as_of": T("2024-01-10"), "holdout_end": T("2024-01-05")}, "must be after as_of"),
    ],
)
def test_invalid_windows_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        customer_features(_tiny_log(), **kwargs)


@pytest.mark.parametrize("column", ["customer_id", "date", "quantity", "amount"])
def test_missing_column_raises(column: str) -> None:
    log = _tiny_log().drop(columns=column)
    with pytest.raises(ValueError, match=f"missing required column.*{column}"):
        customer_features(log, T("2024-01-10"))
    with pytest.raises(ValueError, match="missing required column"):
        holdout_only_customers(log, T("2024-01-10"))


def test_non_datetime_date_raises() -> None:
    log = _tiny_log().assign(date=lambda d: d["date"].dt.strftime("%Y%m%d"))
    with pytest.raises(ValueError, match="datetime64"):
        customer_features(log, T("2024-01-10"))

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from valuecube.features.clv import (
    BetaGeoValue,
    clv_profit,
    clv_revenue,
    customer_spend_share_clv,
    spend_share_path,
)

CDNOW = Path(__file__).resolve().parents[2] / "data" / "cdnow_master.txt"
CALIBRATION_END = pd.Timestamp("1997-09-30")
HOLDOUT_END = pd.Timestamp("1998-06-30")

S0 = (0.6, 0.3, 0.1)
P = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.25, 0.15, 0.6]]


# --- deterministic models (docs/methods.md §2.6 checks) -------------------------------------------


def test_revenue_model_check():
    assert clv_revenue(500, years=5, discount_rate=0.09) == pytest.approx(1944.83, abs=5e-3)


@pytest.mark.parametrize(
    ("revenue", "cost", "first_purchase", "acquisition_cost", "expected"),
    [
        (500, 200, 0.0, 0.0, 1166.90),
        (450, 100, 0.0, 0.0, 1361.38),
        (500, 10, 2000, 400, 3505.93),
    ],
)
def test_profit_model_checks(revenue, cost, first_purchase, acquisition_cost, expected):
    clv = clv_profit(revenue, cost, 5, 0.09, first_purchase, acquisition_cost)
    assert isinstance(clv, float)
    assert clv == pytest.approx(expected, abs=5e-3)


def test_profit_model_without_cost_is_the_revenue_model():
    assert clv_profit(500, 0, 5, 0.09, 100, 30) == clv_revenue(500, 5, 0.09, 100, 30)


def test_per_customer_series_and_yearly_matrix():
    revenue = pd.Series([500.0, 450.0], index=["a", "b"])
    clv = clv_profit(revenue, np.array([200.0, 100.0]), 5, 0.09)
    assert isinstance(clv, np.ndarray)
    np.testing.assert_allclose(clv, [1166.90, 1361.38], atol=5e-3)

    yearly = np.array([[500.0] * 5, [100.0, 200.0, 0.0, 0.0, 0.0]])
    expected_second = 100 / 1.09 + 200 / 1.09**2
    np.testing.assert_allclose(clv_revenue(yearly, 5, 0.09), [1944.83, expected_second], atol=5e-3)
    # Per-customer constant revenue minus a per-year cost matrix.
    np.testing.assert_allclose(
        clv_profit(np.array([500.0, 450.0]), np.full((2, 5), 100.0), 5, 0.09),
        [clv_revenue(400, 5, 0.09), clv_revenue(350, 5, 0.09)],
    )


def test_clv_rejects_bad_shapes_and_arguments():
    with pytest.raises(ValueError, match="5 columns"):
        clv_revenue(np.ones((2, 4)), 5, 0.09)
    with pytest.raises(ValueError, match="years"):
        clv_revenue(500, -1, 0.09)
    with pytest.raises(ValueError, match="discount_rate"):
        clv_revenue(500, 5, -1.0)


# --- spend-share model --------------------------------------------------------------------


def test_spend_share_path_check():
    path = spend_share_path(S0, P, periods=2)
    np.testing.assert_allclose(path, [S0, (0.475, 0.375, 0.15), (0.4075, 0.4175, 0.175)])


def test_customer_spend_share_clv_matches_the_brand_check():
    """Per customer, each brand's CLV is the population check's (docs/methods.md §2.6)."""
    shares = np.array([S0, S0, [1.0, 0.0, 0.0]])
    for brand, expected in enumerate((689.38, 497.72, 192.45)):
        got = customer_spend_share_clv(shares, P, 2, np.ones(3), np.full(3, 500.0), 0.09, brand)
        assert round(float(got[0]), 2) == expected and got[0] == got[1]
    only_a = customer_spend_share_clv(shares[2:], P, 2, [2.0], [100.0], 0.0, 0)
    assert only_a[0] == pytest.approx(2 * 100 * (1 + 0.7 + 0.7 * 0.7 + 0.2 * 0.1 + 0.1 * 0.25))


@pytest.mark.parametrize(
    ("share", "matrix", "message"),
    [
        (S0, [[0.7, 0.3], [0.2, 0.8], [0.5, 0.5]], "square"),
        (S0, [[1.2, -0.2, 0.0], [0.1, 0.8, 0.1], [0.25, 0.15, 0.6]], "non-negative"),
        (S0, [[0.7, 0.2, 0.2], [0.1, 0.8, 0.1], [0.25, 0.15, 0.6]], r"rows \[0\] sum to"),
        ((0.6, 0.3, 0.2), P, "initial_share must sum to 1"),
        ((0.6, 0.4), P, "one share per brand"),
    ],
)
def test_spend_share_validation(share, matrix, message):
    with pytest.raises(ValueError, match=message):
        spend_share_path(share, matrix, 2)


# --- BG/NBD + Gamma-Gamma on the real CDNOW log --------------------------------------------


@pytest.fixture(scope="module")
def cdnow_daily():
    """CDNOW purchases summed per customer and day."""
    tx = pd.read_csv(CDNOW, sep=r"\s+", dtype={"customer_id": str})
    tx["date"] = pd.to_datetime(tx["date"].astype(str), format="%Y%m%d")
    return tx.groupby(["customer_id", "date"], as_index=False)["dollar_value"].sum()


@pytest.fixture(scope="module")
def calibration(cdnow_daily):
    days = cdnow_daily[cdnow_daily["date"] <= CALIBRATION_END].sort_values("date")
    by_customer = days.groupby("customer_id")
    first, last = by_customer["date"].min(), by_customer["date"].max()
    repeats = by_customer.size() - 1
    repeat_spend = by_customer["dollar_value"].sum() - by_customer["dollar_value"].first()
    return pd.DataFrame(
        {
            "repeat_frequency": repeats,
            "first_to_last_days": (last - first).dt.days,
            "tenure_days": (CALIBRATION_END - first).dt.days,
            "repeat_monetary_avg": (repeat_spend / repeats.where(repeats > 0)).fillna(0.0),
        }
    )


@pytest.fixture(scope="module")
def holdout_days(cdnow_daily, calibration):
    in_holdout = cdnow_daily["date"].between(CALIBRATION_END, HOLDOUT_END, inclusive="right")
    counts = cdnow_daily[in_holdout].groupby("customer_id").size()
    return counts.reindex(calibration.index, fill_value=0)


@pytest.fixture(scope="module")
def fitted(calibration):
    return BetaGeoValue().fit(calibration)


@pytest.fixture(scope="module")
def scores(fitted, calibration):
    return fitted.transform(calibration)


def test_fit_learns_both_models(fitted, calibration):
    assert set(fitted.bgf_.params_.index) == {"r", "alpha", "a", "b"}
    assert (fitted.bgf_.params_ > 0).all()
    repeat_buyers = (calibration["repeat_frequency"] > 0) & (calibration["repeat_monetary_avg"] > 0)
    assert len(fitted.ggf_.data) == repeat_buyers.sum()
    assert fitted.ggf_.params_["q"] > 1  # positive population mean spend


def test_scores_on_cdnow(scores, calibration, holdout_days):
    assert list(scores.columns) == ["expected_purchases", "p_alive", "expected_spend", "clv"]
    assert scores.index.equals(calibration.index)
    assert np.isfinite(scores.to_numpy()).all()
    assert scores["p_alive"].between(0, 1).all()
    assert (scores["expected_purchases"] >= 0).all()
    assert (scores["expected_spend"] > 0).all()
    assert (scores["clv"] >= 0).all()
    rho = scores["expected_purchases"].corr(holdout_days, method="spearman")
    assert rho > 0.3


def test_total_expected_purchases_track_the_holdout(scores, holdout_days):
    # Repeat purchase days in the 39-week holdout: the model's total is in the right range.
    assert scores["expected_purchases"].sum() == pytest.approx(holdout_days.sum(), rel=0.25)


def test_customer_scored_alone_equals_scored_in_batch(fitted, calibration, scores):
    heavy = calibration["repeat_frequency"].idxmax()
    one_off = calibration.index[calibration["repeat_frequency"].eq(0)][0]
    for customer in (heavy, one_off, calibration.index[len(calibration) // 2]):
        alone = fitted.transform(calibration.loc[[customer]])
        pd.testing.assert_frame_equal(alone, scores.loc[[customer]], check_exact=True)


def test_clv_grows_with_horizon_and_falls_with_discounting(fitted, calibration):
    sample = calibration.iloc[:200]
    base = fitted.transform(sample)["clv"]
    longer = copy.deepcopy(fitted).set_params(clv_months=24)
    assert (longer.transform(sample)["clv"] >= base).all()
    steeper = copy.deepcopy(fitted).set_params(monthly_discount_rate=0.05)
    assert (steeper.transform(sample)["clv"] <= base).all()


def test_time_unit_only_changes_units(calibration):
    sample = calibration.iloc[::10]
    weeks = BetaGeoValue().fit(sample).transform(sample)
    days = BetaGeoValue(time_unit_days=1).fit(sample).transform(sample)
    np.testing.assert_allclose(days["p_alive"], weeks["p_alive"], rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(
        days["expected_purchases"], weeks["expected_purchases"], rtol=1e-3, atol=1e-6
    )


def test_estimator_contract():
    model = BetaGeoValue(horizon_days=180)
    assert clone(model).get_params()["horizon_days"] == 180
    assert not hasattr(model, "bgf_")
    with pytest.raises(NotFittedError):
        model.transform(pd.DataFrame())


def test_invalid_parameters_and_inputs(calibration):
    with pytest.raises(ValueError, match="time_unit_days"):
        BetaGeoValue(time_unit_days=3).fit(calibration)
    with pytest.raises(ValueError, match="missing columns"):
        BetaGeoValue().fit(calibration.drop(columns="tenure_days"))
    bad = calibration.head(50).copy()
    bad.iloc[0, bad.columns.get_loc("first_to_last_days")] = 10_000
    with pytest.raises(ValueError, match="first_to_last_days > tenure_days"):
        BetaGeoValue().fit(bad)

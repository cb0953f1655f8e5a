import numpy as np
import pandas as pd
import pytest

from valuecube.features.clv import (
    clv_profit,
    clv_revenue,
    customer_spend_share_clv,
    spend_share_path,
)

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

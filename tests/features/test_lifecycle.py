import numpy as np
import pytest

from valuecube.features.lifecycle import LIFECYCLE_STAGES, lifecycle_stage


def test_stages_are_in_lifecycle_order():
    assert LIFECYCLE_STAGES == ("acquisition", "development", "maturity", "decline")


@pytest.mark.parametrize(
    ("tenure", "trend", "stage"),
    [
        (1.0, 0.5, "acquisition"),  # new customers are acquisition whatever their trend
        (1.0, -0.5, "acquisition"),
        (12.0, -0.2, "decline"),
        (12.0, 0.2, "development"),
        (12.0, 0.0, "maturity"),
        (12.0, np.nan, "maturity"),
    ],
)
def test_each_branch(tenure, trend, stage):
    assert lifecycle_stage(tenure, trend, new_below=3) == stage


@pytest.mark.parametrize(
    ("tenure", "trend", "stage"),
    [
        (3.0, 0.0, "maturity"),  # tenure == new_below is no longer new
        (np.nextafter(3.0, 0.0), 0.0, "acquisition"),
        (12.0, -0.05, "maturity"),  # trend == decline_below is not decline
        (12.0, np.nextafter(-0.05, -1.0), "decline"),
        (12.0, 0.05, "maturity"),  # trend == growth_above is not development
        (12.0, np.nextafter(0.05, 1.0), "development"),
    ],
)
def test_boundaries_are_strict(tenure, trend, stage):
    assert lifecycle_stage(tenure, trend, new_below=3.0) == stage


def test_vectorised_over_customers_with_custom_thresholds():
    tenure = np.array([0, 6, 6, 6, 6, 6])
    trend = np.array([0.9, -0.11, -0.09, 0.1, 0.21, np.nan])
    stages = lifecycle_stage(tenure, trend, new_below=1, growth_above=0.2, decline_below=-0.1)
    np.testing.assert_array_equal(
        stages,
        ["acquisition", "decline", "maturity", "maturity", "development", "maturity"],
    )
    assert set(stages) <= set(LIFECYCLE_STAGES)


@pytest.mark.parametrize("decline_below", [0.05, 0.1])
def test_thresholds_must_be_ordered(decline_below):
    with pytest.raises(ValueError, match=r"decline_below .* must be less than growth_above"):
        lifecycle_stage([5.0], [0.0], new_below=3, growth_above=0.05, decline_below=decline_below)


def test_tenure_must_be_finite():
    with pytest.raises(ValueError, match="tenure"):
        lifecycle_stage([5.0, np.nan], [0.0, 0.0], new_below=3)

"""Customer lifecycle stage (docs/methods.md §2.7)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["LIFECYCLE_STAGES", "lifecycle_stage"]

LIFECYCLE_STAGES = ("acquisition", "development", "maturity", "decline")


def lifecycle_stage(
    tenure: ArrayLike,
    trend: ArrayLike,
    *,
    new_below: float,
    growth_above: float = 0.05,
    decline_below: float = -0.05,
) -> np.ndarray:
    """Lifecycle stage per customer from tenure and the trend of spend.

    Customers move acquisition → development → maturity → decline. The first
    matching rule wins:

    1) ``tenure < new_below`` → acquisition;
    2) ``trend < decline_below`` → decline;
    3) ``trend > growth_above`` → development;
    4) otherwise (including a NaN trend: stable or unknown) → maturity.

    Parameters
    ----------
    tenure : array_like
        Time since the first purchase, in the unit of ``new_below``.
    trend : array_like
        Trend of spend (e.g. relative growth per period); broadcast with ``tenure``.
    new_below : float
        Tenure under which a customer is still being acquired.
    growth_above, decline_below : float
        Trend thresholds; ``decline_below`` must be below ``growth_above``.

    Returns
    -------
    ndarray of str
        One of :data:`LIFECYCLE_STAGES` per customer.

    Raises
    ------
    ValueError
        If ``decline_below >= growth_above`` or a tenure is not finite.
    """
    if not decline_below < growth_above:
        raise ValueError(
            f"decline_below ({decline_below}) must be less than growth_above ({growth_above})"
        )
    tenure = np.asarray(tenure, dtype=float)
    trend = np.asarray(trend, dtype=float)
    if not np.all(np.isfinite(tenure)):
        raise ValueError("tenure must be finite for every customer")
    acquisition, development, maturity, decline = LIFECYCLE_STAGES
    return np.select(
        [tenure < new_below, trend < decline_below, trend > growth_above],
        [acquisition, decline, development],
        default=maturity,
    )

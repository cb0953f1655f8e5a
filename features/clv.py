"""Customer lifetime value (docs/methods.md §2.6).

Deterministic models over per-customer factors (revenue, profit, spend share;
each a ``clv.method`` of the dataset config). The probabilistic model for
transaction logs lives in :mod:`features.btyd`; ``BetaGeoValue`` is re-exported
here for the value cube.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from numpy.typing import ArrayLike

from valuecube.features.btyd import BtydValue as BetaGeoValue

__all__ = [
    "BetaGeoValue",
    "clv_profit",
    "clv_revenue",
    "customer_spend_share_clv",
    "spend_share_path",
]

_ROW_SUM_TOLERANCE = 1e-9


def _discount_factors(discount_rate: float, periods: np.ndarray) -> np.ndarray:
    """1 / (1 + r)^t for each period t."""
    if not discount_rate > -1:
        raise ValueError(f"discount_rate must be greater than -1, got {discount_rate}")
    return (1.0 + discount_rate) ** -np.asarray(periods, dtype=float)


def _customer_by_year(values: ArrayLike, years: int, name: str) -> np.ndarray:
    """Shape yearly amounts as customers × years (a column when constant per year)."""
    amounts = np.asarray(values, dtype=float)
    if amounts.ndim == 0:
        return amounts.reshape(1, 1)
    if amounts.ndim == 1:
        return amounts[:, np.newaxis]
    if amounts.ndim == 2 and amounts.shape[1] == years:
        return amounts
    raise ValueError(
        f"{name} must be a scalar, one value per customer or a customers × years array "
        f"with {years} columns; got shape {amounts.shape}"
    )


def _discounted_clv(
    yearly_revenue: ArrayLike,
    yearly_cost: ArrayLike,
    years: int,
    discount_rate: float,
    first_purchase: ArrayLike,
    acquisition_cost: ArrayLike,
) -> np.ndarray | float:
    """(P0 − C0) + Σ_{t=1..n} (I_t − Cs_t) / (1+r)^t, shared by both CLV models."""
    if isinstance(years, bool) or not isinstance(years, Integral) or years < 0:
        raise ValueError(f"years must be a non-negative integer, got {years!r}")
    net = _customer_by_year(yearly_revenue, years, "yearly_revenue") - _customer_by_year(
        yearly_cost, years, "yearly_cost"
    )
    net = np.broadcast_to(net, (net.shape[0], years))
    initial_margin = np.asarray(first_purchase, dtype=float) - np.asarray(
        acquisition_cost, dtype=float
    )
    clv = initial_margin + net @ _discount_factors(discount_rate, np.arange(1, years + 1))
    scalar_inputs = all(
        np.ndim(v) == 0 for v in (yearly_revenue, yearly_cost, first_purchase, acquisition_cost)
    )
    return float(clv[0]) if scalar_inputs else clv


def clv_revenue(
    yearly_revenue: ArrayLike,
    years: int,
    discount_rate: float,
    first_purchase: ArrayLike = 0.0,
    acquisition_cost: ArrayLike = 0.0,
) -> np.ndarray | float:
    """Revenue model: CLV = (P0 − C0) + Σ_{t=1..n} I_t / (1+r)^t.

    Parameters
    ----------
    yearly_revenue : scalar, array of shape (n_customers,) or (n_customers, years)
        I_t: constant yearly revenue (overall or per customer), or one column per year.
    years : int
        n, the number of future years.
    discount_rate : float
        r, the yearly discount rate (0.09 for 9 %).
    first_purchase, acquisition_cost : scalar or array of shape (n_customers,)
        P0 and C0.

    Returns
    -------
    float or ndarray of shape (n_customers,)
        A float when every input is a scalar.

    Examples
    --------
    >>> round(clv_revenue(500, years=5, discount_rate=0.09), 2)
    1944.83
    """
    return _discounted_clv(
        yearly_revenue, 0.0, years, discount_rate, first_purchase, acquisition_cost
    )


def clv_profit(
    yearly_revenue: ArrayLike,
    yearly_cost: ArrayLike,
    years: int,
    discount_rate: float,
    first_purchase: ArrayLike = 0.0,
    acquisition_cost: ArrayLike = 0.0,
) -> np.ndarray | float:
    """Profit model: CLV = (P0 − C0) + Σ_{t=1..n} (I_t − Cs_t) / (1+r)^t.

    Parameters
    ----------
    yearly_revenue, yearly_cost : scalar, array of shape (n_customers,) or (n_customers, years)
        I_t and Cs_t (cost to serve), shaped as in :func:`clv_revenue`.
    years : int
        n, the number of future years.
    discount_rate : float
        r, the yearly discount rate.
    first_purchase, acquisition_cost : scalar or array of shape (n_customers,)
        P0 and C0.

    Returns
    -------
    float or ndarray of shape (n_customers,)
        A float when every input is a scalar.

    Examples
    --------
    >>> round(clv_profit(500, 200, years=5, discount_rate=0.09), 2)
    1166.9
    """
    return _discounted_clv(
        yearly_revenue, yearly_cost, years, discount_rate, first_purchase, acquisition_cost
    )


def _validated_switching(
    initial_share: ArrayLike, switching_matrix: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    share = np.asarray(initial_share, dtype=float)
    switching = np.asarray(switching_matrix, dtype=float)
    if switching.ndim != 2 or switching.shape[0] != switching.shape[1]:
        raise ValueError(f"switching_matrix must be square, got shape {switching.shape}")
    if not np.all(np.isfinite(switching)) or np.any(switching < 0):
        raise ValueError("switching_matrix must hold finite, non-negative probabilities")
    row_sums = switching.sum(axis=1)
    bad_rows = np.flatnonzero(np.abs(row_sums - 1.0) > _ROW_SUM_TOLERANCE)
    if bad_rows.size:
        raise ValueError(
            f"each row of switching_matrix must sum to 1; rows {bad_rows.tolist()} "
            f"sum to {row_sums[bad_rows].tolist()}"
        )
    if share.shape != (switching.shape[0],):
        raise ValueError(
            f"initial_share must have one share per brand ({switching.shape[0]}), "
            f"got shape {share.shape}"
        )
    if not np.all(np.isfinite(share)) or np.any(share < 0):
        raise ValueError("initial_share must hold finite, non-negative shares")
    if abs(share.sum() - 1.0) > _ROW_SUM_TOLERANCE:
        raise ValueError(f"initial_share must sum to 1, got {share.sum()}")
    return share, switching


def spend_share_path(
    initial_share: ArrayLike, switching_matrix: ArrayLike, periods: int
) -> np.ndarray:
    """Brand spend shares under a Markov switching model: S_{t+1} = S_t·P.

    Parameters
    ----------
    initial_share : array of shape (n_brands,)
        S_0, summing to 1.
    switching_matrix : array of shape (n_brands, n_brands)
        P, row-stochastic: P[i, j] is the probability of moving from brand i to j.
    periods : int
        T, the number of transitions.

    Returns
    -------
    ndarray of shape (periods + 1, n_brands)
        Row t is S_t.

    Raises
    ------
    ValueError
        If P is not square, non-negative and row-stochastic, or S_0 does not sum to 1.
    """
    if isinstance(periods, bool) or not isinstance(periods, Integral) or periods < 0:
        raise ValueError(f"periods must be a non-negative integer, got {periods!r}")
    share, switching = _validated_switching(initial_share, switching_matrix)
    path = np.empty((periods + 1, share.size))
    path[0] = share
    for t in range(periods):
        path[t + 1] = path[t] @ switching
    return path


def customer_spend_share_clv(
    shares: ArrayLike,
    switching_matrix: ArrayLike,
    periods: int,
    frequency: ArrayLike,
    revenue: ArrayLike,
    discount_rate: float,
    brand: int = 0,
) -> np.ndarray:
    """Per-customer CLV of one brand under the spend-share model (the ``spend_share`` clv method).

    Each customer's spend shares S_0 move as S_{t+1} = S_t·P; with F (purchases
    per period) and R (revenue per purchase) constant per customer,
    CLV = F·R·Σ_{t=0..T} S_{brand,t} / (1+r)^t, with S_t from :func:`spend_share_path`.

    Parameters
    ----------
    shares : array of shape (n_customers, n_brands)
        Each customer's current shares of spend (rows sum to 1).
    switching_matrix : array of shape (n_brands, n_brands)
        P, row-stochastic.
    periods : int
        T.
    frequency, revenue : array of shape (n_customers,)
        F and R per customer.
    discount_rate : float
        r per period.
    brand : int
        The brand whose CLV is returned (ours).

    Returns
    -------
    ndarray of shape (n_customers,)
    """
    s = np.asarray(shares, dtype=float)
    if s.ndim != 2:
        raise ValueError(f"shares must be customers × brands, got shape {s.shape}")
    # M[i] = Σ_t S_t / (1+r)^t starting from all spend on brand i; S_0·M is then every
    # customer's discounted path at once (a loop over brands, not customers)
    discount = _discount_factors(discount_rate, np.arange(periods + 1))
    start = np.eye(s.shape[1])
    m = np.stack([discount @ spend_share_path(row, switching_matrix, periods) for row in start])
    freq, rev = np.asarray(frequency, dtype=float), np.asarray(revenue, dtype=float)
    return freq * rev * (s @ m[:, brand])

"""Per-customer RFM-style features from a transaction log.

The computation is fully vectorised: customer ids are factorised once, dates
become integer day numbers, per-customer sums are ``np.bincount`` calls and
distinct purchase days come from one sort of a combined ``(customer, day)``
integer key. There is no Python-level loop over customers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "HISTORY_COLUMNS",
    "HISTORY_QUARTERS",
    "QUARTER_DAYS",
    "REQUIRED_COLUMNS",
    "customer_features",
    "holdout_only_customers",
]

REQUIRED_COLUMNS: tuple[str, ...] = ("customer_id", "date", "quantity", "amount")
QUARTER_DAYS = 91
"""Length of one history period ("quarter") in days: 13 weeks."""
HISTORY_QUARTERS = 4
"""Quarters of purchase history per customer: the last year before ``as_of``."""
HISTORY_COLUMNS: tuple[str, ...] = (
    "window_days",
    *(f"spend_q{q}" for q in range(1, HISTORY_QUARTERS + 1)),
    *(f"purchase_days_q{q}" for q in range(1, HISTORY_QUARTERS + 1)),
)
"""The purchase-history columns of :func:`customer_features` (inputs of the forecasting network)."""

_INT32_MAX = np.iinfo(np.int32).max


def _check_log(log: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in log.columns]
    if missing:
        raise ValueError(
            f"transaction log is missing required column(s) {missing}; "
            f"expected {list(REQUIRED_COLUMNS)}, got {list(log.columns)}"
        )
    if not pd.api.types.is_datetime64_dtype(log["date"].dtype):
        raise ValueError(
            f"column 'date' must be a tz-naive datetime64 column, got dtype {log['date'].dtype}"
        )


def _day(ts: pd.Timestamp) -> int:
    """Day number (days since 1970-01-01) of a timestamp, truncated to the calendar day."""
    return int(np.datetime64(pd.Timestamp(ts).to_datetime64(), "D").astype(np.int64))


def _log_days(log: pd.DataFrame) -> np.ndarray:
    return log["date"].to_numpy(dtype="datetime64[D]").view(np.int64)


def _resolve_window(
    days: np.ndarray, as_of: pd.Timestamp, window_start: pd.Timestamp | None
) -> tuple[int, int]:
    as_of_d = _day(as_of)
    if window_start is not None:
        start_d = _day(window_start)
    elif days.size:
        start_d = int(days.min())
    else:
        start_d = as_of_d
    if as_of_d < start_d:
        raise ValueError(
            f"as_of ({pd.Timestamp(as_of).date()}) is before window_start "
            f"({np.datetime64(start_d, 'D')}); the calibration window would be empty"
        )
    return start_d, as_of_d


def _sum_by(cust: np.ndarray, weights: np.ndarray, n_customers: int) -> np.ndarray:
    """Per-customer float64 sums (``np.bincount`` returns int64 for empty input)."""
    return np.bincount(cust, weights=weights, minlength=n_customers).astype(np.float64, copy=False)


def _distinct_days(
    cust: np.ndarray, day: np.ndarray, span: int, n_customers: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct ``(customer, day)`` pairs, summarised per customer.

    ``cust`` holds customer ranks in ``[0, n_customers)``, ``day`` day offsets in
    ``[0, span)``. Returns ``(count, first, last)``: the number of distinct days
    and the first/last day offset per customer (first/last are meaningless where
    count is 0).
    """
    key_dtype = np.int32 if n_customers * span <= _INT32_MAX else np.int64
    key = cust.astype(key_dtype)
    key *= span
    key += day.astype(key_dtype)
    key.sort()
    keep = np.ones(key.size, dtype=bool)
    np.not_equal(key[1:], key[:-1], out=keep[1:])
    key = key[keep]
    key_cust = key // span
    key_day = key - key_cust * span
    count = np.bincount(key_cust, minlength=n_customers)
    end = np.cumsum(count) - 1
    start = end - count + 1
    valid = count > 0
    first = np.zeros(n_customers, dtype=np.int64)
    last = np.zeros(n_customers, dtype=np.int64)
    first[valid] = key_day[start[valid]]
    last[valid] = key_day[end[valid]]
    return count, first, last


def _quarterly_history(
    cust: np.ndarray, day: np.ndarray, amt: np.ndarray, last_day: int, n_customers: int
) -> dict[str, np.ndarray]:
    """Spend and distinct purchase days per quarter before ``as_of`` (:func:`customer_features`).

    ``day`` holds day offsets from the window start and ``last_day`` the offset
    of ``as_of``; quarter 0 is the most recent.
    """
    quarter = (last_day - day) // QUARTER_DAYS
    recent = quarter < HISTORY_QUARTERS
    cust, day, amt, quarter = cust[recent], day[recent], amt[recent], quarter[recent]
    slot = cust * HISTORY_QUARTERS + quarter
    spend = _sum_by(slot, amt, n_customers * HISTORY_QUARTERS).reshape(n_customers, -1)
    pairs = np.unique(cust.astype(np.int64) * (last_day + 1) + day)
    pair_slot = (pairs // (last_day + 1)) * HISTORY_QUARTERS + (
        last_day - pairs % (last_day + 1)
    ) // QUARTER_DAYS
    days = _sum_by(pair_slot, np.ones(pairs.size), n_customers * HISTORY_QUARTERS)
    days = days.reshape(n_customers, -1)
    out = {}
    for q in range(HISTORY_QUARTERS):
        out[f"spend_q{q + 1}"] = spend[:, q].copy()
    for q in range(HISTORY_QUARTERS):
        out[f"purchase_days_q{q + 1}"] = days[:, q].copy()
    return out


def customer_features(
    log: pd.DataFrame,
    as_of: pd.Timestamp,
    *,
    window_start: pd.Timestamp | None = None,
    holdout_end: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Compute one row of purchase features per customer.

    Parameters
    ----------
    log : pandas.DataFrame
        Validated transaction log with columns ``customer_id`` (str), ``date``
        (datetime64, day precision), ``quantity`` (float) and ``amount``
        (float >= 0). Several rows of one customer on one day are separate
        transactions but count as one purchase day.
    as_of : pandas.Timestamp
        End of the calibration window (inclusive).
    window_start : pandas.Timestamp, optional
        Start of the calibration window (inclusive); defaults to the log's first
        date. Calibration rows satisfy ``window_start <= date <= as_of``.
    holdout_end : pandas.Timestamp, optional
        End of the holdout window (inclusive). Holdout rows satisfy
        ``as_of < date <= holdout_end``. When given, the label columns below
        are added.

    All timestamps are truncated to calendar days.

    Returns
    -------
    pandas.DataFrame
        One row per customer with at least one calibration transaction, index
        ``customer_id`` sorted ascending. Customers with only holdout
        transactions are not included (see :func:`holdout_only_customers`).
        Columns (float64 unless noted; "purchase day" = distinct date with at
        least one transaction; first/last refer to calibration purchase days):

        - ``recency_days``: ``as_of - last`` in days.
        - ``frequency`` (int): number of distinct calibration purchase days.
        - ``repeat_frequency`` (int): ``frequency - 1``.
        - ``monetary_total``: sum of calibration ``amount``.
        - ``monetary_avg``: ``monetary_total / frequency`` (spend per purchase day).
        - ``repeat_monetary_avg``: spend on purchase days other than the first,
          divided by ``frequency - 1``; 0 when there is no repeat purchase.
        - ``quantity_total``: sum of calibration ``quantity``.
        - ``tenure_days``: ``as_of - first`` in days.
        - ``first_to_last_days``: ``last - first`` in days.
        - ``interpurchase_days``: ``(last - first) / (frequency - 1)``. For
          ``frequency == 1`` it is ``tenure_days``: no repeat was seen within
          the tenure, so this is a lower bound on the true inter-purchase time.
        - ``purchase_growth``: ``(S2 - S1) / (S1 + S2)``, in [-1, 1], where S1
          is the spend on dates before the window midpoint
          ``window_start + (as_of - window_start) / 2`` and S2 the spend from
          the midpoint to ``as_of``; 0 when ``S1 + S2 == 0``.
        - ``repeat_rate``: ``(frequency - 1) / frequency``.
        - ``window_days``: length of the calibration window, ``as_of - window_start + 1``
          (the same for every customer; it tells a model how long the history is).
        - ``spend_q1`` … ``spend_q4``: spend in each 91-day quarter before ``as_of``,
          most recent first: ``spend_q1`` covers ``(as_of - 91, as_of]``, ``spend_q2``
          ``(as_of - 182, as_of - 91]`` and so on (0 outside the calibration window).
        - ``purchase_days_q1`` … ``purchase_days_q4``: distinct purchase days in the
          same quarters.

        With ``holdout_end`` only:

        - ``churn`` (int): 1 if the customer has no holdout transaction, else 0.
        - ``future_spend``: sum of holdout ``amount``.
        - ``future_purchases`` (int): number of distinct holdout purchase days.

    Raises
    ------
    ValueError
        If a required column is missing or ``date`` is not datetime64, if
        ``customer_id`` has missing values, if ``as_of < window_start`` or if
        ``holdout_end <= as_of``.
    """
    _check_log(log)
    days = _log_days(log)
    start_d, as_of_d = _resolve_window(days, as_of, window_start)
    end_d = None
    if holdout_end is not None:
        end_d = _day(holdout_end)
        if end_d <= as_of_d:
            raise ValueError(
                f"holdout_end ({pd.Timestamp(holdout_end).date()}) must be after "
                f"as_of ({pd.Timestamp(as_of).date()})"
            )

    codes, uniques = pd.factorize(log["customer_id"])
    if codes.size and codes.min() < 0:
        raise ValueError("column 'customer_id' contains missing values")
    amount = log["amount"].to_numpy(dtype=np.float64)

    # Calibration rows; customers are ranked in customer_id order.
    calib = (days >= start_d) & (days <= as_of_d)
    calib_codes = codes[calib]
    present = np.flatnonzero(np.bincount(calib_codes, minlength=len(uniques)))
    order = present[np.asarray(uniques.take(present).argsort())]
    n = order.size
    rank = np.full(len(uniques), -1, dtype=np.int64)
    rank[order] = np.arange(n)

    cust = rank[calib_codes]
    del calib_codes
    day = days[calib] - start_d
    amt = amount[calib]
    qty = log["quantity"].to_numpy(dtype=np.float64)[calib]
    del calib

    frequency, first, last = _distinct_days(cust, day, as_of_d - start_d + 1, n)
    monetary_total = _sum_by(cust, amt, n)
    quantity_total = _sum_by(cust, qty, n)
    del qty
    repeat_spend = _sum_by(cust, np.where(day == first[cust], 0.0, amt), n)
    first_half = 2 * day < as_of_d - start_d
    s1 = _sum_by(cust, np.where(first_half, amt, 0.0), n)
    s2 = _sum_by(cust, np.where(first_half, 0.0, amt), n)
    history = _quarterly_history(cust, day, amt, as_of_d - start_d, n)
    del cust, day, amt, first_half

    freq_f = frequency.astype(np.float64)
    repeat = frequency - 1
    has_repeat = repeat > 0
    tenure = (as_of_d - start_d - first).astype(np.float64)
    first_to_last = (last - first).astype(np.float64)
    s_total = s1 + s2

    out: dict[str, np.ndarray] = {
        "recency_days": (as_of_d - start_d - last).astype(np.float64),
        "frequency": frequency.astype(np.int64),
        "repeat_frequency": repeat.astype(np.int64),
        "monetary_total": monetary_total,
        "monetary_avg": monetary_total / freq_f,
        "repeat_monetary_avg": np.divide(repeat_spend, repeat, out=np.zeros(n), where=has_repeat),
        "quantity_total": quantity_total,
        "tenure_days": tenure,
        "first_to_last_days": first_to_last,
        "interpurchase_days": np.divide(first_to_last, repeat, out=tenure.copy(), where=has_repeat),
        "purchase_growth": np.divide(s2 - s1, s_total, out=np.zeros(n), where=s_total > 0),
        "repeat_rate": repeat / freq_f,
        "window_days": np.full(n, float(as_of_d - start_d + 1)),
        **history,
    }

    if end_d is not None:
        hold = (days > as_of_d) & (days <= end_d)
        hold_cust = rank[codes[hold]]
        known = hold_cust >= 0
        hold_cust = hold_cust[known]
        hold_day = (days[hold] - (as_of_d + 1))[known]
        hold_amt = amount[hold][known]
        future_purchases, _, _ = _distinct_days(hold_cust, hold_day, end_d - as_of_d, n)
        out["churn"] = (future_purchases == 0).astype(np.int64)
        out["future_spend"] = _sum_by(hold_cust, hold_amt, n)
        out["future_purchases"] = future_purchases.astype(np.int64)

    index = pd.Index(uniques.take(order), name="customer_id")
    return pd.DataFrame(out, index=index)


def holdout_only_customers(
    log: pd.DataFrame, as_of: pd.Timestamp, window_start: pd.Timestamp | None = None
) -> pd.Index:
    """Customers with no calibration transaction but at least one after ``as_of``.

    Calibration is ``window_start <= date <= as_of`` as in
    :func:`customer_features` (``window_start`` defaults to the log's first
    date). These customers get no feature row, so callers should report them
    rather than lose them silently.

    Returns
    -------
    pandas.Index
        Sorted customer ids, named ``customer_id``.
    """
    _check_log(log)
    days = _log_days(log)
    start_d, as_of_d = _resolve_window(days, as_of, window_start)
    ids = log["customer_id"]
    calib_ids = pd.Index(ids[(days >= start_d) & (days <= as_of_d)].unique())
    later_ids = pd.Index(ids[days > as_of_d].unique())
    return later_ids.difference(calib_ids, sort=True).rename("customer_id")

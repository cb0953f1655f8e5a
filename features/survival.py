"""Survival for customer tables: tenure is the duration, churn the event (docs/lifetimes.md).

A survival model from scikit-survival over the customer's covariates gives
S(t) per customer; conditioning on the tenure reached so far gives
S(t | τ) = S(τ + t) / S(τ) for an active customer, and from it the
probability of still being a customer in 12 months, the expected remaining
months within a horizon, and the survival-weighted CLV
Σ_{t=1..H} m_t · S(t | τ) / (1 + r)^t (docs/methods.md §2.6b), the value cube's
``clv`` under ``clv.method: survival``.
"""

from __future__ import annotations

from collections.abc import Iterator
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from valuecube.features.columns import SMALL_ROWS, Columns, Table, floats, like, like_columns
from valuecube.features.config import DatasetConfig
from valuecube.features.factors import category_codes

__all__ = [
    "SURVIVAL_COLUMNS",
    "SurvivalValue",
    "conditional_on_tenure",
    "kaplan_meier",
    "kaplan_meier_by_group",
    "lifetime_columns",
    "lifetime_design",
    "monthly_rate",
    "survival_clv",
    "survival_on",
]

SURVIVAL_COLUMNS = ("survival_12m", "expected_remaining_months")
"""The columns a value cube with a survival model adds after its others."""
# Months at the end of the observed range the tail hazard is averaged over.
_TAIL_MONTHS = 12


def monthly_rate(yearly_rate: float) -> float:
    """The monthly discount rate equivalent to a yearly one: (1 + r)^(1/12) − 1."""
    if not yearly_rate > -1:
        raise ValueError(f"yearly_rate must be greater than -1, got {yearly_rate}")
    return (1.0 + yearly_rate) ** (1 / 12) - 1.0


def _row_sums(values: np.ndarray) -> np.ndarray:
    """Sum of each row, column by column: the same bits for a row alone or in any batch.

    (NumPy's ``sum(axis=1)`` picks its summation order by array shape.)
    """
    total = np.zeros(values.shape[0])
    for column in values.T:
        total += column
    return total


def survival_clv(
    monthly_margin: ArrayLike, conditional_survival: np.ndarray, monthly_discount_rate: float
) -> np.ndarray:
    """CLV = Σ_{t=1..H} m_t · S(t | τ) / (1 + r)^t.

    Parameters
    ----------
    monthly_margin : scalar, array of shape (n_customers,) or (n_customers, H)
        m_t: the margin per month (constant, per customer, or per customer and month).
    conditional_survival : ndarray of shape (n_customers, H + 1)
        S(t | τ) for t = 0..H months (column 0 is 1).
    monthly_discount_rate : float
        r per month.

    Returns
    -------
    ndarray of shape (n_customers,)
    """
    survival = np.asarray(conditional_survival, dtype=float)[:, 1:]
    horizon = survival.shape[1]
    margin = np.asarray(monthly_margin, dtype=float)
    if margin.ndim == 1:
        margin = margin[:, np.newaxis]
    if margin.ndim == 2 and margin.shape[1] not in (1, horizon):
        raise ValueError(f"monthly_margin needs 1 or {horizon} columns, got {margin.shape[1]}")
    discount = (1.0 + monthly_discount_rate) ** -np.arange(1, horizon + 1, dtype=float)
    return _row_sums(margin * survival * discount)


def kaplan_meier(tenure: ArrayLike, churn: ArrayLike) -> pd.Series:
    """Kaplan-Meier survival S(t) at each distinct observed tenure (scikit-survival's estimator)."""
    from sksurv.nonparametric import kaplan_meier_estimator

    time, survival = kaplan_meier_estimator(
        np.asarray(churn, dtype=bool), np.asarray(tenure, dtype=float)
    )
    return pd.Series(survival, index=pd.Index(time, name="tenure"), name="survival")


def kaplan_meier_by_group(tenure: ArrayLike, churn: ArrayLike, group: ArrayLike) -> pd.DataFrame:
    """Kaplan-Meier curves per group (e.g. segment): long frame ``group, tenure, survival, n``."""
    frame = pd.DataFrame({"tenure": tenure, "churn": churn, "group": group})
    curves = []
    for name, rows in frame.groupby("group", sort=True):
        km = kaplan_meier(rows["tenure"], rows["churn"]).reset_index()
        curves.append(km.assign(group=name, n=len(rows)))
    return pd.concat(curves, ignore_index=True)[["group", "tenure", "survival", "n"]]


def lifetime_design(customers: Table, factors: Table, config: DatasetConfig) -> Table:
    """The survival model's input per customer from the config's ``lifetime`` block.

    Columns: ``tenure``, the covariate factors, ``monthly_revenue`` and a
    one-hot ``<column>=<value>`` for each declared value of each category
    column (so the columns never depend on the batch). Frames give a frame,
    :class:`~features.columns.Columns` give ``Columns``.
    """
    spec = config.lifetime
    if spec is None:
        raise ValueError("the config has no 'lifetime' block")
    categories = {c: config.input.columns[c].values or [] for c in spec.categories}
    names = [
        "tenure",
        *spec.covariates,
        "monthly_revenue",
        *(f"{c}={v}" for c, values in categories.items() for v in values),
    ]
    # one column-major matrix filled column by column: a frame of one block, no stacking copy
    design = np.empty((len(customers), len(names)), order="F")
    design[:, 0] = floats(customers[spec.tenure])
    for j, f in enumerate(spec.covariates, start=1):
        design[:, j] = floats(factors[f])
    at = len(spec.covariates) + 1
    design[:, at] = floats(factors[spec.monthly_revenue])
    for column, values in categories.items():
        codes = category_codes(customers[column], values)
        for i in range(len(values)):  # one contiguous column each
            design[:, at + 1 + i] = codes == i
        at += len(values)
    return like(customers, design, names)


def lifetime_columns(config: DatasetConfig) -> list[str]:
    """The covariate columns of :func:`lifetime_design` (what :class:`SurvivalValue` uses)."""
    spec = config.lifetime
    categories = [
        f"{c}={v}" for c in spec.categories for v in (config.input.columns[c].values or [])
    ]
    return [*spec.covariates, *categories]


def _step_values(times: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Right-continuous step functions (one row per customer) evaluated at ``at`` (same rows)."""
    idx = np.searchsorted(times, at, side="right") - 1
    rows = np.arange(values.shape[0])[:, np.newaxis]
    return np.where(idx < 0, 1.0, values[rows, np.clip(idx, 0, None)])


def survival_on(times: np.ndarray, curves: np.ndarray, months: ArrayLike) -> np.ndarray:
    """Survival step functions evaluated at ``months``, continued past the last time.

    Parameters
    ----------
    times : ndarray of shape (k,)
        Increasing times the curves are given at.
    curves : ndarray of shape (n_customers, k)
        S at ``times`` (right-continuous steps; 1 before the first time).
    months : array of shape (n_customers, m)
        Where to evaluate, per customer.

    Notes
    -----
    Past the last time T the curve continues at the customer's own average
    monthly hazard over [T − 12, T]: S(t) = S(T) · exp(−h (t − T)).
    """
    months = np.asarray(months, dtype=float)
    end = times[-1]
    inside = _step_values(times, curves, np.minimum(months, end))
    edge = _step_values(times, curves, np.full((len(curves), 2), [max(end - _TAIL_MONTHS, 0), end]))
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard = np.log(edge[:, 0] / edge[:, 1]) / min(_TAIL_MONTHS, end)
    hazard = np.nan_to_num(hazard, nan=0.0, posinf=0.0)[:, np.newaxis]
    return np.where(months <= end, inside, edge[:, [1]] * np.exp(-hazard * (months - end)))


def conditional_on_tenure(survival: np.ndarray) -> np.ndarray:
    """S(t | τ) = S(τ + t) / S(τ) from S evaluated at τ + t, t = 0.. (column 0 at τ)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        conditional = survival / survival[:, [0]]
    return np.nan_to_num(conditional, nan=0.0).clip(0.0, 1.0)


class SurvivalValue(TransformerMixin, BaseEstimator):
    """Conditional survival and survival-weighted CLV of active customers.

    Parameters
    ----------
    tenure : str
        Column of ``X`` with the tenure so far (months).
    covariates : list of str
        Numeric columns of ``X`` the model uses.
    monthly_revenue : str or None, default=None
        Column with the monthly margin m for ``clv`` (NaN output without it).
    model : {"cox", "gradient_boosting"}, default="cox"
        scikit-survival's gradient-boosted Cox model (``GradientBoostingSurvivalAnalysis``,
        Breslow baseline) or a Cox proportional-hazards model (``CoxPHSurvivalAnalysis``).
    baseline : {"weibull", "breslow"}, default="weibull"
        The baseline cumulative hazard H0(t): Breslow's step estimate, or a
        Weibull curve H0(t) = exp(c)·t^k fitted to it by least squares on
        log H0 against log t (a smooth baseline: S(τ + t)/S(τ) is then not
        a ratio of two noisy steps, and it extends past the observed tenures).
    horizon_months : int, default=60
        H: the cap of ``expected_remaining_months`` and the horizon of ``clv``.
    monthly_discount_rate : float, default=0.0072
        r per month (≈ 9 % a year, :func:`monthly_rate`).
    random_state : int, default=0

    Attributes
    ----------
    estimator_ : scikit-survival estimator
    times_ : ndarray
        Event times of the fitted survival functions.
    max_time_ : float
        Largest observed tenure.

    Notes
    -----
    S(t) is known up to the largest observed tenure; beyond it the curve is
    continued at each customer's own average monthly hazard over the last
    12 observed months (a constant-hazard tail), so S(τ + t) is defined for
    every τ + t. ``transform`` returns, per customer:

    * ``survival_12m`` = S(12 | τ);
    * ``expected_remaining_months`` = Σ_{t=1..H} S(t | τ), the expected
      number of further months as a customer within the next H months
      (a restricted mean residual lifetime; at most H);
    * ``clv`` = Σ_{t=1..H} m · S(t | τ) / (1 + r)^t, the survival-weighted
      CLV (the value cube's ``clv`` under ``clv.method: survival``).
    """

    _parameter_constraints: ClassVar[dict[str, list]] = {
        "tenure": [str],
        "covariates": [list],
        "monthly_revenue": [str, None],
        "model": [StrOptions({"gradient_boosting", "cox"})],
        "baseline": [StrOptions({"weibull", "breslow"})],
        "horizon_months": [Interval(Integral, 12, None, closed="left")],
        "monthly_discount_rate": [Interval(Real, -1, None, closed="neither")],
        "random_state": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        tenure: str,
        covariates: list[str],
        monthly_revenue: str | None = None,
        model: str = "cox",
        baseline: str = "weibull",
        horizon_months: int = 60,
        monthly_discount_rate: float = 0.0072,
        random_state: int = 0,
    ) -> None:
        self.tenure = tenure
        self.covariates = covariates
        self.monthly_revenue = monthly_revenue
        self.model = model
        self.baseline = baseline
        self.horizon_months = horizon_months
        self.monthly_discount_rate = monthly_discount_rate
        self.random_state = random_state

    def _columns(self, X: Table) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(X, pd.DataFrame | Columns):
            raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
        missing = [c for c in (self.tenure, *self.covariates) if c not in X.columns]
        if missing:
            raise ValueError(f"X is missing columns {missing}")
        tenure = floats(X[self.tenure])
        covariates = X[self.covariates].to_numpy(dtype=float)
        bad = ~np.isfinite(covariates).all(axis=1) | ~np.isfinite(tenure) | (tenure < 0)
        if bad.any():
            raise ValueError(
                f"non-finite covariates or a negative tenure for {int(bad.sum())} customers, "
                f"e.g. {X.index[bad][:5].tolist()}"
            )
        return tenure, covariates

    def fit(self, X: pd.DataFrame, y: ArrayLike) -> SurvivalValue:
        """Fit on customers' tenure (duration) and ``y`` (1 = churned, the event)."""
        from sksurv.ensemble import GradientBoostingSurvivalAnalysis
        from sksurv.linear_model import CoxPHSurvivalAnalysis
        from sksurv.util import Surv

        self._validate_params()
        tenure, covariates = self._columns(X)
        event = np.asarray(y, dtype=float)
        if event.shape != tenure.shape or not np.isin(event, (0, 1)).all():
            raise ValueError("y must hold one churn flag (0 or 1) per customer")
        if event.sum() == 0:
            raise ValueError("a survival model needs at least one churned customer")
        target = Surv.from_arrays(event.astype(bool), tenure)
        if self.model == "cox":
            self.mean_, self.scale_ = covariates.mean(axis=0), covariates.std(axis=0) + 1e-12
            estimator = CoxPHSurvivalAnalysis(alpha=1e-4)
        else:
            self.mean_, self.scale_ = np.zeros(covariates.shape[1]), np.ones(covariates.shape[1])
            estimator = GradientBoostingSurvivalAnalysis(
                n_estimators=100, learning_rate=0.1, max_depth=3, subsample=0.8,
                random_state=self.random_state,
            )  # fmt: skip
        self.estimator_ = estimator.fit((covariates - self.mean_) / self.scale_, target)
        self.times_ = np.asarray(self.estimator_.unique_times_, dtype=float)
        self.max_time_ = float(tenure.max())
        # H0 = H_i / exp(η_i) for any customer i (proportional hazards); the first one will do.
        z = (covariates[:1] - self.mean_) / self.scale_
        hazard = self.estimator_.predict_cumulative_hazard_function(z, return_array=True)[0]
        self.baseline_hazard_ = hazard / np.exp(self._log_risk(z)[0])
        usable = (self.times_ > 0) & (self.baseline_hazard_ > 0)
        if self.baseline == "weibull" and usable.sum() < 2:
            raise ValueError("a Weibull baseline needs events at two or more positive tenures")
        if self.baseline == "weibull":
            self.weibull_shape_, self.weibull_log_scale_ = np.polyfit(
                np.log(self.times_[usable]), np.log(self.baseline_hazard_[usable]), 1
            )
        return self

    def _log_risk(self, z: np.ndarray) -> np.ndarray:
        """η = log hazard ratio per row (for Cox by :func:`_row_sums`: a batch changes no row)."""
        if self.model == "cox":
            return _row_sums(z * self.estimator_.coef_)
        return self.estimator_.predict(z)

    def risk_score(self, X: pd.DataFrame) -> np.ndarray:
        """The model's risk score η (higher = churns sooner), for the C-index."""
        check_is_fitted(self, "estimator_")
        _, covariates = self._columns(X)
        return self._risk(covariates)

    def _risk(self, covariates: np.ndarray) -> np.ndarray:
        """η of raw covariates; for Cox standardised and summed column by column.

        The same operations in the same order as ``_log_risk((covariates −
        mean) / scale)``, without the two (n, k) temporaries; up to
        :data:`SMALL_ROWS` customers (an API request) that expression itself,
        one call per operation instead of four per covariate, the same bits.
        """
        if self.model != "cox" or len(covariates) <= SMALL_ROWS:  # a request: fewer calls
            return self._log_risk((covariates - self.mean_) / self.scale_)
        total, term = np.zeros(len(covariates)), np.empty(len(covariates))
        for j, coef in enumerate(self.estimator_.coef_):
            np.subtract(covariates[:, j], self.mean_[j], out=term)
            term /= self.scale_[j]
            term *= coef
            total += term
        return total

    def survival_at(self, X: pd.DataFrame, months: ArrayLike) -> np.ndarray:
        """S(t) per customer at ``months`` (array of shape (n_customers, k)).

        S_i(t) = exp(−H0(t) · exp(η_i)); with the Breslow baseline the tail
        past the last event time is extrapolated (:func:`survival_on`).
        """
        return self._survival(self.risk_score(X), np.asarray(months, dtype=float))

    def _survival(self, risk: np.ndarray, months: np.ndarray) -> np.ndarray:
        ratio = np.exp(risk)[:, np.newaxis]
        if self.baseline == "breslow":
            curves = np.exp(-self.baseline_hazard_[np.newaxis] * ratio)
            return survival_on(self.times_, curves, months)
        return np.exp(-self._weibull_h0(months) * ratio)

    def _weibull_h0(self, months: np.ndarray) -> np.ndarray:
        """H0(t) = exp(log scale) · t^shape elementwise.

        Months are whole numbers for most tables (tenure in months): then the
        power, the costly step, is taken once per distinct month and looked
        up (the same bits as taking it per element).
        """
        scale = np.exp(self.weibull_log_scale_)
        whole = months.size > 0 and months.min() >= 0 and months.max() < 10_000
        if whole and np.array_equal(months, np.floor(months)):
            grid = np.arange(int(months.max()) + 1, dtype=float)
            return (scale * grid**self.weibull_shape_)[months.astype(np.intp)]
        return scale * months**self.weibull_shape_

    def conditional_survival(self, X: pd.DataFrame) -> np.ndarray:
        """S(t | τ) for t = 0..H months: shape (n_customers, H + 1)."""
        check_is_fitted(self, "estimator_")
        tenure, covariates = self._columns(X)
        return self._conditional_by_month(tenure, self._risk(covariates)).T

    def _conditional_by_month(self, tenure: np.ndarray, risk: np.ndarray) -> np.ndarray:
        """S(t | τ) month by month: shape (H + 1, n_customers), one row per month."""
        conditional = np.empty((self.horizon_months + 1, len(tenure)))
        for t, row in enumerate(self._months(tenure, risk)):
            conditional[t] = row
        return conditional

    def _months(self, tenure: np.ndarray, risk: np.ndarray) -> Iterator[np.ndarray]:
        """S(t | τ) for t = 0..H, one contiguous row of all customers per month.

        The same numbers as :func:`conditional_on_tenure` of S at τ + t
        (:meth:`_survival`), computed a month at a time so that each step
        works on one row that stays in the CPU cache instead of passing over
        an (n, H + 1) matrix again and again. With the Weibull baseline and
        whole tenures the baseline power is looked up per whole month (as
        :meth:`_weibull_h0` does). Each row is yielded in a buffer that the
        next month overwrites: use it before asking for the next. Up to
        :data:`SMALL_ROWS` customers (an API request) the same operations run
        on one matrix of all months, with the same bits.
        """
        steps = self.horizon_months
        whole = (
            self.baseline == "weibull"
            and tenure.size > 0
            and tenure.min() >= 0
            and tenure.max() + steps < 10_000
            and np.array_equal(tenure, np.floor(tenure))
        )
        if not whole:
            months = tenure[:, np.newaxis] + np.arange(steps + 1)
            matrix = conditional_on_tenure(self._survival(risk, months))
            yield from np.ascontiguousarray(matrix.T)
            return
        scale = np.exp(self.weibull_log_scale_)
        grid = scale * np.arange(int(tenure.max()) + steps + 1, dtype=float) ** self.weibull_shape_
        at, ratio = tenure.astype(np.intp), np.exp(risk)
        if len(tenure) <= SMALL_ROWS:  # the same steps on one (H + 1, n) matrix: fewer calls
            with np.errstate(divide="ignore", invalid="ignore"):
                matrix = grid[np.arange(steps + 1)[:, np.newaxis] + at]  # H0(τ + t)
                np.negative(matrix, out=matrix)
                matrix *= ratio
                np.exp(matrix, out=matrix)  # S(τ + t)
                np.divide(matrix, matrix[0].copy(), out=matrix)
                np.clip(matrix, 0.0, 1.0, out=matrix)
                matrix[np.isnan(matrix)] = 0.0
            yield from matrix
            return
        row, first = np.empty(len(tenure)), None
        with np.errstate(divide="ignore", invalid="ignore"):
            for t in range(steps + 1):
                np.take(grid[t:], at, out=row)  # H0(τ + t)
                np.negative(row, out=row)
                row *= ratio
                np.exp(row, out=row)  # S(τ + t)
                if first is None:
                    first = row.copy()  # S(τ)
                np.divide(row, first, out=row)
                # conditional_on_tenure's nan_to_num(nan=0).clip(0, 1): ±inf clip to 1 or 0
                np.clip(row, 0.0, 1.0, out=row)
                nan = np.isnan(row)
                if nan.any():
                    row[nan] = 0.0
                yield row

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """``survival_12m``, ``expected_remaining_months`` and ``clv`` per customer.

        Sums over months run month by month in a fixed order (as
        :func:`_row_sums` and :func:`survival_clv` do), so a customer's
        outputs have the same bits alone or in any batch. Up to
        :data:`SMALL_ROWS` customers take every month at once:
        ``np.add.accumulate`` over months adds in the same order.
        """
        check_is_fitted(self, "estimator_")
        tenure, covariates = self._columns(X)
        n = len(tenure)
        margin = None if self.monthly_revenue is None else floats(X[self.monthly_revenue])
        discount = (1.0 + self.monthly_discount_rate) ** -np.arange(
            1, self.horizon_months + 1, dtype=float
        )
        if 0 < n <= SMALL_ROWS and self.horizon_months >= 12:
            months = np.asarray(list(self._months(tenure, self._risk(covariates))))
            remaining = np.add.accumulate(months[1:], axis=0)[-1]
            if margin is None:
                clv = np.full(n, np.nan)
            else:
                terms = months[1:] * margin
                terms *= discount[:, np.newaxis]
                clv = np.add.accumulate(terms, axis=0)[-1]
            return like_columns(
                X,
                {"survival_12m": months[12], "expected_remaining_months": remaining, "clv": clv},
            )
        remaining, clv, term = np.zeros(n), np.zeros(n), np.empty(n)
        for t, month in enumerate(self._months(tenure, self._risk(covariates))):
            if t == 12:
                survival_12m = month.copy()
            if t == 0:
                continue
            remaining += month
            if margin is not None:
                np.multiply(margin, month, out=term)
                term *= discount[t - 1]
                clv += term
        if margin is None:
            clv = np.full(n, np.nan)
        return like_columns(
            X, {"survival_12m": survival_12m, "expected_remaining_months": remaining, "clv": clv}
        )

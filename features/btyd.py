"""Buy-till-you-die models for transaction logs on PyMC-Marketing (docs/lifetimes.md).

BG/NBD, Modified BG/NBD or Pareto/NBD for the purchase process and Gamma-Gamma
for spend per purchase, fitted by maximum a posteriori under flat priors (so
the estimates are maximum-likelihood ones) or by the library's posterior
samplers. Customer-level outputs come with a central interval from the
parameters' uncertainty (Laplace approximation under MAP, posterior draws
otherwise).
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted

__all__ = ["BTYD_MODELS", "OUTPUT_COLUMNS", "BtydValue", "library_model", "parameter_summary"]

#: Model key -> (PyMC-Marketing class name, label, parameter names).
BTYD_MODELS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "bgnbd": ("BetaGeoModel", "BG/NBD", ("r", "alpha", "a", "b")),
    "mbgnbd": ("ModifiedBetaGeoModel", "MBG/NBD", ("r", "alpha", "a", "b")),
    "pareto_nbd": ("ParetoNBDModel", "Pareto/NBD", ("r", "alpha", "s", "beta")),
}
_SPEND_PARAMETERS = ("p", "q", "v")
_RFM_COLUMNS = ("repeat_frequency", "first_to_last_days", "tenure_days", "repeat_monetary_avg")
# PyMC-Marketing's `time_unit` names the unit that recency and T are measured in.
_TIME_UNITS = {1: "D", 7: "W", 30: "M"}
OUTPUT_COLUMNS = ("expected_purchases", "p_alive", "expected_spend", "clv", "clv_low", "clv_high")
PARALLEL_MIN_CUSTOMERS = 8192
"""Customers from which the draws are evaluated in blocks on threads (:func:`scoring_threads`)."""


def scoring_threads() -> int:
    """Threads for evaluating the closed forms over many draws: the cores, or ``OMP_NUM_THREADS``.

    SciPy's special functions (the hypergeometric function of the purchase
    models) release the GIL, so blocks of customers evaluate in parallel with
    identical results. ``OMP_NUM_THREADS`` caps it, as it does NumPy's and
    torch's threads: Spark's workers and the tests set it to 1.
    """
    cores = os.cpu_count() or 1
    try:
        return max(1, min(cores, int(os.environ.get("OMP_NUM_THREADS", cores))))
    except ValueError:
        return cores


def _library_class(name: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pymc_marketing.clv as clv

    return getattr(clv, name)


def _flat_priors(names: tuple[str, ...]) -> dict:
    """HalfFlat priors: the MAP is then the maximum-likelihood estimate."""
    from pymc_marketing.prior import Prior

    return {name: Prior("HalfFlat") for name in names}


def library_model(class_name: str, names: tuple[str, ...], data: pd.DataFrame, draws: dict):
    """A PyMC-Marketing model over ``data`` whose posterior is the given parameter draws.

    No compilation: the library's predictive methods evaluate closed forms
    over the posterior's (chain, draw) dimensions with xarray.
    """
    import arviz as az
    import xarray as xr

    model = _library_class(class_name)(model_config=_flat_priors(names))
    model.build_model(data)
    model.idata = az.InferenceData(
        posterior=xr.Dataset(
            {k: (("chain", "draw"), np.asarray(v, float)[np.newaxis]) for k, v in draws.items()}
        )
    )
    return model


def _negative_hessian(model, values: list, centre: np.ndarray) -> np.ndarray:
    """−∂²log p/∂θ² at ``centre`` (log scale), by central differences of PyMC's symbolic gradient.

    The step is 1e-4 on the log scale. On CDNOW this matches PyMC's symbolic
    Hessian (``compile_d2logp``) to a relative 4e-9 and compiles far faster
    (6 s against 130 s for a new data set on a shared 2-core machine);
    PyTensor has no second derivative at all of the Gaussian hypergeometric
    function in Pareto/NBD's likelihood.
    """
    gradient = model.compile_dlogp(jacobian=False)

    def at(x):
        return gradient({v.name: c for v, c in zip(values, x, strict=True)})

    step = 1e-4
    shifts = np.eye(len(centre)) * step
    hessian = np.column_stack([(at(centre + d) - at(centre - d)) / (2 * step) for d in shifts])
    return -(hessian + hessian.T) / 2


def laplace_draws(model, point: dict[str, float], n_draws: int, seed: int) -> dict[str, np.ndarray]:
    """Parameter draws from the Laplace approximation at the MAP, in log space.

    Every parameter is positive and PyMC samples it on the log scale: the
    approximation is a multivariate normal centred on the log-MAP with
    covariance the inverse of the negative Hessian of the log-likelihood
    (:func:`_negative_hessian`). Draws come in antithetic pairs (z, −z), so
    the sample is symmetric about the MAP.
    """
    values = list(model.value_vars)
    names = [v.name.removesuffix("_log__") for v in values]
    if any(not v.name.endswith("_log__") for v in values) or set(names) != set(point):
        raise ValueError(f"expected log-transformed parameters {sorted(point)}, got {names}")
    centre = np.log([point[n] for n in names])
    precision = _negative_hessian(model, values, centre)
    try:
        chol = np.linalg.cholesky(np.linalg.inv(precision))
    except np.linalg.LinAlgError as exc:
        raise ValueError("the Laplace approximation needs a maximum: Hessian not definite") from exc
    half = np.random.default_rng(seed).standard_normal((n_draws - n_draws // 2, len(names)))
    z = np.vstack([half, -half])[:n_draws]
    log_draws = centre + z @ chol.T
    return {n: np.exp(log_draws[:, i]) for i, n in enumerate(names)}


def _fit_parameters(
    class_name: str,
    names: tuple[str, ...],
    data: pd.DataFrame,
    method: str,
    n_draws: int,
    seed: int,
    fit_options: dict | None = None,
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """(point estimate, n_draws parameter draws) of one library model.

    ``fit_options`` go to the library's ``fit`` under ``advi``/``mcmc`` (e.g.
    ``n`` ADVI iterations, ``draws``, ``tune``, ``chains``), over the defaults.
    """
    model = _library_class(class_name)(model_config=_flat_priors(names))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "map":
            model.fit(data, method="map", progressbar=False)
        elif method == "advi":
            options = {"draws": max(n_draws, 200), **(fit_options or {})}
            model.fit(data, method="advi", random_seed=seed, progressbar=False, **options)
        else:
            options = {"chains": 2, "cores": 1, **(fit_options or {})}
            model.fit(data, method="mcmc", random_seed=seed, progressbar=False, **options)
    posterior = model.idata.posterior
    if method == "map":
        point = {n: float(posterior[n].values.ravel()[0]) for n in names}
        return point, laplace_draws(model.model, point, n_draws, seed)
    flat = {n: posterior[n].values.ravel() for n in names}
    pick = np.linspace(0, len(flat[names[0]]) - 1, n_draws).round().astype(int)
    return {n: float(flat[n].mean()) for n in names}, {n: flat[n][pick] for n in names}


class BtydValue(TransformerMixin, BaseEstimator):
    """Probabilistic CLV from purchase histories: a BTYD purchase model × Gamma-Gamma spend.

    Purchase models (``model``), all from PyMC-Marketing [1]_:

    * ``"bgnbd"`` BG/NBD [2]_: while alive a customer buys as a Poisson process
      with rate λ ~ Gamma(r, α); after each purchase they drop out with
      probability p ~ Beta(a, b). A customer without a repeat purchase is
      alive with certainty.
    * ``"mbgnbd"`` Modified BG/NBD [3]_: as BG/NBD, but a customer may also
      drop out at time 0, so one-time buyers are no longer alive for sure.
    * ``"pareto_nbd"`` Pareto/NBD [4]_: dropout at any time, lifetime
      ~ Exponential(μ), μ ~ Gamma(s, β).

    Spend: Gamma-Gamma [5]_ on repeat buyers (mean spend per repeat purchase,
    independent of the purchase process).

    Parameters
    ----------
    model : {"bgnbd", "mbgnbd", "pareto_nbd"}, default="bgnbd"
    method : {"map", "advi", "mcmc"}, default="map"
        ``"map"``: maximum a posteriori under flat priors (= maximum
        likelihood), intervals from the Laplace approximation. ``"advi"`` and
        ``"mcmc"``: the library's posterior draws (slower).
    horizon_days : float, default=273
        Horizon of ``expected_purchases`` in days (39 weeks).
    time_unit_days : {1, 7, 30}, default=7
        Time unit the models are fitted in (days, weeks, months).
    clv_months : int, default=12
        Horizon of ``clv`` in months.
    monthly_discount_rate : float, default=0.01
    interval : float, default=0.9
        Coverage of the central interval ``[clv_low, clv_high]``.
    n_draws : int, default=100
        Parameter draws the interval is computed from.
    random_state : int, default=0
    fit_options : dict or None, default=None
        Options for the library's ``fit`` under ``"advi"``/``"mcmc"``: ``n``
        (ADVI iterations), ``draws``, ``tune``, ``chains``; defaults: the
        library's, with 2 chains for MCMC. Fewer iterations or draws are
        cheaper and give rougher intervals.

    Attributes
    ----------
    params_ : dict
        Point estimates of the purchase model's parameters.
    spend_params_ : dict
        Gamma-Gamma's p, q, v.
    draws_, spend_draws_ : dict of ndarray of shape (n_draws,)
        Parameter draws behind the intervals.
    max_tenure_ : float
        Longest T seen in fit (model time units).

    Notes
    -----
    Input columns as :class:`features.transactions.customer_features` writes
    them: ``repeat_frequency``, ``first_to_last_days`` (recency),
    ``tenure_days`` (T) and ``repeat_monetary_avg``. ``transform`` gives
    ``expected_purchases`` (repeat purchases within ``horizon_days``),
    ``p_alive``, ``expected_spend``, ``clv`` and the interval ``clv_low``,
    ``clv_high``: the (1 − interval)/2 and (1 + interval)/2 quantiles of CLV
    over the parameter draws, widened to contain ``clv`` where sampling
    noise would leave it outside. Under MAP the point outputs use the MAP
    parameters; under a posterior method, the posterior mean over draws.
    Every customer is scored independently of the batch (the draws are fixed
    at fit time).

    References
    ----------
    .. [1] PyMC-Marketing, ``pymc_marketing.clv`` (PyMC Labs).
    .. [2] Fader, Hardie and Lee (2005), "Counting Your Customers the Easy Way:
       An Alternative to the Pareto/NBD Model", Marketing Science 24 (2).
    .. [3] Batislam, Denizel and Filiztekin (2007), "Empirical validation and
       comparison of models for customer base analysis", IJRM 24 (3).
    .. [4] Schmittlein, Morrison and Colombo (1987), "Counting Your Customers:
       Who Are They and What Will They Do Next?", Management Science 33 (1).
    .. [5] Fader, Hardie and Lee (2005), "RFM and CLV: Using Iso-Value Curves
       for Customer Base Analysis", Journal of Marketing Research 42 (4).
    """

    _parameter_constraints: ClassVar[dict[str, list]] = {
        "model": [StrOptions(set(BTYD_MODELS))],
        "method": [StrOptions({"map", "advi", "mcmc"})],
        "horizon_days": [Interval(Real, 0, None, closed="neither")],
        "time_unit_days": [Options(Integral, set(_TIME_UNITS))],
        "clv_months": [Interval(Integral, 1, None, closed="left")],
        "monthly_discount_rate": [Interval(Real, -1, None, closed="neither")],
        "interval": [Interval(Real, 0, 1, closed="neither")],
        "n_draws": [Interval(Integral, 2, None, closed="left")],
        "random_state": [Interval(Integral, 0, None, closed="left")],
        "fit_options": [dict, None],
    }

    def __init__(
        self,
        model: str = "bgnbd",
        method: str = "map",
        horizon_days: float = 273,
        time_unit_days: int = 7,
        clv_months: int = 12,
        monthly_discount_rate: float = 0.01,
        interval: float = 0.9,
        n_draws: int = 100,
        random_state: int = 0,
        fit_options: dict | None = None,
    ) -> None:
        self.model = model
        self.method = method
        self.horizon_days = horizon_days
        self.time_unit_days = time_unit_days
        self.clv_months = clv_months
        self.monthly_discount_rate = monthly_discount_rate
        self.interval = interval
        self.n_draws = n_draws
        self.random_state = random_state
        self.fit_options = fit_options

    def histories(self, X: pd.DataFrame) -> pd.DataFrame:
        """Validated library inputs: customer_id (0..n−1), frequency, recency, T, monetary_value."""
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
        missing = [c for c in _RFM_COLUMNS if c not in X.columns]
        if missing:
            raise ValueError(f"X is missing columns {missing}")
        rfm = pd.DataFrame({c: X[c].to_numpy(dtype=float) for c in _RFM_COLUMNS})
        if rfm.empty:
            raise ValueError("X has no customers")
        problems = {
            "non-finite values": ~np.isfinite(rfm).all(axis=1),
            "negative values": (rfm < 0).any(axis=1),
            "non-integer repeat_frequency": rfm["repeat_frequency"] % 1 != 0,
            "first_to_last_days > tenure_days": rfm["first_to_last_days"] > rfm["tenure_days"],
            "first_to_last_days > 0 without repeat purchases": (rfm["repeat_frequency"] == 0)
            & (rfm["first_to_last_days"] > 0),
        }
        for problem, rows in problems.items():
            if rows.any():
                examples = X.index[rows.to_numpy()][:5].tolist()
                raise ValueError(f"{problem} for {int(rows.sum())} customers, e.g. {examples}")
        return pd.DataFrame(
            {
                "customer_id": np.arange(len(rfm)),
                "frequency": rfm["repeat_frequency"],
                "recency": rfm["first_to_last_days"] / self.time_unit_days,
                "T": rfm["tenure_days"] / self.time_unit_days,
                "monetary_value": rfm["repeat_monetary_avg"],
            }
        )

    def fit(self, X: pd.DataFrame, y: object = None) -> BtydValue:
        """Fit the purchase model on all customers and Gamma-Gamma on repeat buyers.

        Parameters
        ----------
        X : DataFrame
            Purchase histories (see Notes).
        y : ignored

        Returns
        -------
        self
        """
        self._validate_params()
        h = self.histories(X)
        class_name, _, names = BTYD_MODELS[self.model]
        self.params_, self.draws_ = _fit_parameters(
            class_name, names, h[["customer_id", "frequency", "recency", "T"]],
            self.method, self.n_draws, self.random_state, self.fit_options,
        )  # fmt: skip
        self.max_tenure_ = float(h["T"].max())
        repeat = h[(h["frequency"] > 0) & (h["monetary_value"] > 0)]
        if repeat.empty:
            raise ValueError("Gamma-Gamma needs customers with repeat purchases and spend > 0")
        self.spend_params_, self.spend_draws_ = _fit_parameters(
            "GammaGammaModel", _SPEND_PARAMETERS,
            repeat[["customer_id", "monetary_value", "frequency"]].reset_index(drop=True)
            .assign(customer_id=lambda d: np.arange(len(d))),
            self.method, self.n_draws, self.random_state, self.fit_options,
        )  # fmt: skip
        return self

    def _all_draws(self, draws: dict, point: dict) -> dict[str, np.ndarray]:
        """Draw 0 is the point estimate (MAP); draws 1.. the sample behind the interval."""
        return {k: np.concatenate([[point[k]], draws[k]]) for k in point}

    def predictors(self, X: pd.DataFrame, *, point_only: bool = False):
        """(purchase model, spend model, histories) of PyMC-Marketing over ``X``'s customers.

        The models' "posterior" has ``n_draws + 1`` draws: the point estimate
        first, then the draws behind the interval; with ``point_only`` just the
        point estimate.
        """
        check_is_fitted(self, ["params_", "spend_params_"])
        h = self.histories(X)
        class_name, _, names = BTYD_MODELS[self.model]
        if point_only:
            draws = {k: np.asarray([v]) for k, v in self.params_.items()}
            spend_draws = {k: np.asarray([v]) for k, v in self.spend_params_.items()}
        else:
            draws = self._all_draws(self.draws_, self.params_)
            spend_draws = self._all_draws(self.spend_draws_, self.spend_params_)
        purchases = library_model(
            class_name, names, h[["customer_id", "frequency", "recency", "T"]], draws
        )
        spend = library_model(
            "GammaGammaModel", _SPEND_PARAMETERS,
            h[["customer_id", "monetary_value", "frequency"]], spend_draws,
        )  # fmt: skip
        return purchases, spend, h

    def _evaluate(self, purchases, spend, h: pd.DataFrame) -> tuple[np.ndarray, ...]:
        """The library's closed forms for customers ``h``: arrays of shape (draws, customers).

        Expected purchases over the horizon, P(alive), expected spend per
        purchase and the discounted expected purchases of the CLV sum.
        """
        from pymc_marketing.clv.utils import customer_lifetime_value

        horizon = self.horizon_days / self.time_unit_days
        expected = purchases.expected_purchases(h, future_t=horizon).values[0]
        alive = purchases.expected_probability_alive(h).values[0]
        spend_draws = spend.expected_customer_spend(h).values[0]
        discounted = customer_lifetime_value(
            purchases, h.assign(future_spend=1.0), future_t=self.clv_months,
            discount_rate=self.monthly_discount_rate,
            time_unit=_TIME_UNITS[self.time_unit_days],
        ).values[0]  # fmt: skip
        return tuple(np.atleast_2d(a) for a in (expected, alive, spend_draws, discounted))

    def transform(self, X: pd.DataFrame, *, interval: bool = True) -> pd.DataFrame:
        """Score purchase histories.

        Parameters
        ----------
        X : DataFrame
            Purchase histories.
        interval : bool, default True
            Compute ``clv_low``/``clv_high``. ``False`` leaves them NaN and,
            under MAP, evaluates the point estimate alone: the same point
            columns for ``n_draws + 1`` times less work (factors and training
            snapshots need no interval).

        Returns
        -------
        DataFrame
            Indexed like ``X``, columns :data:`OUTPUT_COLUMNS`.
        """
        point_only = not interval and self.method == "map"
        purchases, spend, h = self.predictors(X, point_only=point_only)
        threads = scoring_threads() if len(h) >= PARALLEL_MIN_CUSTOMERS and not point_only else 1
        blocks = np.array_split(np.arange(len(h)), threads)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if threads == 1:
                parts = [self._evaluate(purchases, spend, h)]
            else:
                with ThreadPoolExecutor(threads) as pool:
                    parts = list(
                        pool.map(lambda b: self._evaluate(purchases, spend, h.iloc[b]), blocks)
                    )
        expected, alive, spend_draws, discounted_purchases = (
            np.concatenate([part[i] for part in parts], axis=1) for i in range(4)
        )
        clv_draws = discounted_purchases * spend_draws  # (1 + n_draws, n_customers)
        outputs = {
            "expected_purchases": expected,
            "p_alive": alive,
            "expected_spend": spend_draws,
            "clv": clv_draws,
        }
        if self.method == "map":
            point = {k: v[0] for k, v in outputs.items()}
        else:
            point = {k: v[1:].mean(axis=0) for k, v in outputs.items()}
        if interval:
            tail = (1 - self.interval) / 2
            low, high = np.quantile(clv_draws[1:], [tail, 1 - tail], axis=0)
            point["clv_low"] = np.minimum(low, point["clv"])
            point["clv_high"] = np.maximum(high, point["clv"])
        else:
            point["clv_low"] = point["clv_high"] = np.full(len(h), np.nan)
        columns = {c: np.asarray(point[c], dtype=float) for c in OUTPUT_COLUMNS}
        return pd.DataFrame(columns, index=X.index)


def parameter_summary(model: BtydValue) -> str:
    """One line of fitted parameters, e.g. ``BG/NBD r=0.243 alpha=4.414 a=0.793 b=2.426; ...``."""
    check_is_fitted(model, ["params_", "spend_params_"])
    _, label, names = BTYD_MODELS[model.model]
    purchase = " ".join(f"{n}={model.params_[n]:.3f}" for n in names)
    spend = " ".join(f"{n}={model.spend_params_[n]:.3f}" for n in _SPEND_PARAMETERS)
    return f"{label} {purchase}; Gamma-Gamma {spend} ({model.method.upper()})"

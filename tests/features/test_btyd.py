"""BTYD on PyMC-Marketing: known answers, the literature check, intervals, the estimator contract.

Fitting compiles PyTensor graphs (tens of seconds the first time on a machine):
the CDNOW fit is module-scoped and reused; the other tests use parameters set
directly, which needs no compilation.
"""

import copy
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.special import betaln, gammaln
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score

from valuecube.features.btyd import BtydValue, parameter_summary
from valuecube.features.clv import BetaGeoValue
from valuecube.features.transactions import customer_features

CDNOW_TXT = Path(__file__).resolve().parents[2] / "data" / "cdnow_master.txt"
CALIBRATION_END = pd.Timestamp("1997-09-30")
HOLDOUT_END = pd.Timestamp("1998-06-30")
# Fader, Hardie & Lee (2005), Table 1: BG/NBD on their 2,357-customer CDNOW sample (weeks).
FHL_2005 = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
CDNOW_PARAMS = {"r": 0.2493, "alpha": 4.750, "a": 0.7477, "b": 2.2912}
CDNOW_SPEND = {"p": 6.551, "q": 3.628, "v": 14.273}


def bgnbd_mle(frequency, recency, T) -> dict[str, float]:
    """The BG/NBD maximum-likelihood estimate, independently: FHL (2005) eq. 6 with scipy.

    L_i = B(a, b+x)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+T)^(r+x))
          + [x > 0] B(a+1, b+x−1)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+t_x)^(r+x))
    """
    x, t_x, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))

    def negative_ll(log_params):
        r, alpha, a, b = np.exp(log_params)
        common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
        alive = betaln(a, b + x) - (r + x) * np.log(alpha + T)
        dropped = np.where(
            x > 0,
            betaln(a + 1, np.maximum(b + x - 1, 1e-12)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
        return -np.sum(common + np.logaddexp(alive, dropped))

    fit = minimize(negative_ll, np.zeros(4), method="Nelder-Mead",
                   options={"xatol": 1e-8, "fatol": 1e-8, "maxiter": 20_000})  # fmt: skip
    assert fit.success
    return dict(zip(("r", "alpha", "a", "b"), np.exp(fit.x), strict=True))


def simulate_bgnbd(n, r, alpha, a, b, weeks, seed) -> pd.DataFrame:
    """Purchase histories drawn from the BG/NBD story, in days (one purchase per day at most)."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(r, 1 / alpha, n) / 7  # per day
    drop = rng.beta(a, b, n)
    T = np.full(n, weeks * 7.0)
    t, last, x = np.zeros(n), np.zeros(n), np.zeros(n)
    alive = np.ones(n, bool)
    for _ in range(400):
        t = t + rng.exponential(1 / np.maximum(rate, 1e-12))
        buys = alive & (t <= T)
        x[buys] += 1
        last[buys] = t[buys]
        alive = buys & (rng.random(n) >= drop)
    days = np.floor(last)
    return pd.DataFrame(
        {
            "repeat_frequency": x,
            "first_to_last_days": np.where(x > 0, days, 0.0),
            "tenure_days": T,
            "repeat_monetary_avg": np.where(x > 0, rng.gamma(6.0, 5.0, n), 0.0),
        },
        index=[f"c{i}" for i in range(n)],
    )


def with_parameters(model: BtydValue, params, spend, draws=None) -> BtydValue:
    """A BtydValue set to given parameters (no fit, no compilation)."""
    model.params_, model.spend_params_ = dict(params), dict(spend)
    n = model.n_draws
    model.draws_ = draws or {k: np.full(n, v) for k, v in params.items()}
    model.spend_draws_ = {k: np.full(n, v) for k, v in spend.items()}
    return model


@pytest.fixture(scope="module")
def cdnow():
    tx = pd.read_csv(CDNOW_TXT, sep=r"\s+", dtype={"customer_id": str})
    log = pd.DataFrame(
        {
            "customer_id": tx["customer_id"],
            "date": pd.to_datetime(tx["date"].astype(str), format="%Y%m%d"),
            "quantity": tx["number_of_cds"].astype(float),
            "amount": tx["dollar_value"].astype(float),
        }
    )
    return customer_features(
        log, CALIBRATION_END, window_start=pd.Timestamp("1997-01-01"), holdout_end=HOLDOUT_END
    )


@pytest.fixture(scope="module")
def fitted(cdnow):
    """The one real fit of this module (BG/NBD MAP + Laplace, Gamma-Gamma)."""
    return BtydValue(n_draws=40).fit(cdnow)


@pytest.fixture(scope="module")
def scores(fitted, cdnow):
    return fitted.transform(cdnow)


# --- the literature check --------------------------------------------------------------------


def test_cdnow_fit_matches_an_independent_mle_and_the_published_estimates(fitted, cdnow):
    mle = bgnbd_mle(
        cdnow["repeat_frequency"], cdnow["first_to_last_days"] / 7, cdnow["tenure_days"] / 7
    )
    for name, value in fitted.params_.items():
        assert value == pytest.approx(mle[name], rel=2e-3), name
        # 18,856 customers here against FHL's 2,357-customer sample: same order, within 10 %.
        assert value == pytest.approx(FHL_2005[name], rel=0.10), name
    assert parameter_summary(fitted).startswith("BG/NBD r=0.249 alpha=4.75")


def test_scores_on_cdnow(scores, cdnow):
    assert list(scores.columns) == [
        "expected_purchases", "p_alive", "expected_spend", "clv", "clv_low", "clv_high",
    ]  # fmt: skip
    assert scores.index.equals(cdnow.index)
    assert np.isfinite(scores.to_numpy()).all()
    assert scores["p_alive"].between(0, 1).all()
    assert (scores["clv_low"] <= scores["clv"]).all() and (
        scores["clv"] <= scores["clv_high"]
    ).all()
    assert (scores["clv_high"] > scores["clv_low"]).mean() > 0.99  # a real band, not a point
    assert scores["expected_purchases"].corr(cdnow["future_purchases"], method="spearman") > 0.3
    # Repeat purchase days in the 39-week holdout: the model's total is in the right range.
    assert scores["expected_purchases"].sum() == pytest.approx(
        cdnow["future_purchases"].sum(), rel=0.25
    )
    assert roc_auc_score(cdnow["churn"] == 0, scores["expected_purchases"]) > 0.7


def test_interval_comes_from_the_parameters_uncertainty(fitted, cdnow):
    sample = cdnow.iloc[::500]
    narrow = copy.deepcopy(fitted)
    narrow.draws_ = {k: np.full(fitted.n_draws, v) for k, v in fitted.params_.items()}
    narrow.spend_draws_ = {k: np.full(fitted.n_draws, v) for k, v in fitted.spend_params_.items()}
    point = narrow.transform(sample)
    np.testing.assert_allclose(point["clv_low"], point["clv"])
    np.testing.assert_allclose(point["clv_high"], point["clv"])
    wide = fitted.transform(sample)
    relative = (wide["clv_high"] - wide["clv_low"]) / wide["clv"]
    assert relative.nunique() > 1  # width varies by customer: not a constant band
    for name, draws in fitted.draws_.items():  # Laplace draws centred on the MAP
        assert np.exp(np.log(draws).mean()) == pytest.approx(fitted.params_[name], rel=1e-9)


def test_customer_scored_alone_equals_scored_in_batch(fitted, cdnow, scores):
    heavy = cdnow["repeat_frequency"].idxmax()
    one_off = cdnow.index[cdnow["repeat_frequency"].eq(0)][0]
    for customer in (heavy, one_off, cdnow.index[len(cdnow) // 2]):
        alone = fitted.transform(cdnow.loc[[customer]])
        pd.testing.assert_frame_equal(alone, scores.loc[[customer]], rtol=1e-12)


def test_point_only_transform_gives_the_same_point_columns(fitted, cdnow, scores):
    """``interval=False`` (factors, training snapshots) evaluates only the MAP, same numbers."""
    point = fitted.transform(cdnow, interval=False)
    assert list(point.columns) == list(scores.columns)
    assert point[["clv_low", "clv_high"]].isna().all().all()
    columns = ["expected_purchases", "p_alive", "expected_spend", "clv"]
    pd.testing.assert_frame_equal(point[columns], scores[columns], rtol=1e-12)


def test_blocks_of_customers_on_threads_give_the_same_bits(fitted, cdnow, scores, monkeypatch):
    """Many customers are evaluated in blocks on ``OMP_NUM_THREADS`` threads: identical output."""
    from valuecube.features import btyd

    assert len(cdnow) >= btyd.PARALLEL_MIN_CUSTOMERS  # large enough to be split into blocks
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert btyd.scoring_threads() == min(3, os.cpu_count())
    threaded = fitted.transform(cdnow)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert btyd.scoring_threads() == 1
    pd.testing.assert_frame_equal(threaded, fitted.transform(cdnow), rtol=0, atol=0)
    pd.testing.assert_frame_equal(threaded, scores, rtol=0, atol=0)
    monkeypatch.setenv("OMP_NUM_THREADS", "many")
    assert btyd.scoring_threads() == os.cpu_count()


# --- known answers on made data --------------------------------------------------------------


def test_the_independent_mle_recovers_a_simulated_logs_parameters():
    # The oracle of the literature check, checked on a log with a known answer. (A second
    # library fit here would cost tens of seconds of PyTensor compilation for no new check.)
    truth = {"r": 0.5, "alpha": 6.0, "a": 0.7, "b": 2.5}
    log = simulate_bgnbd(4000, **truth, weeks=52, seed=1)
    mle = bgnbd_mle(log["repeat_frequency"], log["first_to_last_days"] / 7, log["tenure_days"] / 7)
    for name in truth:
        assert mle[name] == pytest.approx(truth[name], rel=0.2), name


def test_laplace_approximation_of_a_known_log_normal_posterior():
    import pymc as pm

    from valuecube.features.btyd import laplace_draws

    with pm.Model() as model:  # log a ~ Normal(1, 0.5): negative Hessian 1/0.5² = 4 at the mode
        a = pm.HalfFlat("a")
        pm.Potential("likelihood", -0.5 * ((pm.math.log(a) - 1) / 0.5) ** 2)
    draws = laplace_draws(model, {"a": np.e}, n_draws=4000, seed=0)["a"]
    assert np.log(draws).mean() == pytest.approx(1.0, abs=1e-9)  # antithetic pairs
    assert np.log(draws).std() == pytest.approx(0.5, rel=0.03)


def test_bgnbd_holds_one_time_buyers_alive_and_mbgnbd_does_not():
    one_off = pd.DataFrame(
        {"repeat_frequency": [0.0], "first_to_last_days": [0.0], "tenure_days": [200.0],
         "repeat_monetary_avg": [0.0]}, index=["x"],
    )  # fmt: skip
    bg = with_parameters(BtydValue(n_draws=4), CDNOW_PARAMS, CDNOW_SPEND).transform(one_off)
    mbg = with_parameters(BtydValue("mbgnbd", n_draws=4), CDNOW_PARAMS, CDNOW_SPEND)
    assert bg["p_alive"].iloc[0] == 1.0
    assert 0 < mbg.transform(one_off)["p_alive"].iloc[0] < 1
    # Without repeats, Gamma-Gamma's spend is the population mean p·v/(q − 1).
    mean_spend = CDNOW_SPEND["p"] * CDNOW_SPEND["v"] / (CDNOW_SPEND["q"] - 1)
    assert bg["expected_spend"].iloc[0] == pytest.approx(mean_spend, rel=1e-6)


def test_clv_grows_with_horizon_and_falls_with_discounting(cdnow):
    sample = cdnow.iloc[:200]
    base = with_parameters(BtydValue(n_draws=4), CDNOW_PARAMS, CDNOW_SPEND)
    clv = base.transform(sample)["clv"]
    longer = with_parameters(BtydValue(n_draws=4, clv_months=24), CDNOW_PARAMS, CDNOW_SPEND)
    assert (longer.transform(sample)["clv"] >= clv).all()
    steeper = with_parameters(
        BtydValue(n_draws=4, monthly_discount_rate=0.05), CDNOW_PARAMS, CDNOW_SPEND
    )
    assert (steeper.transform(sample)["clv"] <= clv).all()


def test_time_unit_only_changes_units(cdnow):
    sample = cdnow.iloc[::50]
    weeks = with_parameters(BtydValue(n_draws=4), CDNOW_PARAMS, CDNOW_SPEND)
    per_day = {**CDNOW_PARAMS, "alpha": CDNOW_PARAMS["alpha"] * 7}  # α is a time scale
    days = with_parameters(BtydValue(n_draws=4, time_unit_days=1), per_day, CDNOW_SPEND)
    a, b = weeks.transform(sample), days.transform(sample)
    np.testing.assert_allclose(b["p_alive"], a["p_alive"], rtol=1e-9)
    np.testing.assert_allclose(b["expected_purchases"], a["expected_purchases"], rtol=1e-9)


# --- the estimator contract ------------------------------------------------------------------


def test_estimator_contract_and_the_old_name():
    model = BtydValue(model="pareto_nbd", horizon_days=180)
    assert clone(model).get_params()["horizon_days"] == 180
    assert BetaGeoValue is BtydValue  # the value cube's import keeps working
    assert not hasattr(model, "params_")
    with pytest.raises(NotFittedError):
        model.transform(pd.DataFrame())


def test_invalid_parameters_and_inputs(cdnow):
    with pytest.raises(ValueError, match="time_unit_days"):
        BtydValue(time_unit_days=3).fit(cdnow)
    with pytest.raises(ValueError, match="model"):
        BtydValue(model="bgbb").fit(cdnow)
    fitted = with_parameters(BtydValue(n_draws=4), CDNOW_PARAMS, CDNOW_SPEND)
    with pytest.raises(ValueError, match="missing columns"):
        fitted.transform(cdnow.drop(columns="tenure_days"))
    bad = cdnow.head(50).copy()
    bad.iloc[0, bad.columns.get_loc("first_to_last_days")] = 10_000
    with pytest.raises(ValueError, match="first_to_last_days > tenure_days"):
        fitted.transform(bad)

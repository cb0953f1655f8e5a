"""Survival for customer tables: hand-computed Kaplan-Meier, known lifetimes, conditional curves."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.base import clone
from sksurv.metrics import concordance_index_censored

from valuecube.features import survival as survival_module
from valuecube.features.columns import Columns
from valuecube.features.config import ConfigError, load_config
from valuecube.features.factors import compute_factors
from valuecube.features.survival import (
    SurvivalValue,
    conditional_on_tenure,
    kaplan_meier,
    kaplan_meier_by_group,
    lifetime_columns,
    lifetime_design,
    monthly_rate,
    survival_clv,
    survival_on,
)
from valuecube.training.data import load_training_data

TELCO_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "telco.yaml"


def test_kaplan_meier_by_hand():
    # t=1: 6 at risk, 1 churns -> 5/6; t=2: 5 at risk, 1 churns (one censored) -> 5/6 * 4/5;
    # t=3: 3 at risk, 1 churns -> 2/3 * 2/3; t=4: censored only; t=5: the last one churns.
    km = kaplan_meier([1, 2, 2, 3, 4, 5], [1, 1, 0, 1, 0, 1])
    np.testing.assert_allclose(km.index, [1, 2, 3, 4, 5])
    np.testing.assert_allclose(km.to_numpy(), [5 / 6, 2 / 3, 4 / 9, 4 / 9, 0.0])


def test_kaplan_meier_per_group():
    curves = kaplan_meier_by_group([1, 2, 3, 1, 2], [1, 0, 1, 0, 1], ["a", "a", "a", "b", "b"])
    a = curves[curves["group"] == "a"]
    np.testing.assert_allclose(a["survival"], [2 / 3, 2 / 3, 0.0])
    b = curves[curves["group"] == "b"]
    np.testing.assert_allclose(b["survival"], [1.0, 0.0])
    assert set(curves["n"]) == {3, 2}


def test_survival_clv_known_answers():
    always = np.ones((2, 13))  # S(t | τ) = 1 for t = 0..12
    np.testing.assert_allclose(survival_clv([10.0, 20.0], always, 0.0), [120.0, 240.0])
    discounted = survival_clv([10.0], always, 0.01)
    assert discounted[0] == pytest.approx(sum(10 / 1.01**t for t in range(1, 13)))
    halving = np.array([[1.0, 0.5, 0.25]])
    assert survival_clv(100.0 * np.ones(1), halving, 0.0)[0] == pytest.approx(75.0)
    assert (1 + monthly_rate(0.09)) ** 12 == pytest.approx(1.09)


def test_tail_continues_at_the_last_years_hazard():
    times = np.array([1.0, 60.0, 72.0])
    curves = np.array([[0.9, 0.8, 0.64]])
    at = survival_on(times, curves, np.array([[0.5, 30.0, 72.0, 84.0]]))
    np.testing.assert_allclose(at, [[1.0, 0.9, 0.64, 0.512]])


def made_table(n=3000, seed=0):
    """Exponential lifetimes (hazard 0.02/month, ×3 when risky), uniform censoring."""
    rng = np.random.default_rng(seed)
    risky = rng.random(n) < 0.5
    life = rng.exponential(1 / np.where(risky, 0.06, 0.02))
    follow = rng.uniform(1, 72, n)
    X = pd.DataFrame(
        {"tenure": np.minimum(life, follow), "risky": risky.astype(float),
         "noise": rng.normal(size=n), "revenue": 50.0},
        index=[f"c{i}" for i in range(n)],
    )  # fmt: skip
    return X, (life <= follow).astype(int)


@pytest.mark.parametrize(("model", "n"), [("cox", 3000), ("gradient_boosting", 1200)])
def test_exponential_lifetimes_give_memoryless_conditional_survival(model, n):
    X, churn = made_table(n)
    fitted = SurvivalValue(
        "tenure", ["risky", "noise"], "revenue", model=model, horizon_months=60,
        monthly_discount_rate=0.0,
    ).fit(X, churn)  # fmt: skip
    out = fitted.transform(X)
    safe, risky = X["risky"] == 0, X["risky"] == 1
    # S(12 | τ) = exp(−12 λ) whatever the tenure: 0.787 (λ = 0.02) and 0.487 (λ = 0.06).
    assert out.loc[safe, "survival_12m"].median() == pytest.approx(np.exp(-0.24), abs=0.05)
    assert out.loc[risky, "survival_12m"].median() == pytest.approx(np.exp(-0.72), abs=0.06)
    expected = sum(np.exp(-0.02 * t) for t in range(1, 61))
    assert out.loc[safe, "expected_remaining_months"].median() == pytest.approx(expected, rel=0.1)
    assert (out["expected_remaining_months"] <= 60).all()
    np.testing.assert_allclose(out["clv"], 50 * out["expected_remaining_months"])
    if model == "cox":
        assert fitted.weibull_shape_ == pytest.approx(1.0, abs=0.1)  # exponential = Weibull k=1


def test_conditional_survival_is_a_survival_curve():
    X, churn = made_table(800)
    for baseline in ("weibull", "breslow"):
        model = SurvivalValue("tenure", ["risky"], model="cox", baseline=baseline).fit(X, churn)
        conditional = model.conditional_survival(X)
        assert conditional.shape == (len(X), 61)
        np.testing.assert_allclose(conditional[:, 0], 1.0)
        assert (np.diff(conditional, axis=1) <= 1e-12).all()
        risk = model.risk_score(X)
        c_index = concordance_index_censored(churn.astype(bool), X["tenure"], risk)[0]
        assert c_index > 0.6
    assert np.isnan(model.transform(X)["clv"]).all()  # no monthly_revenue column


def test_weibull_baseline_whole_months_match_the_power_per_element():
    X, churn = made_table(500)
    model = SurvivalValue("tenure", ["risky"], model="cox", baseline="weibull").fit(X, churn)
    scale, shape = np.exp(model.weibull_log_scale_), model.weibull_shape_
    whole = np.arange(0, 133, dtype=float).reshape(7, 19)
    np.testing.assert_array_equal(model._weibull_h0(whole), scale * whole**shape)
    fractional = whole + 0.25
    np.testing.assert_array_equal(model._weibull_h0(fractional), scale * fractional**shape)
    months = np.floor(X["tenure"].to_numpy(float))[:, None] + np.arange(61)  # whole months
    expected = np.exp(-(scale * months**shape) * np.exp(model.risk_score(X))[:, None])
    np.testing.assert_array_equal(model.survival_at(X, months), expected)


@pytest.mark.parametrize("baseline", ["weibull", "breslow"])
@pytest.mark.parametrize("whole", [True, False])
def test_transform_month_by_month_equals_the_matrix_formulas(baseline, whole):
    """transform's month-at-a-time sums give the bits of the (n, H + 1) matrix formulas."""
    X, churn = made_table(600)
    X["tenure"] = np.floor(X["tenure"]) if whole else X["tenure"]
    model = SurvivalValue(
        "tenure", ["risky", "noise"], "revenue", model="cox", baseline=baseline,
        monthly_discount_rate=0.0072,
    ).fit(X, churn)  # fmt: skip
    tenure = X["tenure"].to_numpy(float)
    z = (X[["risky", "noise"]].to_numpy(float) - model.mean_) / model.scale_
    risk = model._log_risk(z)
    np.testing.assert_array_equal(model.risk_score(X), risk)
    months = tenure[:, None] + np.arange(61)
    conditional = conditional_on_tenure(model._survival(risk, months))
    np.testing.assert_array_equal(model.conditional_survival(X), conditional)
    out = model.transform(X)
    np.testing.assert_array_equal(out["survival_12m"], conditional[:, 12])
    remaining = np.zeros(len(X))
    for column in conditional[:, 1:].T:
        remaining += column
    np.testing.assert_array_equal(out["expected_remaining_months"], remaining)
    np.testing.assert_array_equal(
        out["clv"], survival_clv(50.0 * np.ones(len(X)), conditional, 0.0072)
    )
    alone = model.transform(X.iloc[[3]])  # a customer alone: the same bits
    np.testing.assert_array_equal(alone.to_numpy(), out.iloc[[3]].to_numpy())
    few = X.iloc[: survival_module.SMALL_ROWS]  # all months in one matrix: the same bits
    np.testing.assert_array_equal(model.transform(few).to_numpy(), out.iloc[: len(few)].to_numpy())
    np.testing.assert_array_equal(model.conditional_survival(few), conditional[: len(few)])


def test_estimator_contract_and_bad_input():
    X, churn = made_table(300)
    model = SurvivalValue("tenure", ["risky"], model="cox")
    assert clone(model).get_params()["model"] == "cox"
    with pytest.raises(ValueError, match="missing columns"):
        model.fit(X.drop(columns="risky"), churn)
    bad = X.copy()
    bad.iloc[3, bad.columns.get_loc("risky")] = np.nan
    with pytest.raises(ValueError, match="1 customers"):
        model.fit(bad, churn)
    with pytest.raises(ValueError, match="churn flag"):
        model.fit(X, churn * 2)
    with pytest.raises(ValueError, match="model"):
        SurvivalValue("tenure", ["risky"], model="rsf").fit(X, churn)


def test_telco_config_and_a_held_out_c_index():
    cfg = load_config(TELCO_CONFIG)
    data = load_training_data(cfg, seed=0)
    table = data.customers.table
    design = lifetime_design(table, compute_factors(table, cfg.factors), cfg)
    columns = lifetime_columns(cfg)
    assert "contract=Two year" in columns and "tenure_months" not in columns
    fit, test = data.split.train, data.split.test
    model = SurvivalValue("tenure", columns, "monthly_revenue", model="cox")
    model.fit(design.loc[fit], table.loc[fit, "churn"])
    event = table.loc[test, "churn"].to_numpy().astype(bool)
    risk = model.risk_score(design.loc[test])
    assert concordance_index_censored(event, design.loc[test, "tenure"], risk)[0] > 0.8


def test_a_few_customers_get_the_design_rows_of_a_large_batch():
    """lifetime_design of a request's few rows equals those rows of a large batch's design."""
    cfg = load_config(TELCO_CONFIG)
    table = load_training_data(cfg, seed=0).customers.table.iloc[:400]
    factors = compute_factors(table, cfg.factors)
    whole = lifetime_design(table, factors, cfg)
    few = survival_module.SMALL_ROWS
    assert len(table) > few and whole.filter(like="=").to_numpy().sum() > 0
    for start in (0, 37, 400 - few):
        rows = slice(start, start + few)
        part = lifetime_design(table.iloc[rows], factors.iloc[rows], cfg)
        pd.testing.assert_frame_equal(part, whole.iloc[rows])


def test_lifetime_block_is_checked(tmp_path):
    raw = yaml.safe_load(TELCO_CONFIG.read_text())
    raw["data"] = str(TELCO_CONFIG.parent / raw["data"])
    raw["lifetime"]["covariates"] = ["monthly_charges", "no_such_factor"]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="no_such_factor"):
        load_config(path)
    raw["lifetime"]["covariates"] = ["monthly_charges"]
    raw["lifetime"]["categories"] = ["monthlycharges"]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="not category columns"):
        load_config(path)


@pytest.mark.parametrize("baseline", ["weibull", "breslow"])
def test_a_few_customers_at_once_give_the_month_by_month_bits(baseline):
    """Up to SMALL_ROWS customers take every month at once: the bits of the long path."""
    X, churn = made_table(600)
    X["tenure"] = np.floor(X["tenure"])
    model = SurvivalValue(
        "tenure", ["risky", "noise"], "revenue", model="cox", baseline=baseline,
        monthly_discount_rate=0.0072,
    ).fit(X, churn)  # fmt: skip
    few = survival_module.SMALL_ROWS
    assert len(X) > few
    whole, risk = model.transform(X), model.risk_score(X)
    for start in range(0, 600, few):
        part = X.iloc[start : start + few]
        np.testing.assert_array_equal(model.risk_score(part), risk[start : start + few])
        expected = whole.iloc[start : start + few].to_numpy()
        np.testing.assert_array_equal(model.transform(part).to_numpy(), expected)
        table = Columns({c: part[c].to_numpy() for c in part.columns}, part.index.to_numpy())
        got = model.transform(table)
        assert isinstance(got, Columns)
        np.testing.assert_array_equal(got.to_numpy(), expected)

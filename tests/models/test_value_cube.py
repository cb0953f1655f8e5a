"""ValueCube end to end on both real datasets."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from conftest import CDNOW_CONFIG, CDNOW_TXT, TELCO_CONFIG, TELCO_CSV

from valuecube.features.config import ClvSpec, DatasetConfig, load_config
from valuecube.features.customers import build_customer_table
from valuecube.features.inputs import load_input
from valuecube.features.loyalty import LOYALTY_TYPES
from valuecube.features.survival import lifetime_design
from valuecube.models.segments import SEGMENT_CODES
from valuecube.models.value_cube import CUBE_OUTPUT_COLUMNS, ValueCube

STAGES = {"acquisition", "development", "maturity", "decline"}


def _fitted(config, data):
    cfg = load_config(config)
    table = build_customer_table(load_input(data, cfg.input, strict=True), cfg.input).table
    return cfg, table, ValueCube(cfg).fit(table)


@pytest.fixture(scope="module", params=["telco", "cdnow"])
def fitted(request):
    if request.param == "telco":
        return _fitted(TELCO_CONFIG, TELCO_CSV)
    return _fitted(CDNOW_CONFIG, CDNOW_TXT)


def test_score_output(fitted) -> None:
    cfg, table, cube = fitted
    scored, rejected = cube.segment(table)
    assert tuple(scored.columns[: len(CUBE_OUTPUT_COLUMNS)]) == CUBE_OUTPUT_COLUMNS
    assert len(scored) + len(rejected) == len(table) and scored.index.is_unique
    s = scored[["cv_score", "pv_score", "ra_score"]].to_numpy()
    assert np.isfinite(s).all() and s.min() >= 1.0 and s.max() <= 9.0
    assert set(scored["segment"]) <= set(SEGMENT_CODES) and scored["segment"].nunique() >= 4
    assert scored["segment_name"].notna().all() and scored["policy"].notna().all()
    assert np.isfinite(scored["clv"]).all() and (scored["clv"] >= 0).all()
    assert set(scored["lifecycle_stage"]) <= STAGES
    high_cv = scored["cv_score"] >= cfg.segmentation.threshold
    assert (
        scored.loc[high_cv, "segment"]
        .isin(["key_attack_defend", "attack_defend", "key_maintain", "maintain"])
        .all()
    )


def test_alone_equals_batch(fitted) -> None:
    _, table, cube = fitted
    scored, _ = cube.segment(table)
    ids = table.index[[0, 17, len(table) // 2]]
    for cid in ids:
        alone, _ = cube.segment(table.loc[[cid]])
        pd.testing.assert_frame_equal(alone, scored.loc[[cid]])
    subset = table.iloc[::-7]
    part, _ = cube.segment(subset)
    pd.testing.assert_frame_equal(part, scored.loc[subset.index])


def test_factors_and_unfitted(fitted) -> None:
    cfg, table, cube = fitted
    f = cube.factors(table.head(20))
    assert list(f.columns) == list(cfg.factors) and len(f) == 20
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        ValueCube(cfg).segment(table.head(2))


def test_telco_clv_revenue_model() -> None:
    """With ``clv.method: revenue`` (a config override) clv is the flat 5-year annuity."""
    cfg = load_config(TELCO_CONFIG)
    cfg = cfg.model_copy(
        update={
            "clv": ClvSpec(
                method="revenue", yearly_revenue="yearly_revenue", years=5, discount_rate=0.09
            )
        }
    )
    table = build_customer_table(load_input(TELCO_CSV, cfg.input, strict=True), cfg.input).table
    cube = ValueCube(cfg).fit(table)
    scored, _ = cube.segment(table.head(5))
    yearly = 12 * table["monthlycharges"].head(5).to_numpy()
    annuity = sum(1 / 1.09**t for t in range(1, 6))
    np.testing.assert_allclose(scored["clv"], yearly * annuity, rtol=1e-9)
    assert "survival_clv" not in scored and "survival_12m" in scored


def test_telco_clv_is_survival_weighted() -> None:
    """clv = Σ_{t=1..60} m · S(t | τ) / (1 + r)^t, r = 1.09^(1/12) − 1 (docs/lifetimes.md)."""
    cfg, table, cube = _fitted(TELCO_CONFIG, TELCO_CSV)
    assert cfg.clv.method == "survival"
    head = table.head(20)
    scored, _ = cube.segment(head)
    monthly = head["monthlycharges"].to_numpy()
    rate = 1.09 ** (1 / 12) - 1
    # from the fitted curve: S(τ + t) / S(τ) straight from survival_at
    design = lifetime_design(head, cube.factors(head), cfg)
    months = head["tenure"].to_numpy()[:, None] + np.arange(61)
    curve = cube.survival_.survival_at(design, months)
    conditional = curve[:, 1:] / curve[:, [0]]
    expected = monthly * (conditional / (1 + rate) ** np.arange(1, 61)).sum(axis=1)
    np.testing.assert_allclose(scored["clv"], expected, rtol=1e-9)
    assert (scored["clv"] < monthly * 60).all()
    # same bill, different survival: CLV differs (a flat number of years could not tell them)
    assert scored["clv"].nunique() == len(scored)

    # a tiny curve by hand: S(t) = 2^-t for everyone (no covariate effect, H0(t) = t·ln 2), so
    # S(t | τ) = 2^-t and clv = m · Σ_{t=1..60} q^t with q = 0.5 / 1.0072 = 0.4964: 0.9858 m
    pinned = copy.deepcopy(cube)
    pinned.survival_.estimator_.coef_ = np.zeros_like(pinned.survival_.estimator_.coef_)
    pinned.survival_.weibull_shape_, pinned.survival_.weibull_log_scale_ = 1.0, np.log(np.log(2))
    scored, _ = pinned.segment(head)
    np.testing.assert_allclose(scored["clv"], 0.985790 * monthly, rtol=1e-6)
    np.testing.assert_allclose(scored["survival_12m"], 0.5**12, rtol=1e-9)


def test_survival_clv_needs_the_lifetime_block_and_the_label() -> None:
    cfg = load_config(TELCO_CONFIG)
    raw = cfg.model_dump(mode="json", exclude_none=True)
    raw.pop("lifetime")
    with pytest.raises(ValueError, match="needs a 'lifetime' block"):
        DatasetConfig.model_validate(raw)
    table = build_customer_table(load_input(TELCO_CSV, cfg.input, strict=True), cfg.input).table
    with pytest.raises(ValueError, match="churn label"):
        ValueCube(cfg).fit(table.drop(columns="churn").head(200))


def test_telco_unscorable_customer_rejected() -> None:
    _, table, cube = _fitted(TELCO_CONFIG, TELCO_CSV)
    bad = table.head(6).copy()
    bad["contract"] = bad["contract"].astype(
        str
    )  # a table built without validation (validated: Categorical)
    bad.iloc[3, bad.columns.get_loc("contract")] = "Ten year"  # unmapped category → NaN factor
    scored, rejected = cube.segment(bad)
    assert len(scored) == 5 and list(rejected.index) == [bad.index[3]]
    assert "contract_months" in rejected["reason"].iloc[0]


def test_telco_churn_higher_in_release_than_key_attack() -> None:
    _, table, cube = _fitted(TELCO_CONFIG, TELCO_CSV)
    scored, _ = cube.segment(table)
    rate = table["churn"].groupby(scored["segment"]).mean()
    assert rate["release"] > rate["key_attack_defend"]


def test_empty_batch(fitted) -> None:
    _, table, cube = fitted
    scored, rejected = cube.segment(table.head(0))
    assert tuple(scored.columns) == tuple(cube.segment(table.head(1))[0].columns)
    assert len(scored) == 0 and len(rejected) == 0
    assert scored["cv_score"].dtype == "float64" and "reason" in rejected.columns


def test_alone_equals_batch_exactly(fitted) -> None:
    _, table, cube = fitted
    scored, _ = cube.segment(table)
    rows = range(0, len(table), len(table) // 12)  # the classifier-level test covers many more rows
    alone = pd.concat([cube.segment(table.iloc[[i]])[0] for i in rows])
    pd.testing.assert_frame_equal(alone, scored.iloc[list(rows)], check_exact=True)


def test_loyalty_types_on_both_configs(fitted) -> None:
    cfg, table, cube = fitted
    scored, _ = cube.segment(table)
    assert (
        set(scored["loyalty_type"]) <= set(LOYALTY_TYPES) and scored["loyalty_type"].notna().all()
    )
    factors = cube.factors(table.loc[scored.index])
    attached = factors[cfg.loyalty.attachment] > cube.loyalty_cuts_[0]
    assert scored.loc[~attached.to_numpy(), "loyalty_type"].isin(["inertia", "price"]).all()
    assert scored.loc[attached.to_numpy(), "loyalty_type"].isin(["super-value", "incentive"]).all()
    if cfg.name == "telco":  # thresholds: a term contract; the median tenure of the fit customers
        assert cube.loyalty_cuts_ == (1.0, float(table["tenure"].median()))
        rate = table["churn"].groupby(scored["loyalty_type"]).mean()
        assert rate["super-value"] < rate["inertia"] < rate["price"]


def test_spend_share_clv_method() -> None:
    """clv.method spend_share: each customer's shares move by the switching matrix."""
    cfg = DatasetConfig.model_validate(
        {
            "name": "brands",
            "input": {
                "shape": "customer_table",
                "id_column": "id",
                "columns": {
                    "id": {"type": "string"},
                    **{c: {"type": "float", "min": 0} for c in ("a", "b", "c", "visits", "spend")},
                },
            },
            "factors": {c: {"column": c} for c in ("a", "b", "c", "visits", "spend")},
            "tree": {
                dim: {"indicators": {"x": {"factors": {f: "benefit"}}}}
                for dim, f in zip(
                    ("current_value", "potential_value", "relative_advantage"),
                    ("spend", "visits", "a"),
                    strict=True,
                )
            },
            "clv": {
                "method": "spend_share",
                "discount_rate": 0.09,
                "spend_share": {
                    "switching": [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.25, 0.15, 0.6]],
                    "shares": ["a", "b", "c"],
                    "ours": 0,
                    "frequency": "visits",
                    "revenue": "spend",
                    "periods": 2,
                },
            },
        }
    )
    rng = np.random.default_rng(0)
    raw = rng.dirichlet([1, 1, 1], size=40)
    table = pd.DataFrame(
        {"a": raw[:, 0], "b": raw[:, 1], "c": raw[:, 2], "visits": 1.0, "spend": 500.0},
        index=pd.Index([f"k{i}" for i in range(40)], name="customer_id"),
    )
    table.iloc[0, :3] = [0.6, 0.3, 0.1]  # docs/methods.md §2.6 check: brand A 689.38
    table.iloc[1, :3] = [0.6, 0.3, 0.2]  # shares that do not sum to 1
    cube = ValueCube(cfg).fit(table)
    scored, rejected = cube.segment(table)
    assert round(float(scored.loc["k0", "clv"]), 2) == 689.38
    assert list(rejected.index) == ["k1"] and "sum to 1.1" in rejected.iloc[0]["reason"]
    assert (scored["clv"] > 0).all() and scored["loyalty_type"].isna().all()

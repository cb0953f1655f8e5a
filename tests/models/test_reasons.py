"""Reasons on every score: Integrated Gradients attributions, their grouping, format and sum."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import TELCO_CONFIG

from valuecube.features.config import load_config
from valuecube.models.packaged import unwrap
from valuecube.models.reasons import as_json, attribute, group_names
from valuecube.training.data import load_training_data

ADDITIVITY_TOL = 1e-3
"""Documented tolerance (probability points) of sum(effects) vs p − p(baseline)."""


@pytest.fixture(scope="module")
def telco_rows() -> pd.DataFrame:
    data = load_training_data(load_config(TELCO_CONFIG), seed=0)
    return data.model_input(data.split.test[:40])


def test_copies_and_one_hots_are_reported_once_under_the_factor() -> None:
    config = load_config(TELCO_CONFIG)
    names = group_names(
        ["u:tenure_months", "x:tenure", "c:contract=One year", "c:gender=Male", "f:x"], config
    )
    assert names == ["tenure_months", "tenure_months", "contract_months", "gender", "x"]


def test_effects_add_up_to_probability_minus_baseline(telco_pyfunc, telco_rows) -> None:
    model = unwrap(telco_pyfunc)
    customers = model.customers(telco_rows)
    customers, factors = model.prepare(customers)
    X = model.design.transform(customers, factors)
    effects, baseline, delta = attribute(model, X)["churn"]
    p = model.network.predict_churn_proba(X)
    np.testing.assert_allclose(effects.sum(axis=1), p - baseline, atol=ADDITIVITY_TOL)
    assert np.abs(delta).max() < ADDITIVITY_TOL
    assert "tenure" not in effects.columns and "tenure_months" in effects.columns
    assert not any(c.startswith(("c:", "x:", "u:")) for c in effects.columns)


def test_pyfunc_reasons_param_format(telco_pyfunc, telco_rows) -> None:
    plain = telco_pyfunc.predict(telco_rows)
    assert "churn_reasons" not in plain.columns
    out = telco_pyfunc.predict(telco_rows, params={"reasons": 2})
    np.testing.assert_allclose(out["churn_probability"], plain["churn_probability"])
    for reasons in out["churn_reasons"]:
        assert 1 <= len(reasons) <= 4
        assert all(set(r) == {"factor", "value", "effect"} for r in reasons)
        effects = [r["effect"] for r in reasons]
        up = [e for e in effects if e > 0]
        down = [e for e in effects if e < 0]
        assert len(up) <= 2 and len(down) <= 2
        assert up == sorted(up, reverse=True) and down == sorted(down)
    assert json.loads(as_json(out["churn_reasons"]).iloc[0]) == out["churn_reasons"].iloc[0]

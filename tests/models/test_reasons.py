"""Reasons on every score: Integrated Gradients attributions, their grouping, format and sum."""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import CDNOW_TXT, TELCO_CONFIG

from valuecube.features.btyd import OUTPUT_COLUMNS as BTYD_OUTPUTS
from valuecube.features.config import load_config
from valuecube.features.customers import build_customer_table
from valuecube.features.inputs import load_input
from valuecube.models.packaged import unwrap
from valuecube.models.reasons import (
    SPEND_TOLERANCE,
    _baseline,
    _targets,
    as_json,
    attribute,
    group_names,
    integrated_gradients,
    pick_reasons,
    reason_lists,
    top_reasons,
)
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


def test_the_baseline_is_the_output_at_the_mean_input_once_per_fitted_module(
    telco_pyfunc, telco_rows
) -> None:
    """attribute's baseline is f(standardised zero) of the network's module; another module
    (what a refit makes) gets its own value, not the first one's."""
    model = unwrap(telco_pyfunc)
    module = model.network.module_
    forward = _targets(model.network)["churn"]
    width = model.network.input_mean_.shape[0]
    x = torch.zeros((2, width))
    with torch.no_grad():
        fresh = float(forward(torch.zeros((1, width)))[0])
    assert _baseline(module, "churn", forward, x) == fresh
    assert _baseline(module, "churn", forward, x) == fresh  # cached: the same value
    other = copy.deepcopy(module)
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(0.01)
    moved = _targets(SimpleNamespace(module_=other))["churn"]
    with torch.no_grad():
        expected = float(moved(torch.zeros((1, width)))[0])
    assert expected != fresh
    assert _baseline(other, "churn", moved, x) == expected
    customers, factors = model.prepare(model.customers(telco_rows))
    _, baseline, _ = attribute(model, model.design.transform(customers, factors))["churn"]
    assert baseline == fresh


def _captum_ig(summed, x, steps, steps_per_pass):
    from captum.attr import IntegratedGradients

    zero = torch.zeros_like(x).unsqueeze(0)
    return IntegratedGradients(summed).attribute(
        x.unsqueeze(0), baselines=zero, n_steps=steps, internal_batch_size=steps_per_pass
    )[0]


@pytest.mark.parametrize(("steps", "steps_per_pass"), [(8, 65_536), (8, 3), (32, 5), (2, 1)])
def test_integrated_gradients_are_captums_bit_for_bit(
    telco_pyfunc, telco_rows, steps, steps_per_pass
):
    """Our Integrated Gradients are Captum's ``IntegratedGradients`` (Gauss-Legendre), to the bit,
    with all steps in one pass and with the steps split over passes (``internal_batch_size``)."""
    model = unwrap(telco_pyfunc)
    customers, factors = model.prepare(model.customers(telco_rows))
    x = model.network.standardise(model.design.transform(customers, factors)).contiguous()
    forward, width = _targets(model.network)["churn"], x.shape[1]

    def summed(z):
        return forward(z.reshape(-1, width)).reshape(z.shape[0], -1).sum(dim=1)

    ours = integrated_gradients(summed, x, steps, steps_per_pass)
    assert torch.equal(ours, _captum_ig(summed, x, steps, steps_per_pass))
    assert float(ours.abs().max()) > 1e-3  # not all zero


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


def test_top_reasons_text_is_the_json_of_the_picked_effects() -> None:
    """The Arrow-built text equals json.dumps of the reasons picked one customer at a time."""
    effects = pd.DataFrame(
        {
            "a": [0.3, -0.1, 0.0],
            "b": [-0.2, 0.4, 0.0],
            'q"x': [0.1, -0.3, 0.0],
            "c": [0.0, 0.2, 0.0],
        }
    )
    values = {
        "a": np.array([1.0, 2.5, np.nan]),
        "b": np.array(["Fiber optic", None, "No"], dtype=object),
        'q"x': np.array([3, 4, 5]),
        "c": np.array([0.1234567, -7.0, 1e9]),
    }
    got = [json.loads(text) for text in top_reasons(effects, values, 2).to_pylist()]
    assert got[0] == [
        {"factor": "a", "value": 1.0, "effect": 0.3},
        {"factor": 'q"x', "value": 3, "effect": 0.1},
        {"factor": "b", "value": "Fiber optic", "effect": -0.2},
    ]
    assert got[1] == [
        {"factor": "b", "value": None, "effect": 0.4},
        {"factor": "c", "value": -7.0, "effect": 0.2},
        {"factor": 'q"x', "value": 4, "effect": -0.3},
        {"factor": "a", "value": 2.5, "effect": -0.1},
    ]
    assert got[2] == []  # no effect: no reason
    assert reason_lists(effects, values, 2) == got
    picked, _, keep = pick_reasons(effects.to_numpy(), 9)  # n above the names
    assert picked.shape == (3, 8) and keep.sum() == 7


def test_reason_lists_equal_the_parsed_text_on_many_customers() -> None:
    """The API's lists, built directly, are json.loads of the files' text, value for value."""
    rng = np.random.default_rng(7)
    m, names = 3000, [f"f{i}" for i in range(12)]
    effects = pd.DataFrame(rng.normal(0, 0.05, (m, len(names))), columns=names)
    effects.iloc[::17] = 0.0
    values = {name: rng.normal(50, 30, m) for name in names}
    values["f0"][::5] = np.nan
    values["f1"] = rng.integers(0, 72, m)
    values["f2"] = np.where(rng.random(m) < 0.1, None, rng.choice(["DSL", "No", 'a "b"'], m))
    values["f3"] = np.round(rng.normal(0, 1e6, m))
    values["f4"][::7] = np.inf
    for n in (1, 3, 20):
        text = [json.loads(t) for t in top_reasons(effects, values, n).to_pylist()]
        lists = reason_lists(effects, values, n)
        assert lists == text
        pairs = [
            (a, b) for x, y in zip(lists, text, strict=True) for a, b in zip(x, y, strict=True)
        ]
        assert all(type(a["value"]) is type(b["value"]) for a, b in pairs)  # int, float, None


def test_spend_reasons_add_up_to_expected_spend_minus_baseline(cdnow_model) -> None:
    """Forecasting model: spend effects sum to expected_spend − spend(baseline); top-N listed."""
    import mlflow.pyfunc

    model = unwrap(mlflow.pyfunc.load_model("models:/test-cdnow@challenger"))
    spec = model.config.input
    validated = load_input(CDNOW_TXT, spec, strict=True)
    table = build_customer_table(validated, spec, with_labels=False).table
    rows = table[model.metadata["customer_columns"]].iloc[::60].head(40).reset_index()
    customers, factors = model.prepare(model.customers(rows))  # adds the BTYD columns
    X = model.design.transform(
        customers.drop(columns=[c for c in BTYD_OUTPUTS if c in customers.columns]), factors
    )
    effects, baseline, delta = attribute(model, X)["spend"]
    scored = model.predict_customers(customers, factors, reasons=2)
    spend = scored["expected_spend"].to_numpy()
    tolerance = SPEND_TOLERANCE * max(1.0, float(np.abs(spend).max()))  # spend is in currency
    np.testing.assert_allclose(effects.sum(axis=1) + baseline, spend, atol=tolerance, rtol=0)
    assert np.abs(delta).max() < tolerance and np.abs(spend - baseline).max() > 10 * tolerance
    for i, reasons in enumerate(scored["spend_reasons"]):
        row = effects.iloc[i]
        listed = {r["factor"]: r["effect"] for r in reasons}
        for factor, effect in listed.items():  # each effect is the customer's attribution
            assert effect == pytest.approx(row[factor], abs=1e-6)
        up = [f for f in row.sort_values(ascending=False).index[:2] if row[f] > 0]
        down = [f for f in row.sort_values().index[:2] if row[f] < 0]
        assert [r["factor"] for r in reasons] == up + down

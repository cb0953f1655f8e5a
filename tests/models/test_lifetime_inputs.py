"""Survival outputs as network inputs: the design's ``l:`` block, the validation choice, scoring.

Real Telco data and a real (small) network; the survival model is the cube's,
fitted on the training customers only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import TELCO_CONFIG

import mlflow
from valuecube.features.config import ConfigError, DatasetConfig, load_config
from valuecube.features.survival import SURVIVAL_COLUMNS
from valuecube.models.design import NetworkDesign
from valuecube.models.network import BPNetworkClassifier
from valuecube.models.packaged import ChurnSegmentModel, ValueCubePyfunc
from valuecube.models.value_cube import ValueCube
from valuecube.training.data import load_training_data
from valuecube.training.evaluation_split import with_evaluation_split
from valuecube.training.lifetime_inputs import choose_design
from valuecube.training.train import _part

LIFETIME = [f"l:{c}" for c in SURVIVAL_COLUMNS]


@pytest.fixture(scope="module")
def telco():
    cfg = load_config(TELCO_CONFIG)
    data = load_training_data(cfg, seed=0)
    data = with_evaluation_split(data, seed=0)
    table = data.customers.table
    train = table.loc[data.split.train]
    cube = ValueCube(cfg).fit(train)
    return cfg, data, train, cube


def parts_of(data, cube):
    return lambda design: {
        part: _part(data, cube, design, ids) for part, ids in vars(data.split).items()
    }


def test_design_includes_the_survival_columns_only_when_asked(telco):
    _cfg, _data, train, cube = telco
    without = NetworkDesign(cube).fit(train)
    with_lifetimes = NetworkDesign(cube, lifetime_inputs=True).fit(train)
    assert not set(LIFETIME) & set(without.columns_)
    assert with_lifetimes.columns_ == [*without.columns_, *LIFETIME]
    X = with_lifetimes.transform(train.iloc[:50])
    scored, _ = cube.segment(train.iloc[:50])
    for column in SURVIVAL_COLUMNS:  # the same numbers segment writes
        np.testing.assert_allclose(X[f"l:{column}"], scored[column], rtol=1e-9)
    assert X["l:expected_remaining_months"].nunique() > 40


def test_a_cube_without_survival_cannot_give_lifetime_inputs(telco):
    _cfg, _data, train, _cube = telco
    raw = yaml.safe_load(TELCO_CONFIG.read_text())
    raw.pop("lifetime")
    raw["clv"] = {"method": "revenue", "yearly_revenue": "yearly_revenue"}
    cfg = DatasetConfig.model_validate(raw)
    assert cfg.network.lifetime_inputs == "auto"
    cube = ValueCube(cfg).fit(train)
    assert cube.survival_ is None
    with pytest.raises(ValueError, match="survival model"):
        NetworkDesign(cube, lifetime_inputs=True).fit(train)
    design, _, choice = choose_design(
        NetworkDesign(cube).fit(train), train, lambda d: {}, "auto", seed=0
    )
    assert choice is None and not set(LIFETIME) & set(design.columns_)


def test_the_option_is_validated(tmp_path):
    text = TELCO_CONFIG.read_text() + "\nnetwork:\n  lifetime_inputs: sometimes\n"
    path = tmp_path / "telco.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"network\.lifetime_inputs"):
        load_config(path)


@pytest.mark.parametrize("option", ["always", "never"])
def test_fixed_options_need_no_comparison(telco, option):
    _cfg, data, train, cube = telco
    design, parts, choice = choose_design(
        NetworkDesign(cube).fit(train), train, parts_of(data, cube), option, seed=0
    )
    assert choice.kept == (option == "always")
    assert choice.metrics() == {}
    assert (set(LIFETIME) <= set(design.columns_)) == choice.kept
    assert list(parts["validation"]["X"].columns) == design.columns_
    assert "network.lifetime_inputs: " + option in choice.line()


def test_auto_compares_on_validation_and_records_the_choice(telco):
    _cfg, data, train, cube = telco
    design, parts, choice = choose_design(
        NetworkDesign(cube).fit(train), train, parts_of(data, cube), "auto", seed=0, max_epochs=5
    )
    assert 0.5 < choice.auc_with < 1 and 0.5 < choice.auc_without < 1
    assert choice.kept == (choice.auc_with > choice.auc_without)
    assert (set(LIFETIME) <= set(design.columns_)) == choice.kept
    assert choice.params() == {
        "lifetime_inputs_option": "auto",
        "lifetime_inputs": str(choice.kept).lower(),
    }
    assert set(choice.metrics()) == {
        "val_churn_roc_auc_with_lifetimes",
        "val_churn_roc_auc_without_lifetimes",
    }
    assert f"{choice.auc_with:.3f} with vs {choice.auc_without:.3f} without" in choice.line()
    assert not set(parts["test"]["X"].index) & set(parts["validation"]["X"].index)


def test_packaged_model_with_lifetime_inputs_scores_raw_rows(telco, tmp_path):
    cfg, data, train, cube = telco
    design = NetworkDesign(cube, lifetime_inputs=True).fit(train)
    part = _part(data, cube, design, data.split.train)
    network = BPNetworkClassifier(max_epochs=3, random_state=0).fit(part["X"], part["y"])
    reference = ChurnSegmentModel.reference_distribution(cube, train)
    model = ChurnSegmentModel(cfg, cube, design, network, reference)
    rows = data.model_input(data.split.test[:20])
    assert not set(SURVIVAL_COLUMNS) & set(rows.columns)  # raw rows: computed at scoring time
    mlflow.pyfunc.save_model(str(tmp_path / "model"), python_model=ValueCubePyfunc(model))
    loaded = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    got = loaded.predict(rows)
    expected = model.predict(rows)
    np.testing.assert_allclose(got["churn_probability"], expected["churn_probability"], atol=1e-9)
    customers = model.customers(rows)
    X = design.transform(customers)
    direct = network.predict_churn_proba(X)
    np.testing.assert_allclose(got["churn_probability"], direct, atol=1e-6)
    # the survival inputs matter: other survival values give other churn probabilities
    shifted = X.assign(**{"l:expected_remaining_months": X["l:expected_remaining_months"] + 30})
    assert not np.allclose(network.predict_churn_proba(shifted), direct)
    assert isinstance(got, pd.DataFrame) and len(got) == 20

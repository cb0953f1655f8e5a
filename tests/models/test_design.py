"""NetworkDesign: columns frozen at fit, one-hot over declared categories, factors in [0, 1]."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import CDNOW_CONFIG, TELCO_CONFIG
from sklearn.exceptions import NotFittedError

from valuecube.features.config import load_config
from valuecube.models.design import NetworkDesign
from valuecube.models.value_cube import ValueCube
from valuecube.training.data import load_training_data


@pytest.fixture(scope="module")
def telco():
    cfg = load_config(TELCO_CONFIG)
    data = load_training_data(cfg, seed=0)
    table = data.customers.table
    train = table.loc[data.split.train]
    cube = ValueCube(cfg).fit(train)
    return cfg, table, train, cube, NetworkDesign(cube).fit(train)


def test_columns_frozen_and_ordered(telco) -> None:
    _cfg, _table, train, _cube, design = telco
    X = design.transform(train)
    assert list(X.columns) == design.columns_
    assert list(design.get_feature_names_out()) == design.columns_
    assert X.dtypes.eq("float64").all()
    assert np.isfinite(X.to_numpy()).all()
    assert X.index.equals(train.index)
    prefixes = {c.split(":", 1)[0] for c in design.columns_}
    assert {"u", "x", "c"} <= prefixes
    assert "s" not in prefixes  # a customer table's segment head learns the rule from the factors


def test_carries_the_normalised_factors(telco) -> None:
    """The u: columns are the cube's normalised factors (the same numbers)."""
    _cfg, _table, train, cube, design = telco
    X = design.transform(train)
    factors = cube.factors(train)
    u = cube.fuzzy_.normalize(factors)
    np.testing.assert_array_equal(X[[f"u:{c}" for c in u.columns]].to_numpy(), u.to_numpy())


def test_subset_gives_same_columns_and_values(telco) -> None:
    _cfg, table, _train, _cube, design = telco
    full = design.transform(table)
    subset_ids = table.index[[5, 17, 99]]
    sub = design.transform(table.loc[subset_ids])
    assert list(sub.columns) == design.columns_
    pd.testing.assert_frame_equal(sub, full.loc[subset_ids])
    one = design.transform(table.loc[subset_ids[:1]])
    assert list(one.columns) == design.columns_
    pd.testing.assert_frame_equal(one, full.loc[subset_ids[:1]])


def test_single_category_subset_keeps_all_onehot_columns(telco) -> None:
    _cfg, table, _train, _cube, design = telco
    only_dsl = table[table["internetservice"] == "DSL"].head(4)
    X = design.transform(only_dsl)
    assert list(X.columns) == design.columns_
    assert (X["c:internetservice=DSL"] == 1.0).all()
    assert (X["c:internetservice=Fiber optic"] == 0.0).all()
    assert (X["c:internetservice=No"] == 0.0).all()


def test_onehot_columns_for_declared_categories(telco) -> None:
    cfg, _table, train, _cube, design = telco
    X = design.transform(train)
    for name, spec in cfg.input.columns.items():
        if spec.type != "category" or name in (cfg.input.label_column, cfg.input.id_column):
            continue
        cols = [f"c:{name}={v}" for v in spec.values]
        assert all(c in design.columns_ for c in cols), name
        np.testing.assert_allclose(
            X[cols].sum(axis=1), 1.0, err_msg=name
        )  # exactly one level per customer
    assert not any(c.startswith("c:churn=") or c.startswith("x:churn") for c in design.columns_)
    assert not any("customerid" in c for c in design.columns_)
    assert "c:contract=Two year" in design.columns_
    assert "x:monthlycharges" in design.columns_


def test_u_columns_in_unit_interval(telco) -> None:
    cfg, table, train, _cube, design = telco
    u_cols = [c for c in design.columns_ if c.startswith("u:")]
    assert u_cols and set(c[2:] for c in u_cols) == set(cfg.tree.factor_names())
    for frame in (design.transform(train), design.transform(table)):
        values = frame[u_cols].to_numpy()
        assert (values >= 0).all() and (values <= 1).all()


def test_transform_before_fit_raises(telco) -> None:
    _cfg, _table, train, cube, _design = telco
    with pytest.raises(NotFittedError):
        NetworkDesign(cube).transform(train)


@pytest.fixture(scope="module")
def cdnow():
    """The CDNOW training data and its cube (a BTYD fit: once for the module's two tests)."""
    cfg = load_config(CDNOW_CONFIG)
    data = load_training_data(cfg, seed=0)
    train = data.customers.table.loc[data.split.train]
    return data, train, ValueCube(cfg).fit(train)


def test_transaction_log_design_has_no_input_columns(cdnow) -> None:
    data, train, cube = cdnow
    design = NetworkDesign(cube).fit(train)
    assert not any(c.startswith(("x:", "c:")) for c in design.columns_)
    ids = data.split.test[:3]
    X = design.transform(data.customers.table.loc[ids])
    assert list(X.columns) == design.columns_ and np.isfinite(X.to_numpy()).all()
    u = X[[c for c in design.columns_ if c.startswith("u:")]].to_numpy()
    assert (u >= 0).all() and (u <= 1).all()


def test_forecast_design_carries_what_is_known_at_the_as_of_date(cdnow) -> None:
    data, train, cube = cdnow
    design = NetworkDesign(cube, horizon_days=273).fit(train)
    prefixes = {c.split(":", 1)[0] for c in design.columns_}
    assert prefixes == {"s", "u", "f", "r", "h", "g", "si", "gi"}
    customers = data.customers.table.loc[data.split.test[:200]]
    X = design.transform(customers)
    factors = cube.factors(customers)
    np.testing.assert_array_equal(
        X[[f"s:{c}" for c in ("cv_score", "pv_score", "ra_score")]], cube.fuzzy_.transform(factors)
    )
    np.testing.assert_array_equal(design.segment_now(X), cube.fuzzy_.predict(factors))
    assert (X[[c for c in design.columns_ if c.startswith("gi:")]].sum(axis=1) == 1).all()
    assert "h:spend_q1" in design.columns_ and "r:monetary_total" in design.columns_

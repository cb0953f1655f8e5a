"""Forecasting: frozen-cube labels, metrics, tables per target, scoring as of a date."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import CDNOW_CONFIG, CDNOW_TXT

from mlflow import MlflowClient
from valuecube.features.config import load_config
from valuecube.features.snapshots import forecast_horizon_days
from valuecube.models.design import NetworkDesign
from valuecube.models.packaged import PREDICTION_COLUMNS
from valuecube.models.segments import SEGMENT_CODES
from valuecube.models.value_cube import ValueCube
from valuecube.training.data import load_training_data
from valuecube.training.forecast_data import forecast_part
from valuecube.training.forecast_metrics import normalised_gini, spend_metrics, top_decile_share
from valuecube.training.peers import NETWORK
from valuecube.training.train import TrainResult

T = pd.Timestamp


def test_gini_and_top_decile_by_hand() -> None:
    actual = np.array([0.0, 0.0, 10.0, 0.0, 30.0, 0.0, 0.0, 0.0, 0.0, 60.0])
    assert normalised_gini(actual, actual) == pytest.approx(1.0)
    assert normalised_gini(actual, -actual) < 0
    assert top_decile_share(actual, actual) == pytest.approx(0.6)  # the top 1 of 10 spent 60 of 100
    assert top_decile_share(actual, np.arange(10.0)) == pytest.approx(0.6)
    assert np.isnan(spend_metrics(actual, actual, money=False)["mae"])
    assert spend_metrics(actual, actual)["mae"] == 0.0


@pytest.fixture(scope="module")
def cdnow_frozen():
    cfg = load_config(CDNOW_CONFIG)
    data = load_training_data(cfg, seed=0)
    table = data.customers.table
    cube = ValueCube(cfg).fit(table.loc[data.split.train])
    design = NetworkDesign(cube, horizon_days=forecast_horizon_days(cfg)).fit(table.loc[:])
    return cfg, data, cube, design


def test_segment_under_the_frozen_cube_does_not_depend_on_other_customers(cdnow_frozen) -> None:
    cfg, data, cube, design = cdnow_frozen
    ids = data.split.test[:300]
    kwargs = dict(window_start=T(cfg.input.window_start))
    dates = [T("1997-06-30"), T(cfg.input.as_of)]
    many = forecast_part(data.log, cube, design, ids, dates, 273, **kwargs)
    for cid in ids[[0, 7, 123]]:
        alone = forecast_part(data.log, cube, design, pd.Index([cid]), dates, 273, **kwargs)
        rows = many.y.xs(cid, level="customer_id", drop_level=False)
        pd.testing.assert_frame_equal(alone.y, rows)
        pd.testing.assert_frame_equal(
            alone.X, many.X.xs(cid, level="customer_id", drop_level=False), check_exact=True
        )
    assert set(many.y["segment"]) <= set(SEGMENT_CODES)
    # the labels at as_of are the log's own holdout labels (the horizon is the holdout window)
    at_as_of = many.y.xs(T(cfg.input.as_of), level="as_of")
    table = data.customers.table.loc[at_as_of.index]
    np.testing.assert_array_equal(at_as_of["churn"], table["churn"])
    np.testing.assert_allclose(at_as_of["spend"], table["future_spend"])


def test_cdnow_train_reports_one_table_per_target(cdnow_model: TrainResult) -> None:
    tables = cdnow_model.tables
    assert set(tables) == {"segment_next", "future_spend", "churn"}
    assert {NETWORK, "persistence", "lightgbm"} == set(tables["segment_next"].index)
    assert {NETWORK, "bgnbd_gamma_gamma", "pv_score", "lightgbm_tweedie"} == set(
        tables["future_spend"].index
    )
    assert {NETWORK, "logistic_regression", "lightgbm", "bgnbd"} <= set(tables["churn"].index)
    assert list(tables["future_spend"].columns) == ["spearman", "gini", "top_decile_share", "mae"]
    assert tables["churn"]["roc_auc"].between(0.6, 1).all()
    assert tables["segment_next"].loc["persistence", "accuracy"] < 0.7  # ageing moves customers
    metrics = MlflowClient().get_run(cdnow_model.run_id).data.metrics
    assert metrics["test_segment_next_accuracy_bp_network"] == pytest.approx(
        tables["segment_next"].loc[NETWORK, "accuracy"]
    )
    assert "test_future_spend_gini_bgnbd_gamma_gamma" in metrics
    assert "test_future_spend_mae_pv_score" not in metrics  # a rank has no MAE
    assert cdnow_model.model.metadata["horizon_days"] == 273


def test_cdnow_model_outputs_the_forecast(cdnow_model: TrainResult) -> None:
    data = load_training_data(load_config(CDNOW_CONFIG), seed=0)
    out = cdnow_model.model.predict(data.model_input(data.split.test[:50]))
    forecast = ["segment_next", "expected_spend", "horizon_days"]
    start = list(out.columns).index("segment_next")  # after the common columns, before BTYD's
    assert list(out.columns[start : start + 3]) == forecast
    assert list(out.columns[:7]) == list(PREDICTION_COLUMNS)
    assert (out["horizon_days"] == 273).all()
    assert (out["expected_spend"] >= 0).all() and set(out["segment_next"]) <= set(SEGMENT_CODES)
    assert out["churn_probability"].between(0, 1).all()


def test_score_as_of_ignores_later_purchases(cdnow_model: TrainResult, tmp_path) -> None:
    """Scoring a log as of a date: purchases after it (changed, added) change nothing."""
    from valuecube.serving.batch import score_file

    raw = pd.read_csv(CDNOW_TXT, sep=r"\s+", dtype=str)
    raw = raw[raw["customer_id"].isin(raw["customer_id"].unique()[:200])]
    later = raw["date"] > "19970630"
    changed = raw.copy()
    changed.loc[later, "dollar_value"] = "999.99"
    extra = changed[later].head(20).assign(date="19980101")
    changed = pd.concat([changed, extra])
    scores = []
    for name, frame in (("original", raw), ("changed", changed)):
        path = tmp_path / f"{name}.txt"
        frame.to_csv(path, sep=" ", index=False)
        out = tmp_path / f"{name}.csv"
        score_file(
            cdnow_model.model_uri,
            path,
            out,
            as_of="1997-06-30",
            progress=False,
            scored_at=T("2026-01-01", tz="UTC"),
        )
        scores.append(pd.read_csv(out, dtype={"customer_id": str}))
    pd.testing.assert_frame_equal(scores[0], scores[1])
    assert len(scores[0]) == raw.loc[~later, "customer_id"].nunique()

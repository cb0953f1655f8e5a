"""The packaged model: pyfunc round trip via the registry, batch independence, input checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import CDNOW_CONFIG, TELCO_CONFIG, TELCO_CSV
from mlflow.types.schema import AnyType

import mlflow
from valuecube.features.config import load_config
from valuecube.features.inputs import InputError
from valuecube.features.survival import SURVIVAL_COLUMNS
from valuecube.models.packaged import (
    BTYD_COLUMNS,
    FORECAST_COLUMNS,
    PREDICTION_COLUMNS,
    ChurnSegmentModel,
    unwrap,
)
from valuecube.models.segments import SEGMENT_CODES
from valuecube.training.data import load_training_data

FLOATS = ["cv_score", "pv_score", "ra_score", "churn_probability"]


@pytest.fixture(scope="module")
def telco_rows() -> pd.DataFrame:
    data = load_training_data(load_config(TELCO_CONFIG), seed=0)
    return data.model_input(data.split.test[:8])


@pytest.fixture(scope="module")
def cdnow_rows() -> pd.DataFrame:
    data = load_training_data(load_config(CDNOW_CONFIG), seed=0)
    return data.model_input(data.split.test[:8])


@pytest.fixture(scope="module")
def cdnow_pyfunc(cdnow_model):
    return mlflow.pyfunc.load_model("models:/test-cdnow@challenger")


def _assert_same(a: pd.DataFrame, b: pd.DataFrame, atol: float = 1e-6) -> None:
    assert list(a.columns) == list(b.columns)
    assert list(a.columns[: len(PREDICTION_COLUMNS)]) == list(PREDICTION_COLUMNS)
    assert len(a) == len(b)
    a, b = a.reset_index(drop=True), b.reset_index(drop=True)
    for col in ("customer_id", "segment", "segment_model"):
        assert a[col].astype(str).tolist() == b[col].astype(str).tolist(), col
    for col in FLOATS:
        np.testing.assert_allclose(
            a[col].to_numpy(float), b[col].to_numpy(float), atol=atol, rtol=0, err_msg=col
        )


def test_telco_pyfunc_round_trip(telco_model, telco_pyfunc, telco_rows) -> None:
    expected = telco_model.model.predict(telco_rows)
    got = telco_pyfunc.predict(telco_rows)
    _assert_same(got, expected, atol=1e-9)  # the same pickled network: equal to rounding
    assert got["churn_probability"].between(0, 1).all()
    assert isinstance(unwrap(telco_pyfunc), ChurnSegmentModel)


def test_cdnow_pyfunc_round_trip(cdnow_model, cdnow_pyfunc, cdnow_rows) -> None:
    assert "customer_id" in cdnow_rows.columns
    expected = cdnow_model.model.predict(cdnow_rows)
    got = cdnow_pyfunc.predict(cdnow_rows)
    _assert_same(got, expected, atol=1e-9)
    assert got["customer_id"].astype(str).tolist() == cdnow_rows["customer_id"].astype(str).tolist()


@pytest.mark.parametrize("which", ["telco", "cdnow"])
def test_alone_equals_in_batch(which, request) -> None:
    model = request.getfixturevalue(f"{which}_pyfunc")
    rows = request.getfixturevalue(f"{which}_rows")
    batch = model.predict(rows)
    for i in (0, 3, len(rows) - 1):
        alone = model.predict(rows.iloc[[i]].reset_index(drop=True))
        _assert_same(alone, batch.iloc[[i]])


@pytest.mark.parametrize("value", [np.nan, "inf", "-inf", np.inf])
def test_telco_non_finite_rejected(telco_pyfunc, telco_rows, value) -> None:
    rows = telco_rows.astype({"monthlycharges": object}).copy()
    rows.loc[2, "monthlycharges"] = value
    with pytest.raises(Exception) as info:
        telco_pyfunc.predict(rows)
    message = str(info.value)
    assert "row 2" in message, message
    assert "monthlycharges" in message, message


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_cdnow_non_finite_rejected(cdnow_model, cdnow_pyfunc, cdnow_rows, value) -> None:
    column = cdnow_model.model.metadata["customer_columns"][0]
    rows = cdnow_rows.astype({column: object}).copy()
    rows.loc[1, column] = value
    with pytest.raises(Exception) as info:
        cdnow_pyfunc.predict(rows)
    message = str(info.value)
    assert "row 1" in message, message
    assert column in message, message


def test_in_memory_model_errors_are_input_errors(
    telco_model, cdnow_model, telco_rows, cdnow_rows
) -> None:
    rows = telco_rows.copy()
    rows.loc[0, "monthlycharges"] = np.nan
    with pytest.raises(InputError, match="monthlycharges"):
        telco_model.model.predict(rows)
    with pytest.raises(InputError, match="missing column"):
        cdnow_model.model.predict(
            cdnow_rows.drop(columns=cdnow_model.model.metadata["customer_columns"][:1])
        )
    dup = pd.concat([cdnow_rows.iloc[[0]], cdnow_rows.iloc[[0]]], ignore_index=True)
    with pytest.raises(InputError, match="duplicate"):
        cdnow_model.model.predict(dup)


def test_input_columns_and_empty_batch(telco_model, cdnow_model, telco_rows) -> None:
    assert "churn" not in telco_model.model.input_columns
    assert set(telco_model.model.input_columns) <= set(telco_rows.columns)
    assert cdnow_model.model.input_columns[0] == "customer_id"
    with pytest.raises(InputError, match="no rows"):
        telco_model.model.predict(telco_rows.iloc[:0])


def test_drift_is_small_on_training_like_data(telco_model) -> None:
    from valuecube.training.lineage import training_parts

    table = training_parts(telco_model.model)["train"]  # the customers it logged as trained on
    psi = telco_model.model.drift(table)
    assert (psi.abs() < 1e-9).all()
    assert set(psi.index) == set(telco_model.model.reference)


@pytest.mark.parametrize("column", ["frequency", "repeat_frequency"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_cdnow_count_columns_non_finite_named(cdnow_pyfunc, cdnow_rows, column, value) -> None:
    """The signature takes any dtype, so the model's own check names row, column and value."""
    assert isinstance(cdnow_pyfunc.metadata.get_input_schema().input_dict()[column].type, AnyType)
    rows = cdnow_rows.copy()
    rows.loc[4, column] = value
    with pytest.raises(Exception, match=rf"row 4: .*{column} = {value}"):
        cdnow_pyfunc.predict(rows)


def test_telco_pyfunc_takes_pandas_default_dtypes(telco_pyfunc, telco_model, tmp_path) -> None:
    """What pd.read_csv / pd.read_parquet give for a valid file: int64, str/object with blanks."""
    frame = pd.read_csv(TELCO_CSV).head(120)
    assert frame["tenure"].dtype == "int64" and frame["totalcharges"].dtype != "float64"
    assert (frame["totalcharges"].astype(str).str.strip() == "").any()  # blank cells kept as text
    got = telco_pyfunc.predict(frame)
    assert len(got) == 120 and got["churn_probability"].between(0, 1).all()
    expected = telco_model.model.predict(frame.drop(columns="churn"))
    _assert_same(got, expected, atol=1e-9)
    frame.to_parquet(tmp_path / "t.parquet")
    _assert_same(telco_pyfunc.predict(pd.read_parquet(tmp_path / "t.parquet")), got, atol=0)


def test_telco_pyfunc_bad_value_names_row_column_value(telco_pyfunc) -> None:
    frame = pd.read_csv(TELCO_CSV).head(30)
    frame["tenure"] = frame["tenure"].astype(object)
    frame.loc[9, "tenure"] = "ten"
    with pytest.raises(InputError) as info:
        telco_pyfunc.predict(frame)
    message = str(info.value)
    assert "row 9" in message and "tenure" in message and "'ten'" in message, message
    assert "schema" not in message.lower() and len(message) < 300


def test_cdnow_pyfunc_takes_read_csv_defaults(cdnow_pyfunc, cdnow_rows, tmp_path) -> None:
    numbers = cdnow_rows.drop(columns="customer_id")
    whole = [c for c in numbers.columns if (numbers[c] % 1 == 0).all()]
    cdnow_rows.astype(dict.fromkeys(whole, "int64")).to_csv(tmp_path / "c.csv", index=False)
    frame = pd.read_csv(tmp_path / "c.csv")
    assert frame["repeat_frequency"].dtype == "int64"
    got, expected = cdnow_pyfunc.predict(frame), cdnow_pyfunc.predict(cdnow_rows)
    for col in FLOATS:
        np.testing.assert_allclose(got[col], expected[col], atol=1e-9, rtol=0, err_msg=col)


def test_forecast_model_outputs_forecast_and_btyd_columns(cdnow_model, cdnow_pyfunc, cdnow_rows):
    """A log model: the forecast after the horizon, then the cube's BTYD columns (issues 16, 17)."""
    model = cdnow_model.model
    got = cdnow_pyfunc.predict(cdnow_rows)
    assert list(got.columns) == [*PREDICTION_COLUMNS, *FORECAST_COLUMNS, *BTYD_COLUMNS]
    assert model.horizon_days == float(model.design.horizon_days) > 0
    assert (got["horizon_days"] == model.horizon_days).all()
    assert (got["segment_next"] == got["segment_model"]).all()
    assert got["segment_next"].isin(SEGMENT_CODES).all()
    assert (got["expected_spend"] >= 0).all() and got["expected_spend"].notna().all()
    assert (got["clv_low"] <= got["clv"]).all() and (got["clv"] <= got["clv_high"]).all()
    assert got["p_alive"].between(0, 1).all() and (got["expected_purchases"] >= 0).all()
    # the same numbers as the frozen cube's own output for these customers
    customers = model.customers(cdnow_rows)
    scored, rejected = model.cube.segment(customers)
    assert rejected.empty
    for column in BTYD_COLUMNS:
        np.testing.assert_allclose(
            got[column].to_numpy(float), scored[column].to_numpy(float), rtol=1e-9, err_msg=column
        )


def test_customer_table_model_has_survival_not_forecast_columns(
    telco_model, telco_pyfunc, telco_rows
) -> None:
    """A Telco model keeps its columns (no forecast: no dates) and gains the survival columns."""
    model = telco_model.model
    got = telco_pyfunc.predict(telco_rows)
    assert model.horizon_days is None
    assert list(got.columns) == [*PREDICTION_COLUMNS, *SURVIVAL_COLUMNS]
    assert got["survival_12m"].between(0, 1).all()
    assert got["expected_remaining_months"].between(0, 60).all()
    scored, _ = model.cube.segment(model.customers(telco_rows))
    for column in SURVIVAL_COLUMNS:
        np.testing.assert_allclose(
            got[column].to_numpy(float), scored[column].to_numpy(float), rtol=1e-9, err_msg=column
        )
    empty = model.predict_customers(model.customers(telco_rows).iloc[:0])
    assert list(empty.columns) == list(got.columns) and len(empty) == 0

"""The packaged model: pyfunc round trip through the registry, batch independence, strict input checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import CDNOW_CONFIG, TELCO_CONFIG

import mlflow
from valuecube.features.config import load_config
from valuecube.features.inputs import InputError
from valuecube.models.packaged import PREDICTION_COLUMNS, ChurnSegmentModel, unwrap
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
def telco_pyfunc(telco_model):
    return mlflow.pyfunc.load_model("models:/test-telco@challenger")


@pytest.fixture(scope="module")
def cdnow_pyfunc(cdnow_model):
    return mlflow.pyfunc.load_model("models:/test-cdnow@challenger")


def _assert_same(a: pd.DataFrame, b: pd.DataFrame, atol: float = 1e-6) -> None:
    assert list(a.columns) == list(b.columns) == list(PREDICTION_COLUMNS)
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
    """Count columns too: the signature takes them as doubles, so the model's own check names row and column."""
    assert cdnow_pyfunc.metadata.get_input_schema().input_dict()[column].type.name == "double"
    rows = cdnow_rows.copy()
    rows.loc[4, column] = value
    with pytest.raises(Exception, match=rf"row 4: .*{column}"):
        cdnow_pyfunc.predict(rows)

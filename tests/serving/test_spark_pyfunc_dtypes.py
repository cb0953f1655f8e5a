"""The registered model under ``mlflow.pyfunc.spark_udf`` takes Spark's inferred dtypes (11.4).

Spark's ``inferSchema`` reads Telco's whole-number columns as int, the
charges as double and a column with blank cells as string; the model must
score those rows exactly as it scores ``pd.read_csv`` of the same file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlflow

from .helpers import TELCO_URI

pytestmark = pytest.mark.slow
DATA = Path(__file__).resolve().parents[2] / "data" / "telco_churn.csv"
N_ROWS = 200
SPARK_TYPES = {"f": "double", "i": "long", "u": "long", "b": "boolean", "O": "string"}


def test_spark_udf_equals_pandas_predict(spark, telco_uri: str, tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    pd.read_csv(DATA, nrows=N_ROWS, dtype=str, keep_default_na=False).to_csv(path, index=False)
    rows = pd.read_csv(path)  # pandas' own dtypes, as a user would read the file
    model = mlflow.pyfunc.load_model(TELCO_URI)
    expected = model.predict(rows)
    assert len(expected) == N_ROWS

    frame = spark.read.csv(str(path), header=True, inferSchema=True)
    assert frame.count() == N_ROWS
    result_type = ", ".join(
        f"{column} {SPARK_TYPES[dtype.kind]}" for column, dtype in expected.dtypes.items()
    )
    udf = mlflow.pyfunc.spark_udf(spark, TELCO_URI, result_type=result_type, env_manager="local")
    scored = frame.withColumn("scores", udf(*frame.columns)).select("scores.*").toPandas()

    got = scored.sort_values("customer_id").reset_index(drop=True)
    want = expected.sort_values("customer_id").reset_index(drop=True)
    assert list(got.columns) == list(want.columns)
    for column in want.columns:
        if want[column].dtype.kind == "f":
            np.testing.assert_allclose(got[column], want[column], rtol=0, atol=1e-9)
        else:
            assert got[column].astype(str).tolist() == want[column].astype(str).tolist(), column

"""The Spark engine on a real local Spark session: same results as the local engine, CLI and API."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from valuecube.cli import app
from valuecube.serving.batch import score_file
from valuecube.serving.loading import load_model
from valuecube.serving.output import output_columns

from .helpers import API_TOKEN, ROOT, assert_same_scores, customers_json, telco_rows

pytestmark = pytest.mark.slow
N_ROWS = 100_000


@pytest.fixture(scope="module")
def spark():
    """One local[2] session for the module (small shuffle partitions)."""
    from valuecube.serving.spark import spark_session

    session = spark_session("local[2]", shuffle_partitions=4)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def big_input(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = telco_rows(N_ROWS, seed=21)
    rows.loc[17, "tenure"] = "x"  # a few bad rows: both engines reject them alike
    rows.loc[99_000, "customerid"] = rows.loc[5, "customerid"]
    path = tmp_path_factory.mktemp("spark") / "customers.parquet"
    rows.to_parquet(path, index=False)
    return path


def test_spark_equals_local_cli_and_api(
    spark, telco_uri: str, big_input: Path, api_server: str, tmp_path: Path
) -> None:
    local_out, local_rej = tmp_path / "local.parquet", tmp_path / "local_rejects.csv"
    result = CliRunner().invoke(
        app,
        [
            "score",
            "-m",
            telco_uri,
            "-i",
            str(big_input),
            "-o",
            str(local_out),
            "--rejects",
            str(local_rej),
            "--reasons",
            "0",  # reasons on Spark: test_spark_reasons_and_levers_equal_the_local_engines
        ],
    )
    assert result.exit_code == 0, result.output

    spark_out, spark_rej = tmp_path / "spark.parquet", tmp_path / "spark_rejects.csv"
    loaded = load_model(telco_uri)
    outcome = score_file(
        loaded,
        big_input,
        spark_out,
        rejects=spark_rej,
        engine="spark",
        spark_master="local[2]",
        progress=False,
    )
    assert (outcome.rows_read, outcome.customers_scored, outcome.rows_rejected) == (
        N_ROWS,
        N_ROWS - 2,
        2,
    )
    assert spark_out.is_dir() and list(spark_out.glob("part-*.parquet"))
    assert not list(tmp_path.glob(".*"))  # no staging or temporary folders left

    local, remote = pd.read_parquet(local_out), pd.read_parquet(spark_out)
    assert list(remote.columns) == list(output_columns(loaded.model)) and len(remote) == N_ROWS - 2
    assert_same_scores(local, remote, atol=1e-6)
    pd.testing.assert_frame_equal(pd.read_csv(local_rej), pd.read_csv(spark_rej))

    # the same customers through the HTTP API
    sample = telco_rows(N_ROWS, seed=21).iloc[[0, 1, 2, 50_000, 99_999]]
    response = httpx.post(
        f"{api_server}/v1/score",
        json=customers_json(sample),
        headers={"Authorization": f"Bearer {API_TOKEN}"},
        timeout=60,
    )
    assert response.status_code == 200
    api = pd.DataFrame(response.json())
    assert_same_scores(api, remote[remote["customer_id"].isin(sample["customerid"])], atol=1e-6)


def test_spark_log_model_carries_forecast_and_btyd(spark, cdnow_model, tmp_path: Path) -> None:
    """A forecasting model on Spark: the same columns and numbers as the local engine."""
    log = pd.read_csv(ROOT / "data" / "cdnow_master.txt", sep=r"\s+", dtype=str)
    log = log[log["customer_id"].isin(log["customer_id"].drop_duplicates().iloc[:600])]
    path = tmp_path / "log.txt"
    log.to_csv(path, index=False, sep=" ")
    loaded = load_model("models:/test-cdnow@challenger")
    local_out, spark_out = tmp_path / "local.parquet", tmp_path / "spark.parquet"
    score_file(loaded, path, local_out, progress=False, as_of="1997-06-30")
    score_file(
        loaded, path, spark_out, engine="spark", spark_master="local[2]", progress=False,
        as_of="1997-06-30",
    )  # fmt: skip
    local, remote = pd.read_parquet(local_out), pd.read_parquet(spark_out)
    columns = list(output_columns(loaded.model))
    assert list(remote.columns) == list(local.columns) == columns
    assert {"segment_next", "expected_spend", "horizon_days", "clv_low", "p_alive"} <= set(columns)
    assert_same_scores(local, remote, atol=1e-6)
    a = local.set_index("customer_id").sort_index()
    b = remote.set_index("customer_id").sort_index()
    assert a["segment_next"].tolist() == b["segment_next"].tolist()
    for column in ("expected_spend", "horizon_days", "expected_purchases", "clv", "clv_high"):
        np.testing.assert_allclose(a[column], b[column], rtol=1e-6, err_msg=column)


def test_spark_reasons_and_levers_equal_the_local_engines(
    spark, telco_uri: str, tmp_path: Path
) -> None:
    """`score --engine spark --reasons 2 --levers`: the local engine's columns and values."""
    import json

    from valuecube.models.levers import LEVER_COLUMNS, TEXT_LEVER_COLUMNS

    path = tmp_path / "customers.parquet"
    telco_rows(300, seed=31).to_parquet(path, index=False)
    loaded = load_model(telco_uri)
    local_out, spark_out = tmp_path / "local.parquet", tmp_path / "spark.parquet"
    options = {"progress": False, "reasons": 2, "levers": True}
    score_file(loaded, path, local_out, **options)
    score_file(loaded, path, spark_out, engine="spark", spark_master="local[2]", **options)
    local, remote = pd.read_parquet(local_out), pd.read_parquet(spark_out)
    columns = [*output_columns(loaded.model), "churn_reasons", *LEVER_COLUMNS]
    assert list(remote.columns) == list(local.columns) == columns
    assert_same_scores(local, remote, atol=1e-6)
    a = local.set_index("customer_id").sort_index()
    b = remote.set_index("customer_id").sort_index()
    for mine, theirs in zip(a["churn_reasons"], b["churn_reasons"], strict=True):
        mine, theirs = json.loads(mine), json.loads(theirs)
        assert [r["factor"] for r in mine] == [r["factor"] for r in theirs]
        assert [r["value"] for r in mine] == [r["value"] for r in theirs]
        np.testing.assert_allclose(
            [r["effect"] for r in mine], [r["effect"] for r in theirs], atol=2e-6
        )
    for column in LEVER_COLUMNS:
        if column in TEXT_LEVER_COLUMNS:
            assert a[column].tolist() == b[column].tolist(), column
        else:
            np.testing.assert_allclose(a[column], b[column], atol=1e-9, err_msg=column)

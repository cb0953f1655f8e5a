"""A forecasting (transaction-log) model through every scoring path: its own output columns.

Batch (`valuecube score`), `score --as-of` and the HTTP API (a real `valuecube serve` process
for the session's CDNOW model) all carry the forecast (`segment_next`, `expected_spend`,
`horizon_days`) and the cube's BTYD columns after the common columns.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from valuecube.cli import app
from valuecube.features.customers import build_customer_table
from valuecube.features.inputs import load_input
from valuecube.models.packaged import BTYD_COLUMNS, FORECAST_COLUMNS
from valuecube.serving.loading import LoadedModel, load_model
from valuecube.serving.output import OUTPUT_COLUMNS, output_columns

from .conftest import _free_port
from .helpers import API_TOKEN, ROOT

CDNOW_URI = "models:/test-cdnow@challenger"
LOG_COLUMNS = [*OUTPUT_COLUMNS, *FORECAST_COLUMNS, *BTYD_COLUMNS]
NUMBERS = ["cv_score", "pv_score", "ra_score", "churn_probability", "expected_spend", *BTYD_COLUMNS]
AS_OF = "1997-06-30"
runner = CliRunner()


@pytest.fixture(scope="module")
def cdnow(cdnow_model) -> LoadedModel:
    return load_model(CDNOW_URI)


@pytest.fixture(scope="module")
def small_log(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Every purchase of the first 1,500 customers of the bundled log (raw text)."""
    log = pd.read_csv(ROOT / "data" / "cdnow_master.txt", sep=r"\s+", dtype=str)
    first = log["customer_id"].drop_duplicates().iloc[:1500]
    return log[log["customer_id"].isin(first)].reset_index(drop=True)


def _write(log: pd.DataFrame, path: Path) -> Path:
    log.to_csv(path, index=False, sep=" ")  # the config's whitespace-separated format
    return path


def _score(*args: str) -> None:
    result = runner.invoke(app, ["score", *args, "--monitor-experiment", "tests-log-score"])
    assert result.exit_code == 0, result.output


def test_batch_output_has_forecast_and_btyd_columns(cdnow, small_log, tmp_path: Path) -> None:
    path, out = _write(small_log, tmp_path / "log.txt"), tmp_path / "scores.parquet"
    _score("-m", CDNOW_URI, "-i", str(path), "-o", str(out))
    scores = pd.read_parquet(out)
    assert list(output_columns(cdnow.model)) == LOG_COLUMNS
    assert list(scores.columns) == [*LOG_COLUMNS, "churn_reasons", "spend_reasons"]  # default 3
    assert (scores["horizon_days"] == cdnow.model.horizon_days).all()
    assert scores["segment_next"].notna().all() and (scores["expected_spend"] >= 0).all()
    assert ((scores["clv_low"] <= scores["clv"]) & (scores["clv"] <= scores["clv_high"])).all()
    # the same numbers as the pyfunc on the per-customer table (one code path for both)
    spec = cdnow.config.input
    table = build_customer_table(load_input(path, spec, strict=True), spec, with_labels=False)
    rows = table.table[cdnow.model.metadata["customer_columns"]].reset_index()
    expected = cdnow.pyfunc.predict(rows).set_index("customer_id").loc[scores["customer_id"]]
    assert scores["segment_next"].tolist() == expected["segment_next"].tolist()
    for column in NUMBERS:
        np.testing.assert_allclose(
            scores[column].to_numpy(float), expected[column].to_numpy(float), rtol=1e-9
        )


def test_score_as_of_ignores_later_purchases(cdnow, small_log, tmp_path: Path) -> None:
    """Scored at a date, a log with the later purchases equals the log cut at that date."""
    later = pd.to_datetime(small_log["date"], format="%Y%m%d") > pd.Timestamp(AS_OF)
    assert later.sum() > 1000  # the full log has many purchases after AS_OF
    full = _write(small_log, tmp_path / "full.txt")
    cut = _write(small_log[~later], tmp_path / "cut.txt")
    outs = {name: tmp_path / f"{name}.csv" for name in ("full", "cut", "default")}
    _score("-m", CDNOW_URI, "-i", str(full), "-o", str(outs["full"]), "--as-of", AS_OF)
    _score("-m", CDNOW_URI, "-i", str(cut), "-o", str(outs["cut"]), "--as-of", AS_OF)
    _score("-m", CDNOW_URI, "-i", str(full), "-o", str(outs["default"]))  # the config's as_of
    a, b, c = (pd.read_csv(outs[n]).set_index("customer_id").sort_index() for n in outs)
    assert a.index.tolist() == b.index.tolist() and len(a) > 500
    for column in ("segment", "segment_model", "segment_next"):
        assert a[column].tolist() == b[column].tolist(), column
    for column in NUMBERS:
        np.testing.assert_allclose(a[column], b[column], rtol=1e-9, err_msg=column)
    # the later purchases do count at a later date: the default as_of scores differ
    common = a.index.intersection(c.index)
    assert not np.allclose(a.loc[common, "expected_spend"], c.loc[common, "expected_spend"])


@pytest.fixture(scope="module")
def cdnow_server(cdnow) -> Iterator[str]:
    """`python -m valuecube serve` with the CDNOW model on a free loopback port; its URL."""
    port = _free_port()
    env = {**os.environ, "VALUECUBE_API_TOKEN": API_TOKEN}
    command = [sys.executable, "-m", "valuecube", "serve", "--model", CDNOW_URI]
    proc = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 180
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the API server exited: {proc.stderr.read()[-3000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the API server did not become ready in 180 s"
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_api_model_and_score_carry_the_forecast(
    cdnow, cdnow_server, small_log, tmp_path: Path
) -> None:
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    info = httpx.get(f"{cdnow_server}/v1/model", headers=auth, timeout=30).json()
    assert info["output_columns"] == LOG_COLUMNS
    assert info["horizon_days"] == cdnow.model.horizon_days > 0
    spec = cdnow.config.input
    validated = load_input(_write(small_log, tmp_path / "log.txt"), spec, strict=True)
    table = build_customer_table(validated, spec, with_labels=False).table
    rows = table[cdnow.model.metadata["customer_columns"]].head(12).reset_index()
    response = httpx.post(
        f"{cdnow_server}/v1/score",
        json=rows.to_dict(orient="records"),
        headers=auth,
        timeout=60,
    )
    assert response.status_code == 200, response.text
    got = pd.DataFrame(response.json())
    assert list(got.columns) == [*LOG_COLUMNS, "churn_reasons", "spend_reasons"]  # serve: 3 each
    for reasons in got["spend_reasons"]:
        effects = [r["effect"] for r in reasons]
        assert 0 < len(reasons) <= 6
        assert all(set(r) == {"factor", "value", "effect"} for r in reasons)
        raising = [e for e in effects if e > 0]  # listed first, largest first
        assert effects[: len(raising)] == sorted(raising, reverse=True)
    expected = cdnow.pyfunc.predict(rows)
    assert got["customer_id"].tolist() == rows["customer_id"].astype(str).tolist()
    assert got["segment_next"].tolist() == expected["segment_next"].tolist()
    assert (got["horizon_days"] == cdnow.model.horizon_days).all()
    for column in NUMBERS:
        np.testing.assert_allclose(got[column], expected[column], rtol=1e-6, err_msg=column)

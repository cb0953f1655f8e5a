"""Logs larger than ``--memory-limit``: scored in hash parts, with the one-pass output and rejects.

A slice of the bundled CDNOW log with bad rows, scored by the session's CDNOW
model once in one pass and once with a tiny memory limit that forces several
parts; the temporary parts folder must be gone after success and failure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from valuecube.cli import app
from valuecube.features.inputs import InputError
from valuecube.serving.batch import score_file
from valuecube.serving.loading import LoadedModel, load_model
from valuecube.serving.partitioned import parse_memory, parts_needed

from .helpers import ROOT

CDNOW_URI = "models:/test-cdnow@challenger"
SCORED_AT = pd.Timestamp("2026-01-01T00:00:00Z")
TINY = "64KB"  # ~1,000 rows x 165 bytes: 4 parts
NETWORK = ["churn_probability", "expected_spend"]
"""The network's float32 outputs: their last bits depend on how many customers share a batch
(one pass with another --chunk-rows differs as much), so they are compared to float32 rounding."""
FLOAT32 = 4e-6
runner = CliRunner()


@pytest.fixture(scope="module")
def cdnow(cdnow_model) -> LoadedModel:
    return load_model(CDNOW_URI)


@pytest.fixture(scope="module")
def bad_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every purchase of 300 CDNOW customers (raw text) with bad rows spread through the file."""
    log = pd.read_csv(ROOT / "data" / "cdnow_master.txt", sep=r"\s+", dtype=str)
    first = log["customer_id"].drop_duplicates().iloc[:300]
    log = log[log["customer_id"].isin(first)].reset_index(drop=True)
    log.loc[10, "dollar_value"] = "-3"
    log.loc[700, "date"] = "19971399"
    log.loc[400, "number_of_cds"] = "many"
    log.loc[len(log) - 5, "customer_id"] = ""
    path = tmp_path_factory.mktemp("partitioned") / "log.txt"
    log.to_csv(path, index=False, sep=" ")
    return path


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _score(cdnow: LoadedModel, log: Path, folder: Path, suffix: str, **kw) -> tuple:
    folder.mkdir()
    out, rej = folder / f"scores{suffix}", folder / "rejects.csv"
    result = score_file(
        cdnow, log, out, rejects=rej, chunk_rows=500, progress=False, scored_at=SCORED_AT, **kw
    )
    return result, out, rej


def test_partitioned_output_and_rejects_equal_one_pass(
    cdnow: LoadedModel, bad_log: Path, tmp_path: Path
) -> None:
    one, one_out, one_rej = _score(cdnow, bad_log, tmp_path / "one", ".parquet")
    many, many_out, many_rej = _score(
        cdnow, bad_log, tmp_path / "many", ".parquet", memory_limit=TINY
    )
    assert one.parts == 1 and many.parts > 2
    assert many.summary() == one.summary() and many.rows_rejected == one.rows_rejected >= 4
    a, b = pd.read_parquet(one_out), pd.read_parquet(many_out)
    assert list(b.columns) == list(a.columns) and len(b) == len(a) == one.customers_scored
    assert b["customer_id"].tolist() == a["customer_id"].tolist()  # one-pass order: by id
    assert a["customer_id"].is_monotonic_increasing
    numbers = [c for c in a.columns if pd.api.types.is_float_dtype(a[c])]
    exact = [c for c in numbers if c not in NETWORK]
    np.testing.assert_allclose(b[exact], a[exact], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b[NETWORK], a[NETWORK], rtol=FLOAT32, atol=0)
    text = [c for c in a.columns if c not in numbers]
    pd.testing.assert_frame_equal(b[text], a[text])
    pd.testing.assert_frame_equal(pd.read_csv(many_rej), pd.read_csv(one_rej))
    assert _hidden(tmp_path / "many") == []  # the parts folder is gone


def test_partitioned_csv_through_the_command_line(
    cdnow: LoadedModel, bad_log: Path, tmp_path: Path
) -> None:
    _, one_out, _ = _score(cdnow, bad_log, tmp_path / "one", ".csv")
    out = tmp_path / "cli" / "scores.csv"
    result = runner.invoke(
        app,
        [
            "score", "-m", CDNOW_URI, "-i", str(bad_log), "-o", str(out),
            "--rejects", str(out.parent / "rejects.csv"), "--memory-limit", TINY,
            "--chunk-rows", "500", "--monitor-experiment", "tests-partitioned",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    a, b = pd.read_csv(one_out), pd.read_csv(out)
    assert b["customer_id"].tolist() == a["customer_id"].tolist()
    np.testing.assert_allclose(b["cv_score"], a["cv_score"], rtol=1e-12)
    np.testing.assert_allclose(b["churn_probability"], a["churn_probability"], rtol=FLOAT32)
    assert sorted(p.name for p in out.parent.iterdir()) == ["rejects.csv", "scores.csv"]


def test_parts_removed_when_a_bad_row_stops_the_job(
    cdnow: LoadedModel, bad_log: Path, tmp_path: Path
) -> None:
    out = tmp_path / "scores.parquet"
    with pytest.raises(InputError, match="invalid rows"):  # strict: the first bad row stops it
        score_file(cdnow, bad_log, out, chunk_rows=500, progress=False, memory_limit=TINY)
    assert list(tmp_path.iterdir()) == []


def test_parts_removed_when_scoring_the_parts_fails(
    cdnow: LoadedModel, bad_log: Path, tmp_path: Path
) -> None:
    out, rej = tmp_path / "scores.parquet", tmp_path / "rejects.csv"
    with pytest.raises(ValueError, match="before window_start"):  # fails after the split
        score_file(
            cdnow, bad_log, out, rejects=rej, chunk_rows=500, progress=False,
            memory_limit=TINY, as_of="1996-06-30",
        )  # fmt: skip
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["2XB", "lots", "-1GB", "10KB"])
def test_bad_memory_limit_is_one_line_error(value: str, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "score", "-m", CDNOW_URI, "-i", str(ROOT / "data" / "cdnow_master.txt"),
            "-o", str(tmp_path / "s.parquet"), "--memory-limit", value,
        ],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: --memory-limit"), result.output
    assert result.output.count("error:") == 1  # one message (rich may wrap it on a narrow terminal)
    assert "Traceback" not in result.output and list(tmp_path.iterdir()) == []


def test_memory_sizes_and_parts() -> None:
    assert parse_memory("2GB") == parse_memory("2g") == parse_memory("2 GiB") == 2 << 30
    assert parse_memory("1.5G") == 3 << 29 and parse_memory("800000") == 800_000
    assert parse_memory(None) > 0
    assert parts_needed(1000, 1 << 30) == 1
    assert parts_needed(50_000_000, 2 << 30) == 5  # 8.25 GB in parts of at most 1.6 GB

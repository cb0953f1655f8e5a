"""The Spark engine on a real local[2] session: the same rows and rejects as the local engine.

The Spark engine reads an input of several part files; the local engine
reads the same rows as one file. The rejects must agree row for row (the
local ``line`` becomes the part file and the line in it, and a duplicate
whose first row sits in another part names that part); the fuzzy scores and
the BTYD outputs (float64) to 1e-9. The network runs in float32, and its
outputs move by up to ~1e-7 with the batch a row is scored in (measured:
the same 240 rows scored as one batch or as 100 + 140 differ by 9e-8), so
churn_probability and expected_spend are held to 1e-6.
"""

from __future__ import annotations

import re
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
PARTS = 3
FUZZY = ["cv_score", "pv_score", "ra_score"]


def same_scores(local: pd.DataFrame, remote: pd.DataFrame) -> None:
    """Same customers, segments and bands; fuzzy scores to 1e-9, the network's outputs to 1e-6."""
    assert_same_scores(local, remote, atol=1e-6)
    a, b = local.set_index("customer_id").sort_index(), remote.set_index("customer_id").sort_index()
    np.testing.assert_allclose(a[FUZZY].to_numpy(float), b[FUZZY].to_numpy(float), atol=1e-9)


def write_parts(frame: pd.DataFrame, folder: Path, suffix: str, **to_csv) -> list[Path]:
    """``frame`` cut into :data:`PARTS` consecutive part files (each with the header)."""
    folder.mkdir()
    paths = []
    for i, part in enumerate(np.array_split(np.arange(len(frame)), PARTS)):
        path = folder / f"part-{i:05d}{suffix}"
        if suffix == ".parquet":
            frame.iloc[part].to_parquet(path, index=False)
        else:
            frame.iloc[part].to_csv(path, index=False, **to_csv)
        paths.append(path)
    return paths


def as_part_rejects(local: pd.DataFrame, sizes: list[int], paths: list[Path]) -> pd.DataFrame:
    """The local engine's rejects of the one-file input, as the Spark engine words the parts'."""
    starts = np.cumsum([0, *sizes])

    def where(line: int) -> tuple[int, int]:  # one-file line → (part, line in the part)
        part = int(np.searchsorted(starts, line - 2, side="right") - 1)
        return part, int(line - 2 - starts[part] + 2)

    out = local.copy()
    parts = [where(int(line)) if pd.notna(line) else (None, None) for line in local["line"]]
    out.insert(0, "file", [str(paths[p]) if p is not None else None for p, _ in parts])
    out["line"] = pd.array([n for _, n in parts], dtype="Int64")

    def reworded(reason: str, part: int | None) -> str:
        found = re.search(r"\(first on line (\d+)\)$", reason)
        if not found:
            return reason
        first_part, first_line = where(int(found.group(1)))
        there = "" if first_part == part else f" of {paths[first_part]}"
        return reason[: found.start()] + f"(first on line {first_line}{there})"

    out["reason"] = [reworded(r, p) for r, (p, _) in zip(out["reason"], parts, strict=True)]
    return out


def same_rejects(spark_rejects: Path, expected: pd.DataFrame) -> None:
    got = pd.read_parquet(spark_rejects)
    key = ["file", "line", "reason"]
    got = got.sort_values(key, na_position="last").reset_index(drop=True)
    want = expected.sort_values(key, na_position="last").reset_index(drop=True)
    assert list(got.columns) == list(want.columns)
    pd.testing.assert_frame_equal(got.astype(object), want.astype(object).where(want.notna(), None))


def test_customer_table_parts_equal_local(
    spark, telco_uri: str, api_server: str, tmp_path: Path
) -> None:
    rows = telco_rows(240, seed=21)
    rows.loc[17, "tenure"] = "x"
    rows.loc[50, "gender"] = "Other"
    rows.loc[120, "monthlycharges"] = "-3"
    rows.loc[[60, 61], "customerid"] = ""  # blank ids are missing values, never duplicates
    rows.loc[100, "customerid"] = rows.loc[5, "customerid"]  # first copy in an earlier part
    rows.loc[230, "customerid"] = rows.loc[5, "customerid"]  # a third copy, the last part
    rows.loc[200, "customerid"] = rows.loc[190, "customerid"]  # both in the last part
    rows.loc[210, "customerid"] = rows.loc[17, "customerid"]  # its first row is invalid
    one_file = tmp_path / "customers.csv"
    rows.to_csv(one_file, index=False)
    paths = write_parts(rows, tmp_path / "parts", ".csv")
    loaded = load_model(telco_uri)

    local_out, local_rej = tmp_path / "local.parquet", tmp_path / "local_rejects.parquet"
    local_run = score_file(loaded, one_file, local_out, rejects=local_rej, progress=False)
    spark_out, spark_rej = tmp_path / "spark.parquet", tmp_path / "spark_rejects.parquet"
    outcome = score_file(
        loaded, tmp_path / "parts", spark_out, rejects=spark_rej, engine="spark",
        spark_master="local[2]", progress=False,
    )  # fmt: skip
    counts = ("rows_read", "customers_scored", "rows_rejected", "customers_unscorable")
    assert [getattr(outcome, c) for c in counts] == [getattr(local_run, c) for c in counts]
    assert (outcome.rows_read, outcome.rows_rejected) == (240, 9)
    assert spark_out.is_dir() and not list(tmp_path.glob(".*"))  # no hidden folders left

    local, remote = pd.read_parquet(local_out), pd.read_parquet(spark_out)
    assert list(remote.columns) == list(output_columns(loaded.model)) and len(remote) == 231
    same_scores(local, remote)
    sizes = [len(p) for p in np.array_split(np.arange(len(rows)), PARTS)]
    expected = as_part_rejects(pd.read_parquet(local_rej), sizes, paths)
    assert f"(first on line 7 of {paths[0]})" in " ".join(expected["reason"])
    same_rejects(spark_rej, expected)

    # the same customers through the HTTP API
    sample = rows.iloc[[0, 1, 2, 150, 239]]
    response = httpx.post(
        f"{api_server}/v1/score",
        json=customers_json(sample),
        headers={"Authorization": f"Bearer {API_TOKEN}"},
        timeout=60,
    )
    assert response.status_code == 200
    api = pd.DataFrame(response.json())
    same_scores(api, remote[remote["customer_id"].isin(sample["customerid"])])


def test_log_parts_equal_local(spark, cdnow_model, tmp_path: Path) -> None:
    """A CDNOW-shaped log in parts: customers' purchases spread over them, bad rows among them."""
    log = pd.read_csv(ROOT / "data" / "cdnow_master.txt", sep=r"\s+", dtype=str)
    log = log[log["customer_id"].isin(log["customer_id"].drop_duplicates().iloc[:200])]
    log = log.sort_values("date", kind="stable").reset_index(drop=True)  # parts by date
    log.loc[3, "dollar_value"] = "-1"
    log.loc[10, "date"] = "19971340"
    log.loc[20, "date"] = "19961231"  # before the window start
    log.loc[30, "number_of_cds"] = "x"
    one_file = tmp_path / "log.txt"
    log.to_csv(one_file, index=False, sep=" ")
    paths = write_parts(log, tmp_path / "parts", ".txt", sep=" ")
    spread = {
        c
        for c in log["customer_id"]
        if log.index[log["customer_id"] == c].max() >= 2 * len(log) / 3
    } & set(log["customer_id"].iloc[: len(log) // 3])
    assert spread  # customers whose purchases sit in the first and the last part

    loaded = load_model("models:/test-cdnow@challenger")
    local_out, local_rej = tmp_path / "local.parquet", tmp_path / "local_rejects.parquet"
    local_run = score_file(
        loaded, one_file, local_out, rejects=local_rej, progress=False, as_of="1997-06-30"
    )
    spark_out, spark_rej = tmp_path / "spark.parquet", tmp_path / "spark_rejects.parquet"
    outcome = score_file(
        loaded, str(tmp_path / "parts" / "part-*.txt"), spark_out, rejects=spark_rej,
        engine="spark", spark_master="local[2]", progress=False, as_of="1997-06-30",
    )  # fmt: skip
    counts = (
        "rows_read", "rows_rejected", "customers_scored", "customers_excluded", "rows_used",
        "rows_unused", "as_of",
    )  # fmt: skip
    assert [getattr(outcome, c) for c in counts] == [getattr(local_run, c) for c in counts]
    assert outcome.rows_rejected == 4 and outcome.rows_unused > 0  # dated after as_of

    local, remote = pd.read_parquet(local_out), pd.read_parquet(spark_out)
    assert list(remote.columns) == list(local.columns) == list(output_columns(loaded.model))
    same_scores(local, remote)
    a = local.set_index("customer_id").sort_index()
    b = remote.set_index("customer_id").sort_index()
    assert set(spread) <= set(b.index)
    assert a["segment_next"].tolist() == b["segment_next"].tolist()
    np.testing.assert_allclose(a["expected_spend"], b["expected_spend"], rtol=1e-6)
    for column in ("horizon_days", "expected_purchases", "p_alive", "clv", "clv_high"):
        np.testing.assert_allclose(a[column], b[column], rtol=1e-9, atol=1e-12, err_msg=column)
    sizes = [len(p) for p in np.array_split(np.arange(len(log)), PARTS)]
    same_rejects(spark_rej, as_part_rejects(pd.read_parquet(local_rej), sizes, paths))


def test_cli_spark_strict_names_file_and_line(spark, telco_uri: str, tmp_path: Path) -> None:
    """Parquet parts under another extension (``--input-format``), a bad row, no --rejects."""
    rows = telco_rows(90, seed=4)
    rows.loc[70, "seniorcitizen"] = "7"
    for i, part in enumerate(np.array_split(np.arange(len(rows)), PARTS)):
        rows.iloc[part].to_parquet(tmp_path / f"part-{i}.bin", index=False)
    output = tmp_path / "scores.parquet"
    result = CliRunner().invoke(
        app,
        [
            "score", "-m", telco_uri, "-i", str(tmp_path / "part-*.bin"), "-o", str(output),
            "--engine", "spark", "--spark-master", "local[2]", "--input-format", "parquet",
        ],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.output.count("error:") == 1
    flat = "".join(result.output.split())  # the console wraps long lines
    assert "".join(f"{tmp_path / 'part-2.bin'} line 12: column 'seniorcitizen'".split()) in flat
    assert not output.exists() and not list(tmp_path.glob(".*"))


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

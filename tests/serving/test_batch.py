"""Local batch scoring: row accounting, rejects, atomic output, drift, config checks, CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from valuecube.cli import app
from valuecube.features.duplicates import SeenIds, split_duplicates
from valuecube.features.inputs import (
    LINE,
    REASON,
    InputError,
    read_chunks,
    validate,
    validate_chunk,
)
from valuecube.serving.batch import NothingScoredError, score_file
from valuecube.serving.loading import LoadedModel, load_model
from valuecube.serving.output import CHURN_RISK_CUTOFFS, OUTPUT_COLUMNS, churn_risk, output_columns

from .helpers import ROOT, assert_same_scores, telco_rows

runner = CliRunner()
FIXED_TIME = pd.Timestamp("2024-01-01T00:00:00Z")


@pytest.fixture(scope="module")
def loaded(telco_uri: str) -> LoadedModel:
    return load_model(telco_uri)


def _mixed(tmp_path: Path) -> tuple[Path, dict[int, str]]:
    """40 good rows and 8 bad ones (line → words in the reason); the duplicate in a later chunk."""
    rows = telco_rows(40, seed=1)
    bad = telco_rows(8, seed=2)
    bad.loc[0, "gender"] = ""  # missing field
    bad.loc[1, "tenure"] = "abc"  # wrong type
    bad.loc[2, "monthlycharges"] = "NaN"  # NaN
    bad.loc[3, "monthlycharges"] = "-5.5"  # negative amount
    bad.loc[4, "contract"] = "Weekly"  # unknown category
    bad.loc[5, "customerid"] = rows.loc[3, "customerid"]  # duplicate id (first on line 5)
    bad.loc[6, "customerid"] = " "  # blank id
    bad.loc[7, "seniorcitizen"] = "2"  # above the maximum
    frame = pd.concat([rows, bad], ignore_index=True)
    path = tmp_path / "mixed.csv"
    frame.to_csv(path, index=False)
    expected = {
        42: "missing value",
        43: "not a finite number",
        44: "not a finite number",
        45: "below the minimum",
        46: "unknown category",
        47: "duplicate customerid",
        48: "missing value",
        49: "above the maximum",
    }
    return path, expected


def test_churn_risk_bands() -> None:
    assert CHURN_RISK_CUTOFFS == (0.3, 0.6)
    assert churn_risk(np.array([0.0, 0.2999, 0.3, 0.5999, 0.6, 1.0])).tolist() == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
    ]


def test_mixed_rows_accounting_and_rejects(loaded: LoadedModel, tmp_path: Path) -> None:
    path, expected = _mixed(tmp_path)
    out, rej = tmp_path / "scores.parquet", tmp_path / "rejects.csv"
    result = score_file(
        loaded, path, out, rejects=rej, chunk_rows=16, progress=False, scored_at=FIXED_TIME
    )
    assert (result.rows_read, result.customers_scored, result.rows_rejected) == (48, 40, 8)
    assert result.rows_read == result.customers_scored + result.rows_rejected

    rejects = pd.read_csv(rej, dtype=str, keep_default_na=False)
    assert list(rejects.columns[:2]) == [LINE, REASON]
    got = dict(zip(rejects[LINE].astype(int), rejects[REASON], strict=True))
    assert set(got) == set(expected)
    for line, words in expected.items():
        assert words in got[line], (line, got[line])
    assert "first on line 5" in got[47]

    scores = pd.read_parquet(out)
    assert list(scores.columns) == list(output_columns(loaded.model))
    assert list(scores.columns[: len(OUTPUT_COLUMNS)]) == list(OUTPUT_COLUMNS)
    good = telco_rows(40, seed=1)
    assert scores["customer_id"].tolist() == good["customerid"].tolist()
    assert set(scores["model_name"]) == {loaded.name} and set(scores["model_version"]) == {
        loaded.version
    }
    assert (
        scores["churn_risk"].tolist() == churn_risk(scores["churn_probability"].to_numpy()).tolist()
    )
    reference = loaded.model.predict(
        good
    )  # the registered model on the same rows, validated strictly
    assert_same_scores(scores.drop(columns="churn_risk"), reference, atol=1e-9)


def test_streamed_chunks_validate_like_the_whole_file(loaded: LoadedModel, tmp_path: Path) -> None:
    """Chunks without their duplicates (a later chunk's too) validate like the file at once."""
    spec = loaded.config.input
    path, _ = _mixed(tmp_path)
    seen = SeenIds()
    parts = [split_duplicates(chunk, spec, seen) for chunk in read_chunks(path, spec, 16)]
    assert [line for _, dups in parts if len(dups) for line in dups[LINE]] == [47]
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    raw.index = pd.RangeIndex(2, len(raw) + 2, name=LINE)
    whole = validate(raw.drop(index=47), spec, source="x")
    streamed = [validate_chunk(chunk, spec, "x") for chunk, _ in parts]
    pd.testing.assert_frame_equal(
        pd.concat([v.data for v in streamed]).astype(object),
        whole.data.astype(object),
        check_index_type=False,
    )
    assert sorted(line for v in streamed for line in v.rejects[LINE]) == sorted(whole.rejects[LINE])


def test_chunk_size_and_format_do_not_change_results(loaded: LoadedModel, tmp_path: Path) -> None:
    rows = telco_rows(500, seed=4)
    rows.loc[[10, 300], "customerid"] = rows.loc[
        5, "customerid"
    ]  # duplicates in the same and a later chunk
    csv, parquet = tmp_path / "in.csv", tmp_path / "in.parquet"
    rows.to_csv(csv, index=False)
    rows.to_parquet(parquet, index=False)
    outs = []
    for i, (source, chunk) in enumerate([(csv, 7), (csv, 1000), (parquet, 64)]):
        out = tmp_path / f"o{i}.csv"
        result = score_file(
            loaded,
            source,
            out,
            rejects=tmp_path / f"r{i}.csv",
            chunk_rows=chunk,
            progress=False,
            scored_at=FIXED_TIME,
        )
        assert (result.customers_scored, result.rows_rejected) == (498, 2)
        outs.append(pd.read_csv(out))
        rejected = pd.read_csv(tmp_path / f"r{i}.csv")
        assert (
            rejected[LINE].tolist() == [12, 302]
            and rejected[REASON].str.contains("first on line 7").all()
        )
    pd.testing.assert_frame_equal(outs[0], outs[1])
    pd.testing.assert_frame_equal(outs[0], outs[2])


def test_blas_keeps_a_core_for_the_reader_and_is_restored_after(
    loaded: LoadedModel, tmp_path: Path
) -> None:
    """BLAS threads: the process's cores less one, at least one; a job scores every customer
    and leaves the process's BLAS threads as it found them."""
    from threadpoolctl import threadpool_info

    script = (
        "import os\n"
        "from valuecube.serving.batch import blas_threads\n"
        "every = os.sched_getaffinity(0)\n"
        "os.sched_setaffinity(0, {min(every)})\n"
        "one = blas_threads()\n"
        "os.sched_setaffinity(0, every)\n"
        "print(one, blas_threads(), len(every))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    one, every, cores = map(int, done.stdout.split())
    assert one == 1 and every == max(1, cores - 1)

    def blas() -> list[int]:
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before = blas()
    rows = telco_rows(300, seed=5)
    rows.to_parquet(tmp_path / "in.parquet", index=False)
    result = score_file(loaded, tmp_path / "in.parquet", tmp_path / "out.parquet", progress=False)
    assert result.customers_scored == 300
    assert blas() == before


def test_empty_header_only_and_all_rejected(loaded: LoadedModel, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    header = tmp_path / "header.csv"
    header.write_text(",".join(telco_rows(1).columns) + "\n")
    bad = telco_rows(3, seed=5)
    bad["contract"] = "Weekly"
    all_bad = tmp_path / "bad.csv"
    bad.to_csv(all_bad, index=False)
    for path, words in ((empty, "the file is empty"), (header, "header but no rows")):
        with pytest.raises(InputError, match=words):
            score_file(
                loaded, path, tmp_path / "o.parquet", rejects=tmp_path / "r.csv", progress=False
            )
    with pytest.raises(NothingScoredError, match="none of the 3 rows"):
        score_file(
            loaded, all_bad, tmp_path / "o.parquet", rejects=tmp_path / "r.csv", progress=False
        )
    assert not (tmp_path / "o.parquet").exists()
    assert len(pd.read_csv(tmp_path / "r.csv")) == 3  # the reasons are kept
    assert not list(tmp_path.glob(".*partial"))

    result = runner.invoke(
        app, ["score", "-m", loaded.uri, "-i", str(header), "-o", str(tmp_path / "o.csv")]
    )
    assert result.exit_code == 1 and "header but no rows" in result.output


def test_strict_without_rejects_names_the_line(loaded: LoadedModel, tmp_path: Path) -> None:
    path, _ = _mixed(tmp_path)
    with pytest.raises(
        InputError, match=r"line 42: column 'gender': missing value[\s\S]*--rejects"
    ):
        score_file(loaded, path, tmp_path / "o.parquet", progress=False)
    assert not (tmp_path / "o.parquet").exists() and not list(tmp_path.glob(".*partial"))


def test_a_few_customers_are_too_few_to_judge_drift(loaded: LoadedModel, tmp_path: Path) -> None:
    """PSI over 10 bins of a handful of customers is noise: no drift warning, a note instead."""
    rows = telco_rows(400, seed=6)
    rows["monthlycharges"] = (rows["monthlycharges"].astype(float) * 3 + 50).round(2).astype(str)
    few = tmp_path / "few.csv"
    rows.head(5).to_csv(few, index=False)
    result = score_file(loaded, few, tmp_path / "few.parquet", progress=False)
    assert result.drift_sample_size == 5 and not result.drift_judged
    assert result.drift["monthly_charges"] > 0.2  # the shift is there, but not judged
    assert result.drifted == [] and result.drifted_over(0.0) == []
    args = ["score", "-m", loaded.uri, "-i", str(few), "-o", str(tmp_path / "f.parquet")]
    cli = runner.invoke(app, [*args, "--monitor-experiment", "", "--fail-on-drift"])
    assert cli.exit_code == 0, cli.output
    assert "input drift not judged: 5 customers scored, at least 100 needed" in cli.output
    assert "warning: input drift" not in cli.output
    many = score_file(
        loaded, _write(rows, tmp_path / "many.csv"), tmp_path / "m.parquet", progress=False
    )
    assert many.drift_judged and "monthly_charges" in many.drifted


def _write(rows: pd.DataFrame, path: Path) -> Path:
    rows.to_csv(path, index=False)
    return path


def test_cli_score_drift_warning_and_config_check(loaded: LoadedModel, tmp_path: Path) -> None:
    rows = telco_rows(400, seed=6)
    rows["monthlycharges"] = (rows["monthlycharges"].astype(float) * 3 + 50).round(2).astype(str)
    path = tmp_path / "shifted.csv"
    rows.to_csv(path, index=False)
    out = tmp_path / "o.parquet"
    result = runner.invoke(
        app,
        [
            "score",
            "-m",
            loaded.uri,
            "-c",
            str(ROOT / "configs" / "telco.yaml"),
            "-i",
            str(path),
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "rows read 400 · scored 400 · rejected 0" in result.output
    assert "input drift" in result.output and "monthly_charges" in result.output
    assert len(pd.read_parquet(out)) == 400

    other = tmp_path / "other.yaml"
    other.write_text(
        (ROOT / "configs" / "telco.yaml")
        .read_text()
        .replace("tenure: {type: int, min: 0}", "tenure: {type: float}")
    )
    result = runner.invoke(
        app, ["score", "-m", loaded.uri, "-c", str(other), "-i", str(path), "-o", str(out)]
    )
    assert (
        result.exit_code == 1
        and "does not match the model's input schema" in result.output
        and "'tenure'" in result.output
    )


def test_killed_job_leaves_no_output_and_rerun_completes(telco_uri: str, tmp_path: Path) -> None:
    """SIGKILL after the first chunks: nothing at the destination; a rerun writes it all."""
    source = tmp_path / "big.parquet"
    telco_rows(40_000, seed=7).to_parquet(source, index=False)
    out = tmp_path / "out" / "scores.parquet"
    cmd = [
        sys.executable,
        "-m",
        "valuecube",
        "score",
        "-m",
        telco_uri,
        "-i",
        str(source),
        "-o",
        str(out),
        "--chunk-rows",
        "1000",
        "--reasons",
        "0",  # atomicity, not reasons: keeps the 40,000-row rerun cheap
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        for line in proc.stderr:  # plain progress lines (stderr is not a terminal)
            if line.startswith("chunk 2:"):
                break
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    assert list(
        out.parent.glob(".scores.parquet.*.partial")
    )  # the half-written temporary file, hidden
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    scores = pd.read_parquet(out)
    assert len(scores) == 40_000 and scores["customer_id"].is_unique


def test_transaction_log_scoring(cdnow_model, tmp_path: Path) -> None:
    """A CDNOW log is aggregated as of the config's date, then scored like the training rows."""
    from valuecube.training.data import (
        load_training_data,
    )  # tests may use training; serving does not

    loaded = load_model("models:/test-cdnow@challenger")
    log = pd.read_csv(ROOT / "data" / "cdnow_master.txt", sep=r"\s+", dtype=str)
    log.loc[3, "dollar_value"] = "-1"
    path = tmp_path / "log.txt"
    log.to_csv(path, index=False, sep=" ")  # the config's whitespace-separated format
    out, rej = tmp_path / "o.parquet", tmp_path / "r.parquet"
    result = score_file(loaded, path, out, rejects=rej, chunk_rows=20_000, progress=False)
    assert result.rows_read == len(log) and result.rows_rejected - result.customers_unscorable == 1
    scores = pd.read_parquet(out)
    data = load_training_data(loaded.config, ROOT / "data" / "cdnow_master.txt", seed=0)
    touched = log.loc[
        3, "customer_id"
    ]  # lost a purchase to the rejects: its features differ from training
    ids = pd.Index(scores["customer_id"]).intersection(data.rows.index).difference([touched])[:200]
    expected = loaded.pyfunc.predict(data.model_input(ids))
    assert_same_scores(scores.set_index("customer_id").loc[ids].reset_index(), expected)
    assert (
        result.customers_scored + result.customers_unscorable + result.customers_excluded
        == log.loc[log.index != 3, "customer_id"].nunique()
    )

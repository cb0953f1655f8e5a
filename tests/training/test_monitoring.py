"""Monitoring: drift and row accounting per scoring job; realised quality once labels arrive."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest
from conftest import ROOT, TELCO_CSV
from typer.testing import CliRunner

import mlflow
from mlflow import MlflowClient
from valuecube.cli import app
from valuecube.serving.batch import score_file
from valuecube.training.monitoring import realised_quality
from valuecube.training.scoring_runs import log_scoring_run

runner = CliRunner()


def _telco(tmp_path, name: str, change=None):
    frame = pd.read_csv(TELCO_CSV, nrows=800)
    if change is not None:
        change(frame)
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_scoring_run_logs_drift_and_rows(telco_model, tmp_path) -> None:
    plain = _telco(tmp_path, "plain.csv")
    result = score_file(telco_model.model_uri, plain, tmp_path / "s.csv", progress=False)
    logged = log_scoring_run(result, input_path=plain, experiment="tests-monitoring")
    run = MlflowClient().get_run(logged.run_id)
    assert run.data.tags["model_name"] == "test-telco"
    assert run.data.tags["model_version"] == telco_model.version
    assert run.data.tags["model_run_id"] == telco_model.model.metadata["run_id"]
    metrics = run.data.metrics
    assert metrics["rows_read"] == 800 and metrics["customers_scored"] == 800
    assert metrics["drift_sample_size"] == 800
    psi = {k: v for k, v in metrics.items() if k.startswith("psi_") and k != "psi_max"}
    assert len(psi) == len(result.drift) > 0
    assert not logged.has_drift  # the training population

    def shift(frame: pd.DataFrame) -> None:
        frame["tenure"] = 1  # every customer brand new
        frame["monthlycharges"] = frame["monthlycharges"].max()

    drifted = _telco(tmp_path, "drifted.csv", shift)
    result = score_file(telco_model.model_uri, drifted, tmp_path / "d.csv", progress=False)
    logged = log_scoring_run(result, experiment="tests-monitoring", drift_threshold=0.2)
    assert logged.has_drift and logged.max_psi > 0.2
    run = MlflowClient().get_run(logged.run_id)
    assert run.data.metrics["drifted_factors"] == len(logged.drifted)
    assert set(run.data.tags["drifted"].split(", ")) == set(logged.drifted)


def test_realised_quality_matches_the_promise_on_unseen_customers(telco_model) -> None:
    report = realised_quality(telco_model.model_uri, TELCO_CSV, experiment="tests-monitoring")
    meta = telco_model.model.metadata["metrics"]
    # the training customers are left out: what remains is the model's own test split
    assert report.n_excluded > 0 and report.n_customers + report.n_excluded == 3930
    assert report.table.loc["churn roc_auc", "realised"] == pytest.approx(
        meta["test_churn_roc_auc"], abs=1e-6
    )
    assert not report.retrain and "no need to retrain" in report.advice
    run = MlflowClient().get_run(report.run_id)
    assert run.data.tags["retrain"] == "no"
    assert run.data.metrics["labelled_customers"] == report.n_customers


def test_monitor_says_retrain_when_outcomes_change(telco_model, tmp_path) -> None:
    def flip(frame: pd.DataFrame) -> None:  # the opposite outcome for every customer
        frame["churn"] = frame["churn"].map({"Yes": "No", "No": "Yes"})

    frame = pd.read_csv(TELCO_CSV)
    flip(frame)
    path = tmp_path / "flipped.csv"
    frame.to_csv(path, index=False)
    result = runner.invoke(
        app, ["monitor", "-m", telco_model.model_uri, "-i", str(path), "--experiment", "tests-mon"]
    )
    assert result.exit_code == 0, result.output
    assert "retrain: churn roc_auc, churn brier" in " ".join(result.output.split())
    runs = mlflow.search_runs(experiment_names=["tests-mon"])
    assert (runs["tags.retrain"] == "yes").all() and len(runs) == 1


def test_score_hook_logs_and_fails_on_drift_with_exit_code_3(telco_model, tmp_path) -> None:
    import typer

    from valuecube.commands.monitor import after_scoring

    def shift(frame: pd.DataFrame) -> None:
        frame["tenure"] = 1

    drifted = _telco(tmp_path, "drifted.csv", shift)
    result = score_file(telco_model.model_uri, drifted, tmp_path / "d.csv", progress=False)
    after_scoring(result, drifted, "tests-hook", 0.2, fail_on_drift=False)  # logs, no exit
    assert len(mlflow.search_runs(experiment_names=["tests-hook"])) == 1
    with pytest.raises(typer.Exit) as exit_:
        after_scoring(result, drifted, "tests-hook", 0.2, fail_on_drift=True)
    assert exit_.value.exit_code == 3
    assert len(mlflow.search_runs(experiment_names=["tests-hook"])) == 2
    after_scoring(result, drifted, "", 50.0, fail_on_drift=True)  # nothing logged, no drift
    assert len(mlflow.search_runs(experiment_names=["tests-hook"])) == 2


def _cli(*args: str) -> subprocess.CompletedProcess:
    """`python -m valuecube ARGS` in a fresh process (the session store via MLFLOW_TRACKING_URI)."""
    return subprocess.run(
        [sys.executable, "-m", "valuecube", *args],
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_score_cli_logs_a_monitoring_run_and_exits_3_on_drift(telco_model, tmp_path) -> None:
    """The real `valuecube score`: a run linked to the model version; --fail-on-drift exits 3."""
    plain = _telco(tmp_path, "plain.csv")
    uri = telco_model.model_uri
    done = _cli("score", "-m", uri, "-i", str(plain), "-o", str(tmp_path / "s.csv"))
    assert done.returncode == 0, done.stderr
    assert "monitoring run" in done.stdout
    runs = mlflow.search_runs(experiment_names=["valuecube-monitoring"])  # the default
    run = MlflowClient().get_run(runs.iloc[0]["run_id"])  # newest first
    assert run.data.tags["model_name"] == "test-telco"
    assert run.data.tags["model_version"] == telco_model.version
    assert run.data.tags["model_run_id"] == telco_model.model.metadata["run_id"]
    assert run.data.metrics["rows_read"] == 800 and run.data.metrics["customers_scored"] == 800
    assert run.data.metrics["drift_sample_size"] == 800 and run.data.metrics["psi_max"] < 0.2

    def shift(frame: pd.DataFrame) -> None:
        frame["tenure"] = 1  # every customer brand new

    drifted = _telco(tmp_path, "drifted.csv", shift)
    out = tmp_path / "d.csv"
    args = ("score", "-m", uri, "-i", str(drifted), "-o", str(out))
    warned = _cli(*args, "--monitor-experiment", "tests-cli-drift")
    assert warned.returncode == 0 and "input drift" in warned.stderr, warned.stderr
    failed = _cli(*args, "--monitor-experiment", "tests-cli-drift", "--fail-on-drift")
    assert failed.returncode == 3, failed.stderr
    assert "error: input drift in" in failed.stderr and "Traceback" not in failed.stderr
    assert out.exists()  # the scores are complete: the exit code is for the scheduler
    runs = mlflow.search_runs(experiment_names=["tests-cli-drift"])
    assert len(runs) == 2 and (runs["metrics.drifted_factors"] >= 1).all()
    loose = _cli(*args, "--monitor-experiment", "", "--fail-on-drift", "--drift-threshold", "50")
    assert loose.returncode == 0, loose.stderr  # nothing above a PSI of 50; nothing logged
    assert "monitoring run" not in loose.stdout
    assert len(mlflow.search_runs(experiment_names=["tests-cli-drift"])) == 2


def test_the_monitoring_process_logs_the_run_log_scoring_run_logs(telco_model, tmp_path) -> None:
    """The job's run logged by `python -m valuecube.training.scoring_runs` has what an in-process
    :func:`log_scoring_run` records: the same metrics, params and model tags."""
    from valuecube.commands.monitor import MonitoringProcess
    from valuecube.training.scoring_runs import scoring_request

    plain = _telco(tmp_path, "plain.csv")
    result = score_file(telco_model.model_uri, plain, tmp_path / "s.csv", progress=False)
    here = MlflowClient().get_run(
        log_scoring_run(result, input_path=plain, experiment="tests-process").run_id
    )
    process = MonitoringProcess("tests-process")
    run_id, problem = process.log(scoring_request(result, input_path=plain, drift_threshold=0.2))
    assert problem is None and process.process.returncode == 0
    there = MlflowClient().get_run(run_id)
    assert there.data.metrics == here.data.metrics
    assert there.data.params == here.data.params
    for tag in ("model_name", "model_version", "model_run_id", "job"):
        assert there.data.tags[tag] == here.data.tags[tag]


def test_too_few_customers_log_psi_but_no_drifted_factor(telco_model, tmp_path) -> None:
    """Below the drift sample's minimum the PSI is logged, but no factor counts as drifted."""
    few = tmp_path / "few.csv"
    pd.read_csv(TELCO_CSV, nrows=5).assign(tenure=1).to_csv(few, index=False)
    result = score_file(telco_model.model_uri, few, tmp_path / "s.csv", progress=False)
    assert not result.drift_judged and (result.drift > 0.2).any()
    logged = log_scoring_run(result, experiment="tests-few")
    metrics = MlflowClient().get_run(logged.run_id).data.metrics
    assert logged.drifted == [] and metrics["drifted_factors"] == 0
    assert metrics["drift_judged"] == 0 and metrics["psi_max"] > 0.2


def test_a_job_that_fails_leaves_no_monitoring_run(telco_model, tmp_path) -> None:
    """The process started with the job is stopped, logging nothing, when the job fails."""
    from valuecube.commands.monitor import monitoring_process

    with pytest.raises(RuntimeError), monitoring_process("tests-failed-job") as process:
        raise RuntimeError("the job failed")
    assert process.process.returncode is not None  # stopped, not left behind
    assert mlflow.get_experiment_by_name("tests-failed-job") is None


def test_a_store_that_refuses_the_run_is_a_warning(telco_model, tmp_path) -> None:
    """The scores are complete when the store refuses the run (here: a deleted experiment):
    a warning names the experiment and the store's reason; exit code 0."""
    client = MlflowClient()
    client.delete_experiment(client.create_experiment("tests-refused"))
    plain = _telco(tmp_path, "plain.csv")
    out = tmp_path / "s.csv"
    done = _cli("score", "-m", telco_model.model_uri, "-i", str(plain), "-o", str(out),
                "--monitor-experiment", "tests-refused")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert out.exists() and "monitoring run" not in done.stdout
    warning = " ".join(done.stderr.split())
    assert "warning: monitoring run not logged to 'tests-refused'" in warning
    assert "deleted" in warning and "Traceback" not in done.stderr

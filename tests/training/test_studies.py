"""Shared Optuna studies: two real processes run different trials, one registration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from conftest import TELCO_CONFIG, TELCO_CSV
from typer.testing import CliRunner

from mlflow import MlflowClient
from valuecube.cli import app
from valuecube.training.studies import new_study_name, open_study, worker_seed


def test_names_and_seeds() -> None:
    assert new_study_name("telco") != new_study_name("telco")
    assert worker_seed("s", 0) != worker_seed("s", 1)
    assert worker_seed("s", 1) == worker_seed("s", 1)


def test_a_study_keeps_its_dataset_seed(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    open_study("fixed", storage=storage, worker=0, seed=3)
    with pytest.raises(ValueError, match="--seed 3"):
        open_study("fixed", storage=storage, worker=1, seed=4)


def test_two_processes_share_one_study_and_one_registers(mlflow_store, tmp_path: Path) -> None:
    small = tmp_path / "telco_small.csv"
    small.write_text("\n".join(TELCO_CSV.read_text().splitlines()[:601]) + "\n")
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study, name = "shared-telco", "study-telco"
    cli = str(Path(sys.executable).with_name("valuecube"))
    common = ["train", "-c", str(TELCO_CONFIG), "-i", str(small), "--storage", storage,
              "--study", study, "--trials", "2", "--max-epochs", "3", "--experiment", "tests-study",
              "--register-as", name, "--tune-only"]  # fmt: skip
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_store}
    MlflowClient().search_experiments()  # an existing store: two processes must not both create it
    workers = [
        subprocess.Popen(
            [cli, *common, "--worker", str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        for i in (0, 1)
    ]
    outputs = [w.communicate(timeout=600) for w in workers]
    for worker, (out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, out + err
        assert f"--from-study {study}" in " ".join(out.split())

    trials = optuna.load_study(study_name=study, storage=storage).trials
    assert len(trials) == 4
    params = {tuple(sorted(t.params.items())) for t in trials}
    assert len(params) == 4  # every trial different: the workers did not repeat each other
    client = MlflowClient()
    assert client.search_model_versions(f"name='{name}'") == []  # workers register nothing

    result = CliRunner().invoke(
        app,
        ["train", "-c", str(TELCO_CONFIG), "-i", str(small), "--storage", storage,
         "--from-study", study, "--max-epochs", "3", "--experiment", "tests-study",
         "--register-as", name, "--allow-worse", "600-row test file"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(client.search_model_versions(f"name='{name}'")) == 1
    assert len(optuna.load_study(study_name=study, storage=storage).trials) == 4  # no new trials

    missing = CliRunner().invoke(
        app, ["train", "-c", str(TELCO_CONFIG), "--storage", storage, "--from-study", "nope"]
    )
    assert missing.exit_code == 1 and "shared-telco" in " ".join(
        missing.output.split()
    )  # names the studies there

"""Registry: challenger registration, and promotion through the CLI as a user runs it."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from mlflow import MlflowClient
from valuecube.cli import app
from valuecube.training.promotion_job import run_promotion
from valuecube.training.registry import CHALLENGER

runner = CliRunner()


def _alias(name: str, alias: str) -> str:
    return str(MlflowClient().get_model_version_by_alias(name, alias).version)


def test_challenger_alias_and_tags(telco_model) -> None:
    client = MlflowClient()
    mv = client.get_model_version_by_alias("test-telco", CHALLENGER)
    assert str(mv.version) == telco_model.version
    assert telco_model.model_uri == "models:/test-telco@challenger"
    assert mv.tags["dataset"] == "telco" and mv.tags["seed"] == "0"
    assert float(mv.tags["test_churn_roc_auc"]) == pytest.approx(
        telco_model.comparison.loc["bp_network", "roc_auc"], abs=1e-6
    )


def test_promote_without_challenger_is_an_error(mlflow_store) -> None:
    client = MlflowClient()
    client.create_registered_model("no-challenger")
    with pytest.raises(ValueError, match="challenger"):
        run_promotion("no-challenger")
    result = runner.invoke(app, ["promote", "--model", "no-challenger"])
    assert result.exit_code == 1, result.output


def test_cli_train_then_promote_in_a_subprocess(mlflow_store, tmp_path) -> None:
    """`valuecube train` then `valuecube promote` as a user runs them: two processes, one store."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from conftest import ROOT, TELCO_CSV

    small = tmp_path / "telco_small.csv"
    small.write_text("\n".join(TELCO_CSV.read_text().splitlines()[:601]) + "\n")
    cli = [str(Path(sys.executable).with_name("valuecube"))]
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_store}
    name = "cli-e2e-telco"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*cli, *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=300,
            check=False,
        )

    trained = run(
        "train",
        "-c",
        str(ROOT / "configs/telco.yaml"),
        "-i",
        str(small),
        "--trials",
        "1",
        "--max-epochs",
        "2",
        "--register-as",
        name,
        "--experiment",
        "tests-cli",
        "--allow-worse",
        "600 rows, 2 epochs: a smoke test",
    )
    assert trained.returncode == 0, trained.stdout + trained.stderr
    out = " ".join(trained.stdout.split())
    assert f"registered {name} version 1 as models:/{name}@challenger" in out, out
    assert "bp_network" in out and "lightgbm" in out
    assert not (tmp_path / "mlflow").exists()  # tracked in the given store, not a local one
    assert _alias(name, CHALLENGER) == "1"

    # a first promotion passes the gate's absolute checks (here an unreachable ROC-AUC floor)
    promoted = run("promote", "--model", name, "--min-auc", "0.99")
    assert promoted.returncode == 2, promoted.stdout + promoted.stderr
    out = " ".join(promoted.stdout.split())
    assert "no champion yet" in out and "aliases unchanged" in out
    again = runner.invoke(app, ["promote", "--model", name, "--min-auc", "0.99"])  # in-process
    assert again.exit_code == 2 and "aliases unchanged" in " ".join(again.output.split())
    assert "champion" not in MlflowClient().get_registered_model(name).aliases

"""Registry: challenger registration and the promotion gate, both ways, through the API and the CLI."""

from __future__ import annotations

import pytest
from conftest import TELCO_CONFIG
from typer.testing import CliRunner

from mlflow import MlflowClient
from valuecube.cli import app
from valuecube.training.registry import CHALLENGER, CHAMPION, promote, register_challenger
from valuecube.training.train import run_train

GATE = "gate-telco"
runner = CliRunner()


def _alias(name: str, alias: str) -> str:
    return str(MlflowClient().get_model_version_by_alias(name, alias).version)


def _source(name: str, alias: str) -> str:
    return MlflowClient().get_model_version_by_alias(name, alias).source


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
        promote("no-challenger")
    result = runner.invoke(app, ["promote", "--model", "no-challenger"])
    assert result.exit_code == 1, result.output


def test_promotion_gate_both_ways(telco_model, mlflow_store) -> None:
    good = _source("test-telco", CHALLENGER)  # trials=2, max_epochs=15

    # 1. no champion yet: the challenger becomes champion unconditionally.
    v1 = register_challenger(GATE, good, tags={"role": "good"})
    first = promote(GATE)
    assert first.promoted and first.champion_before is None and first.challenger == v1
    assert _alias(GATE, CHAMPION) == v1

    # already champion: nothing to do.
    again = promote(GATE)
    assert not again.promoted and "already" in again.reason
    assert _alias(GATE, CHAMPION) == v1

    # 2. a worse challenger (one epoch) under the same name: refused, champion unchanged.
    worse = run_train(
        TELCO_CONFIG, trials=1, max_epochs=1, seed=0, register_as=GATE, experiment="tests-gate"
    )
    assert _alias(GATE, CHALLENGER) == worse.version != v1
    refused = promote(GATE)
    assert not refused.promoted, refused
    assert refused.challenger_auc < refused.champion_auc
    assert refused.champion_before == v1 and refused.challenger == worse.version
    assert "aliases unchanged" in refused.reason
    assert _alias(GATE, CHAMPION) == v1
    assert _alias(GATE, CHALLENGER) == worse.version
    # the re-evaluated AUCs are the ones logged at training time (same test customers).
    assert refused.challenger_auc == pytest.approx(
        worse.comparison.loc["bp_network", "roc_auc"], abs=1e-6
    )
    assert refused.champion_auc == pytest.approx(
        telco_model.comparison.loc["bp_network", "roc_auc"], abs=1e-6
    )

    # the CLI refuses the same way, with exit code 2 and the reason.
    result = runner.invoke(app, ["promote", "--model", GATE])
    assert result.exit_code == 2, result.output
    assert "aliases unchanged" in result.output
    assert _alias(GATE, CHAMPION) == v1

    # 3. a challenger at least as good (the same network again: equal AUC): promoted.
    v3 = register_challenger(GATE, good, tags={"role": "good-again"})
    accepted = promote(GATE)
    assert accepted.promoted, accepted
    assert accepted.challenger_auc >= accepted.champion_auc
    assert accepted.challenger_auc == pytest.approx(accepted.champion_auc)
    assert _alias(GATE, CHAMPION) == v3

    # CLI when already champion: not promoted → exit 2.
    result = runner.invoke(app, ["promote", "--model", GATE])
    assert result.exit_code == 2 and "already" in result.output


def test_cli_train_then_promote_in_a_subprocess(mlflow_store, tmp_path) -> None:
    """`valuecube train` then `valuecube promote` as a user runs them: separate processes, one store."""
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
    )
    assert trained.returncode == 0, trained.stdout + trained.stderr
    out = " ".join(trained.stdout.split())
    assert f"registered {name} version 1 as models:/{name}@challenger" in out, out
    assert "bp_network" in out and "lightgbm" in out
    assert not (tmp_path / "mlflow").exists()  # tracked in the given store, not a local one
    assert _alias(name, CHALLENGER) == "1"

    promoted = run("promote", "--model", name)
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert "no champion yet" in promoted.stdout
    assert _alias(name, CHAMPION) == "1"

    again = runner.invoke(
        app, ["promote", "--model", name]
    )  # in-process: the same store through the environment
    assert again.exit_code == 2 and "already the champion" in again.output

"""Registry: challenger registration and the promotion gate, both ways, through the API and the CLI."""

from __future__ import annotations

import pytest
from conftest import TELCO_CONFIG
from mlflow import MlflowClient
from typer.testing import CliRunner

from training.registry import CHALLENGER, CHAMPION, promote, register_challenger
from training.train import run_train
from valuecube.cli import app

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
    assert float(mv.tags["test_churn_roc_auc"]) == pytest.approx(telco_model.comparison.loc["bp_network", "roc_auc"], abs=1e-6)


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
    worse = run_train(TELCO_CONFIG, trials=1, max_epochs=1, seed=0, register_as=GATE, experiment="tests-gate")
    assert _alias(GATE, CHALLENGER) == worse.version != v1
    refused = promote(GATE)
    assert not refused.promoted, refused
    assert refused.challenger_auc < refused.champion_auc
    assert refused.champion_before == v1 and refused.challenger == worse.version
    assert "aliases unchanged" in refused.reason
    assert _alias(GATE, CHAMPION) == v1
    assert _alias(GATE, CHALLENGER) == worse.version
    # the re-evaluated AUCs are the ones logged at training time (same test customers).
    assert refused.challenger_auc == pytest.approx(worse.comparison.loc["bp_network", "roc_auc"], abs=1e-6)
    assert refused.champion_auc == pytest.approx(telco_model.comparison.loc["bp_network", "roc_auc"], abs=1e-6)

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

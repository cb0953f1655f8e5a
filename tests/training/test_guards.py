"""Training-time quality guard: a network worse than logistic regression is not registered."""

from __future__ import annotations

import pytest
from conftest import TELCO_CONFIG
from typer.testing import CliRunner

from mlflow import MlflowClient
from valuecube.cli import app
from valuecube.training.guards import GuardPolicy, GuardRefused, decide
from valuecube.training.train import run_train

LR = {"brier": 0.132, "roc_auc": 0.84}


def _versions(name: str) -> list:
    return MlflowClient().search_model_versions(f"name='{name}'")


def test_decide_refuses_the_one_epoch_numbers_of_the_issue() -> None:
    bad = decide({"brier": 0.247, "roc_auc": 0.80}, LR, 0.168)
    assert not bad.passed and not bad.register
    assert list(bad.table.index[~bad.table["pass"]]) == [
        "churn brier",
        "churn roc_auc",
        "segment accuracy",
    ]
    good = decide({"brier": 0.135, "roc_auc": 0.83}, LR, 0.9)  # inside the default tolerances
    assert good.passed and good.tags == {"guard": "passed"}
    strict = decide({"brier": 0.135, "roc_auc": 0.83}, LR, 0.9, GuardPolicy(brier_tolerance=0.0))
    assert not strict.passed


def test_override_reason_is_in_the_tags() -> None:
    decision = decide({"brier": 0.3, "roc_auc": 0.5}, LR, 0.9, GuardPolicy(allow_worse="demo"))
    assert decision.register and not decision.passed
    assert decision.tags["guard"] == "overridden"
    assert decision.tags["guard_override_reason"] == "demo"
    assert decision.tags["guard_failed_checks"] == "churn brier, churn roc_auc"


def test_one_epoch_network_is_refused_at_registration(mlflow_store) -> None:
    name = "guard-telco"
    with pytest.raises(GuardRefused, match="--allow-worse") as refused:
        run_train(
            TELCO_CONFIG, trials=1, max_epochs=1, seed=0, register_as=name, experiment="tests-guard"
        )
    table = refused.value.decision.table
    assert not table["pass"].all() and table.loc["churn brier", "network"] > 0
    assert _versions(name) == []

    # the command line: exit code 2, the table, nothing registered
    result = CliRunner().invoke(
        app,
        ["train", "-c", str(TELCO_CONFIG), "--trials", "1", "--max-epochs", "1",
         "--register-as", name, "--experiment", "tests-guard"],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    out = " ".join(result.output.split())
    assert "quality guard" in out and "--allow-worse" in out
    assert _versions(name) == []

    # --allow-worse registers it, with the reason on the version
    result = CliRunner().invoke(
        app,
        ["train", "-c", str(TELCO_CONFIG), "--trials", "1", "--max-epochs", "1",
         "--register-as", name, "--experiment", "tests-guard", "--allow-worse", "smoke test"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (version,) = _versions(name)
    assert version.tags["guard"] == "overridden"
    assert version.tags["guard_override_reason"] == "smoke test"
    assert version.tags["guard_failed_checks"]  # the checks it failed, named

"""The promotion gate: fair customers, paired bootstrap, absolute checks, the decision in MLflow."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TELCO_CONFIG, TELCO_CSV
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from mlflow import MlflowClient
from valuecube.cli import app
from valuecube.training.guards import GuardPolicy
from valuecube.training.promotion import (
    Evaluation,
    bootstrap_indices,
    expected_calibration_error,
    gate,
    resampled_auc,
)
from valuecube.training.promotion_job import CHAMPION, LeakageError, run_promotion
from valuecube.training.registry import register_challenger
from valuecube.training.train import run_train

runner = CliRunner()
rng = np.random.default_rng(0)


def _alias(name: str, alias: str) -> str:
    return str(MlflowClient().get_model_version_by_alias(name, alias).version)


def _flat(text: str) -> str:
    return " ".join(text.split())


def _evaluation(y: np.ndarray, p: np.ndarray, segment_agree: float = 1.0) -> Evaluation:
    seg = np.array(["A"] * len(y), dtype=object)
    model = seg.copy()
    model[: int(len(y) * (1 - segment_agree))] = "B"
    return Evaluation(y, p, seg, model)


def test_vectorised_bootstrap_auc_is_sklearns_auc() -> None:
    y = rng.integers(0, 2, 300).astype(float)
    p = np.round(rng.random(300), 2)  # ties
    idx = bootstrap_indices(300, 5, seed=1)
    expected = [roc_auc_score(y[i], p[i]) for i in idx]
    np.testing.assert_allclose(resampled_auc(y, p, idx), expected)


def test_calibration_error() -> None:
    y = rng.integers(0, 2, 20000).astype(float)
    assert expected_calibration_error(y, np.full(len(y), y.mean())) < 0.01
    assert expected_calibration_error(y, np.full(len(y), 0.95)) > 0.4


def test_gate_is_paired_and_has_a_margin() -> None:
    good = rng.beta(1, 2, 2000)  # calibrated: each customer churns with its probability
    y = (rng.random(2000) < good).astype(float)
    same = gate(_evaluation(y, good), _evaluation(y, good))
    assert same.passed  # identical models: every difference is 0 in every resample
    assert same.table.loc["Δ churn roc_auc", "low"] == 0.0
    noisy = np.clip(good + rng.normal(0, 0.3, 2000), 0.01, 0.99)
    worse = gate(_evaluation(y, noisy), _evaluation(y, good))
    assert not worse.table.loc["Δ churn roc_auc", "pass"]
    assert worse.table.loc["Δ churn roc_auc", "high"] < 0
    first = gate(_evaluation(y, good, segment_agree=0.3), None)  # first promotion: absolute checks
    assert "Δ churn roc_auc" not in first.table.index
    assert not first.table.loc["segment accuracy", "pass"] and not first.passed


def test_gate_refuses_customers_a_model_trained_on(telco_model) -> None:
    name = "leak-telco"
    source = MlflowClient().get_model_version("test-telco", telco_model.version).source
    register_challenger(name, source, tags={})
    # the whole training file: most of its customers were in the model's train/validation parts
    with pytest.raises(LeakageError, match="training or validation data"):
        run_promotion(name, eval_data=TELCO_CSV)
    result = runner.invoke(app, ["promote", "-m", name, "--eval-data", str(TELCO_CSV)])
    assert result.exit_code == 1 and "refusing to evaluate" in _flat(result.output)
    aliases = MlflowClient().get_registered_model(name).aliases
    assert {k: str(v) for k, v in aliases.items()} == {"challenger": "1"}  # nothing moved


def test_first_promotion_then_refusal_then_equal_challenger(telco_model, mlflow_store) -> None:
    name = "promo-telco"
    client = MlflowClient()
    good = client.get_model_version("test-telco", telco_model.version).source
    register_challenger(name, good, tags={})

    dry = runner.invoke(app, ["promote", "-m", f"models:/{name}@challenger", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would be promoted (dry run)" in _flat(dry.output)
    assert "promotion_verdict" not in client.get_model_version(name, "1").tags
    assert "champion" not in client.get_registered_model(name).aliases

    first = run_promotion(name)  # no champion: the absolute checks only
    assert first.promoted and first.champion_before is None
    assert "no champion yet" in first.reason
    assert _alias(name, CHAMPION) == "1"
    v1 = client.get_model_version(name, "1")
    assert v1.tags["promotion_verdict"] == "promoted"
    assert v1.tags["promotion_decided_by"] and v1.tags["promotion_decided_at"].endswith("UTC")
    assert "evaluation split" in v1.tags["promotion_evaluation"]
    assert "## Promotion decision: promoted" in v1.description

    # a one-epoch network, registered with an override: the gate refuses it
    worse = run_train(
        TELCO_CONFIG, trials=1, max_epochs=1, seed=1, register_as=name, experiment="tests-gate",
        guard=GuardPolicy(allow_worse="gate test"),
    )  # fmt: skip
    result = runner.invoke(app, ["promote", "-m", f"models:/{name}/{worse.version}"])
    assert result.exit_code == 2, result.output
    assert "aliases unchanged" in _flat(result.output) and "fails Δ churn" in _flat(result.output)
    assert _alias(name, CHAMPION) == "1"
    refused = client.get_model_version(name, worse.version)
    assert refused.tags["promotion_verdict"] == "refused"
    assert refused.tags["promotion_champion_before"] == "1"
    deltas = (
        refused.tags["promotion_delta_churn_roc_auc"] + refused.tags["promotion_delta_churn_brier"]
    )
    assert "FAIL" in deltas and "[" in deltas  # the differences with their intervals
    # both models were scored on the same fixed evaluation customers, whatever their seeds
    assert f"{len(telco_model_test_ids(telco_model))} customers" in refused.tags[
        "promotion_evaluation"
    ].replace(",", "")

    # the same good network again (equal metrics): passes, becomes champion
    v3 = register_challenger(name, good, tags={})
    accepted = run_promotion(name)
    assert accepted.promoted and accepted.champion_before == "1"
    assert accepted.decision.table.loc["Δ churn roc_auc", "Δ"] == pytest.approx(0.0)
    assert _alias(name, CHAMPION) == v3
    again = runner.invoke(app, ["promote", "-m", name])
    assert again.exit_code == 2 and "already the champion" in _flat(again.output)


def telco_model_test_ids(result) -> list:
    from valuecube.training.lineage import logged_split

    split = logged_split(result.model.metadata["run_id"])
    return list(split.loc[split["part"] == "test", "customer_hash"])

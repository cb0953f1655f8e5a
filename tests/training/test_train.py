"""The train job: determinism under a seed, and the MLflow layout of one training run."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import TELCO_CONFIG

import mlflow
from mlflow import MlflowClient
from valuecube.features.config import load_config
from valuecube.training.data import load_training_data
from valuecube.training.guards import GuardPolicy
from valuecube.training.peers import FUZZY, NETWORK
from valuecube.training.train import TrainResult, run_train

PEERS = {"logistic_regression", "lightgbm", FUZZY}


@pytest.fixture(scope="module")
def telco_rows() -> pd.DataFrame:
    data = load_training_data(load_config(TELCO_CONFIG), seed=0)
    return data.model_input(data.split.test[:25])


@pytest.fixture(scope="module")
def children(telco_model: TrainResult) -> pd.DataFrame:
    parent = MlflowClient().get_run(telco_model.run_id)
    return mlflow.search_runs(
        experiment_ids=[parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{telco_model.run_id}'",
    )


def test_same_seed_same_result(mlflow_store, telco_rows) -> None:
    kwargs = dict(trials=1, max_epochs=3, seed=0, experiment="tests-determinism")
    kwargs["guard"] = GuardPolicy(allow_worse="determinism test: 3 epochs")
    a = run_train(TELCO_CONFIG, register_as="det-a", **kwargs)
    b = run_train(TELCO_CONFIG, register_as="det-b", **kwargs)
    assert a.run_id != b.run_id
    assert (a.registered_name, b.registered_name) == ("det-a", "det-b")
    pd.testing.assert_frame_equal(a.comparison, b.comparison)
    assert a.agreement == b.agreement
    assert a.study.best_trial.params == b.study.best_trial.params
    pa, pb = a.model.predict(telco_rows), b.model.predict(telco_rows)
    pd.testing.assert_frame_equal(pa, pb)
    assert set(a.comparison.index) == {NETWORK, *PEERS}
    assert list(a.comparison.columns) == ["roc_auc", "pr_auc", "brier", "log_loss"]
    assert a.comparison["roc_auc"].between(0.5, 1).all()


def test_train_result(telco_model: TrainResult) -> None:
    assert telco_model.registered_name == "test-telco"
    assert telco_model.model_uri == "models:/test-telco@challenger"
    assert len(telco_model.study.trials) == 2
    assert set(telco_model.agreement) >= {"segment_accuracy"}
    meta = telco_model.model.metadata
    assert meta["dataset"] == "telco" and meta["seed"] == 0 and meta["customer_columns"] == []


def test_nested_runs(telco_model: TrainResult, children: pd.DataFrame) -> None:
    names = children["tags.mlflow.runName"].tolist()
    assert names.count(NETWORK) == 1
    assert PEERS <= set(names)
    trials = children[~children["tags.mlflow.runName"].isin({NETWORK, *PEERS})]
    assert len(trials) == len(telco_model.study.trials) == 2
    assert (children["tags.mlflow.parentRunId"] == telco_model.run_id).all()
    assert telco_model.model.metadata["run_id"] in set(children["run_id"])
    client = MlflowClient()
    for run_id in trials["run_id"]:
        run = client.get_run(run_id)
        assert run.data.tags["mlflow.parentRunId"] == telco_model.run_id
        assert {"n_layers", "dropout", "learning_rate"} <= set(run.data.params)
        history = client.get_metric_history(run_id, "val_loss")
        assert len(history) > 1
        assert [m.step for m in history] == sorted(m.step for m in history)
        assert len(client.get_metric_history(run_id, "val_objective")) > 1
    net = children[children["tags.mlflow.runName"] == NETWORK].iloc[0]
    assert len(client.get_metric_history(net["run_id"], "val_loss")) > 1
    assert net["metrics.test_churn_roc_auc"] == pytest.approx(
        telco_model.comparison.loc[NETWORK, "roc_auc"]
    )
    for peer in PEERS:
        row = children[children["tags.mlflow.runName"] == peer].iloc[0]
        assert row["metrics.test_churn_roc_auc"] == pytest.approx(
            telco_model.comparison.loc[peer, "roc_auc"]
        )


def _artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    out = set()
    for f in client.list_artifacts(run_id, path):
        out |= _artifacts(client, run_id, f.path) if f.is_dir else {f.path}
    return out


def test_parent_run_artifacts_and_params(
    telco_model: TrainResult, children: pd.DataFrame, tmp_path
) -> None:
    client = MlflowClient()
    files = _artifacts(client, telco_model.run_id)
    assert {
        "config/telco.yaml",
        "optuna/summary.json",
        "optuna/optuna_trials.csv",
        "comparison/comparison.csv",
        "comparison/roc.png",
        "comparison/confusion_matrix.png",
        "comparison/segment_agreement.json",
    } <= files
    summary = mlflow.artifacts.load_dict(f"runs:/{telco_model.run_id}/optuna/summary.json")
    assert summary["best_params"] == telco_model.study.best_trial.params
    assert summary["best_value"] == pytest.approx(telco_model.study.best_value)
    local = mlflow.artifacts.download_artifacts(
        run_id=telco_model.run_id, artifact_path="comparison/comparison.csv", dst_path=str(tmp_path)
    )
    logged = pd.read_csv(local, index_col=0)
    pd.testing.assert_frame_equal(logged, telco_model.comparison, check_names=False, atol=1e-9)
    params = client.get_run(telco_model.run_id).data.params
    assert params["dataset"] == "telco" and params["trials"] == "2" and params["seed"] == "0"
    net_id = children.loc[children["tags.mlflow.runName"] == NETWORK, "run_id"].iloc[0]
    assert {"plots/roc.png", "plots/confusion_matrix.png"} <= _artifacts(client, net_id)
    metrics = client.get_run(telco_model.run_id).data.metrics
    for m in telco_model.comparison.index:
        assert metrics[f"test_churn_roc_auc_{m}"] == pytest.approx(
            telco_model.comparison.loc[m, "roc_auc"]
        )

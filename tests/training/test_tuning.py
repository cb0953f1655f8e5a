"""Tuning: search space, objective (per-epoch logging, pruning), seeded study, torch threads."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pandas as pd
import pytest
import torch

import mlflow
from mlflow import MlflowClient
from valuecube.models.network import BPNetworkClassifier
from valuecube.training.tuning import (
    OBJECTIVE,
    create_study,
    make_objective,
    params_from_trial,
    snapshot_objective,
    suggest_params,
    torch_threads,
)

FLAT = {
    "n_layers": 2,
    "units_0": 32,
    "units_1": 16,
    "dropout": 0.1,
    "learning_rate": 3e-3,
    "weight_decay": 1e-4,
    "batch_size": 64,
}


def _data(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=["a", "b", "c", "d"])
    segment = np.where(X["a"] > 0, "high", "low")
    churn = (X["b"] + 0.5 * rng.normal(size=n) > 0).astype(int)
    return X, pd.DataFrame({"segment": segment, "churn": churn})


@pytest.fixture(scope="module")
def data():
    return (*_data(240, 0), *_data(80, 1))


class _PruneNow(optuna.trial.FixedTrial):
    """A fixed trial whose pruner says stop at the first report."""

    def should_prune(self) -> bool:
        return True


def test_search_space_round_trips_into_the_network() -> None:
    trial = optuna.trial.FixedTrial(FLAT)
    suggested = suggest_params(trial)
    assert suggested == params_from_trial(FLAT)
    assert suggested["hidden_layers"] == (32, 16)
    net = BPNetworkClassifier(**suggested)
    assert net.get_params()["hidden_layers"] == (32, 16)
    # the churn-loss weight does not change training with the default wide churn head
    assert net.churn_head == "wide" and "churn_loss_weight" not in suggested
    # every sampled point of the space is a valid network configuration
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        t = study.ask()
        params = suggest_params(t)
        assert params == params_from_trial(t.params)
        BPNetworkClassifier(**params)._validate_params()
        study.tell(t, 0.0)


def test_snapshot_objective_sums_each_heads_lowest_loss() -> None:
    history = [
        {"val_segment_logloss": 0.5, "val_churn_logloss": 0.30, "val_loss": 9.0},
        {"val_segment_logloss": 0.4, "val_churn_logloss": 0.35, "val_loss": 0.1},
        {"val_segment_logloss": math.nan, "val_churn_logloss": 0.32, "val_loss": 0.1},
    ]
    assert snapshot_objective(history[:1]) == pytest.approx(0.8)
    # the heads' best epochs differ (1 and 0); a NaN epoch is skipped; val_loss plays no part
    assert snapshot_objective(history) == pytest.approx(0.7)


def test_objective_returns_best_epoch_and_logs_every_epoch(mlflow_store, data) -> None:
    objective = make_objective(*data, seed=0, max_epochs=4, patience=10)
    mlflow.set_experiment("tests-tuning")
    with mlflow.start_run() as run:
        value = objective(optuna.trial.FixedTrial(FLAT))
    client = MlflowClient()
    history = client.get_metric_history(run.info.run_id, OBJECTIVE)
    assert [m.step for m in sorted(history, key=lambda m: m.step)] == [0, 1, 2, 3]
    assert value == pytest.approx(min(m.value for m in history))
    # the value is what the network's two snapshots score on validation
    lowest = {
        name: min(m.value for m in client.get_metric_history(run.info.run_id, name))
        for name in ("val_segment_logloss", "val_churn_logloss")
    }
    assert value == pytest.approx(sum(lowest.values()))
    for name in (
        "val_churn_logloss",
        "val_segment_logloss",
        "val_loss",
        "train_loss",
        "val_churn_auc",
    ):
        assert len(client.get_metric_history(run.info.run_id, name)) == 4, name
    assert math.isfinite(value)
    # same seed, same data: the same value (and no MLflow run is needed)
    assert (
        make_objective(*data, seed=0, max_epochs=4, patience=10)(optuna.trial.FixedTrial(FLAT))
        == value
    )


def test_objective_prunes(data) -> None:
    objective = make_objective(*data, seed=0, max_epochs=50, patience=50)
    with pytest.raises(optuna.TrialPruned, match="epoch 0"):
        objective(_PruneNow(FLAT))


def _first_params(seed: int, name: str) -> dict:
    trial = create_study(name, storage=None, seed=seed).ask()
    suggest_params(trial)
    return trial.params


def test_study_is_seeded_and_shared_through_storage(tmp_path, data) -> None:
    assert _first_params(0, "a") == _first_params(0, "b")
    assert _first_params(0, "c") != _first_params(1, "d")

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = create_study("shared", storage=storage, seed=0)
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    assert isinstance(study.pruner, optuna.pruners.MedianPruner)
    study.optimize(make_objective(*data, seed=0, max_epochs=2, patience=2), n_trials=1)
    again = create_study("shared", storage=storage, seed=0)  # load_if_exists: the same study
    assert len(again.trials) == 1 and again.best_value == pytest.approx(study.best_value)


def test_torch_threads_restores_the_setting() -> None:
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before

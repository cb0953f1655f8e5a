"""Optuna search for the BP network: TPE sampling, median pruning on the validation objective.

The value each trial reports (per epoch, for pruning) and returns is the
validation *objective*: the lowest ``val_segment_logloss`` plus the lowest
``val_churn_logloss`` (plus, for the forecasting network, the lowest
``val_spend_loss``) over the epochs so far. These are the validation losses
of the two per-head snapshots the network keeps (see
:class:`~models.network.BPNetworkClassifier`); being unweighted, they do not
depend on the network's loss weights.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import optuna
import pandas as pd
import torch

import mlflow
from valuecube.models.network import BPNetworkClassifier

OBJECTIVE = "val_objective"
TORCH_THREADS = 1


@contextmanager
def torch_threads(n: int = TORCH_THREADS) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, then restore the previous setting.

    The networks here are small (tens of inputs, ≤ 128 units, mini-batches of
    64–512 rows): extra intra-op threads buy little, and on a busy machine
    their contention made fits several times slower. The predictions were
    bit-identical with one and two threads in our checks.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def suggest_params(trial: optuna.Trial) -> dict[str, Any]:
    """The search space: layer sizes, dropout, learning rate, weight decay, batch size.

    The network keeps its default wide churn head, which shares no weights
    with the segment trunk; AdamW is invariant to the scale of each
    parameter's loss, so the churn-loss weight would not change training and
    is not searched.
    """
    n_layers = trial.suggest_int("n_layers", 1, 3)
    hidden = tuple(
        trial.suggest_categorical(f"units_{i}", [16, 32, 64, 128]) for i in range(n_layers)
    )
    return {
        "hidden_layers": hidden,
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 3e-2, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256, 512]),
    }


def params_from_trial(params: dict[str, Any]) -> dict[str, Any]:
    """Network keyword arguments from a finished trial's flat parameters."""
    hidden = tuple(params[f"units_{i}"] for i in range(params["n_layers"]))
    keys = ("dropout", "learning_rate", "weight_decay", "batch_size")
    return {"hidden_layers": hidden, **{k: params[k] for k in keys}}


def snapshot_objective(history: Sequence[dict[str, float]]) -> float:
    """The comparable validation objective after the epochs in ``history``.

    Each head's lowest unweighted validation log loss so far (NaN epochs
    skipped), summed: what the network's segment and churn snapshots score.
    """
    heads = ["val_segment_logloss", "val_churn_logloss"]
    if "val_spend_loss" in history[0]:
        heads.append("val_spend_loss")
    return float(sum(np.fmin.reduce([metrics[h] for metrics in history]) for h in heads))


def make_objective(
    X_train: pd.DataFrame,
    y_train: pd.DataFrame,
    X_val: pd.DataFrame,
    y_val: pd.DataFrame,
    *,
    seed: int,
    max_epochs: int,
    patience: int,
    fixed: dict[str, Any] | None = None,
) -> Callable[[optuna.Trial], float]:
    """An Optuna objective that trains one network and logs its epochs to the active MLflow run.

    ``fixed``: network settings that are not searched (they override the sampled ones).
    """

    def objective(trial: optuna.Trial) -> float:
        params = {**suggest_params(trial), **(fixed or {})}
        history: list[dict[str, float]] = []

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            history.append(metrics)
            value = snapshot_objective(history)
            if mlflow.active_run() is not None:
                mlflow.log_metrics({**metrics, OBJECTIVE: value}, step=epoch)
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch}")

        with torch_threads():
            BPNetworkClassifier(
                **params, max_epochs=max_epochs, patience=patience, random_state=seed
            ).fit(X_train, y_train, eval_set=(X_val, y_val), on_epoch=on_epoch)
        return snapshot_objective(history)

    return objective


def create_study(name: str, *, storage: str | None, seed: int) -> optuna.Study:
    """A minimising study (TPE, median pruner); shared through an RDB ``storage`` URL when given."""
    return optuna.create_study(
        study_name=name,
        storage=storage,
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=10),
        load_if_exists=True,
    )

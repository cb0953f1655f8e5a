"""Churn quality of the BP network against its peers, every model tuned with the same Optuna budget.

* Telco: 5-fold stratified cross-validation. Inside each training fold an inner
  stratified split (80/20) gives the validation rows used for tuning and early
  stopping; the test fold is only ever scored.
* CDNOW: the customer-level train/validation/test split used by ``train``
  (features from the calibration window, churn = no purchase in the holdout);
  also BG/NBD expected purchases and the fuzzy baseline's score as references.

Reports churn ROC-AUC per model and the network's segment agreement with the
fuzzy segments on the test customers.

    .venv/bin/python benchmarks/bench_model_quality.py [--trials 10]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import optuna
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split

from features.config import load_config
from models.design import NetworkDesign
from models.network import BPNetworkClassifier
from models.value_cube import ValueCube
from training import peers
from training.data import load_training_data
from training.tuning import create_study, make_objective, params_from_trial

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _prepare(cfg, table: pd.DataFrame, train: np.ndarray, parts: dict[str, np.ndarray]) -> dict:
    cube = ValueCube(cfg).fit(table.loc[train])
    design = NetworkDesign(cube).fit(table.loc[train])
    out = {}
    for name, ids in parts.items():
        customers = table.loc[ids]
        factors = cube.factors(customers)
        out[name] = {
            "X": design.transform(customers),
            "y": pd.DataFrame({"segment": cube.fuzzy_.predict(factors), "churn": customers["churn"].to_numpy()}, index=ids),
            "scores": cube.fuzzy_.transform(factors),
        }
    return out


def _tune_peer(kind: str, tr: dict, va: dict, trials: int, seed: int):
    def build(trial):
        if kind == "logistic_regression":
            return peers.logistic_peer(C=trial.suggest_float("C", 1e-3, 10, log=True), seed=seed)
        return peers.lightgbm_peer(
            seed=seed,
            num_leaves=trial.suggest_int("num_leaves", 4, 63, log=True),
            learning_rate=trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            n_estimators=trial.suggest_int("n_estimators", 50, 600, log=True),
            min_child_samples=trial.suggest_int("min_child_samples", 5, 100, log=True),
        )

    def objective(trial):
        model = build(trial).fit(tr["X"].to_numpy(), tr["y"]["churn"])
        return roc_auc_score(va["y"]["churn"], model.predict_proba(va["X"].to_numpy())[:, 1])

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=trials)
    return build(optuna.trial.FixedTrial(study.best_params)).fit(tr["X"].to_numpy(), tr["y"]["churn"])


def evaluate(data: dict, trials: int, seed: int, max_epochs: int) -> dict[str, float]:
    """Tune every model on train/validation, score the test part."""
    tr, va, te = data["train"], data["validation"], data["test"]
    study = create_study(f"bench-{time.time_ns()}", storage=None, seed=seed)
    study.optimize(make_objective(tr["X"], tr["y"], va["X"], va["y"], seed=seed, max_epochs=max_epochs, patience=20),
                   n_trials=trials)
    net = BPNetworkClassifier(**params_from_trial(study.best_trial.params), max_epochs=max_epochs, patience=20,
                              random_state=seed).fit(tr["X"], tr["y"], eval_set=(va["X"], va["y"]))
    y = te["y"]["churn"]
    result = {"bp_network": roc_auc_score(y, net.predict_churn_proba(te["X"]))}
    for kind in peers.PEER_NAMES:
        model = _tune_peer(kind, tr, va, trials, seed)
        result[kind] = roc_auc_score(y, model.predict_proba(te["X"].to_numpy())[:, 1])
    fuzzy = peers.fuzzy_churn_peer(seed).fit(tr["scores"], tr["y"]["churn"])
    result["fuzzy_baseline"] = roc_auc_score(y, fuzzy.predict_proba(te["scores"])[:, 1])
    if "f:expected_purchases" in te["X"].columns:
        result["bgnbd_expected_purchases"] = roc_auc_score(y, -te["X"]["f:expected_purchases"])
    result["segment_agreement"] = float((net.predict(te["X"]) == te["y"]["segment"].to_numpy()).mean())
    return result


def telco(trials: int, seed: int, max_epochs: int) -> pd.DataFrame:
    cfg = load_config("configs/telco.yaml")
    table = load_training_data(cfg, seed=seed).customers.table
    ids, churn = table.index.to_numpy(dtype=object), table["churn"].to_numpy()
    rows = []
    for fold, (train_idx, test_idx) in enumerate(StratifiedKFold(5, shuffle=True, random_state=seed).split(ids, churn)):
        inner_train, inner_val = train_test_split(ids[train_idx], test_size=0.2, random_state=seed, stratify=churn[train_idx])
        data = _prepare(cfg, table, inner_train, {"train": inner_train, "validation": inner_val, "test": ids[test_idx]})
        rows.append(evaluate(data, trials, seed, max_epochs))
        print(f"  telco fold {fold}: " + ", ".join(f"{k} {v:.4f}" for k, v in rows[-1].items()), flush=True)
    return pd.DataFrame(rows)


def cdnow(trials: int, seed: int, max_epochs: int) -> pd.DataFrame:
    cfg = load_config("configs/cdnow.yaml")
    td = load_training_data(cfg, seed=seed)
    split = td.split
    data = _prepare(cfg, td.customers.table, split.train.to_numpy(dtype=object),
                    {"train": split.train, "validation": split.validation, "test": split.test})
    return pd.DataFrame([evaluate(data, trials, seed, max_epochs)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10, help="Optuna trials per model (the same budget for each)")
    parser.add_argument("--max-epochs", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    t = telco(args.trials, args.seed, args.max_epochs)
    print(f"\nTelco, 5-fold CV churn ROC-AUC ({args.trials} trials per model per fold): mean ± std")
    print(pd.DataFrame({"mean": t.mean(), "std": t.std()}).round(4).to_string())
    c = cdnow(args.trials, args.seed, args.max_epochs)
    print(f"\nCDNOW, holdout churn ROC-AUC on {args.trials}-trial tuned models (test customers):")
    print(c.T.rename(columns={0: "value"}).round(4).to_string())
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

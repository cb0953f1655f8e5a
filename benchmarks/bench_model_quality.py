"""Churn quality of the BP network against its peers, every model tuned with the same Optuna budget.

* Telco: 5-fold stratified cross-validation. Inside each training fold an inner
  stratified split (80/20) gives the rows used for fitting and the validation
  rows used for tuning and early stopping; the value cube and the network's
  input design are fitted on the fold's fitting rows; the test fold is only
  ever scored.
* CDNOW: the customer-level train/validation/test split that ``train`` uses
  (features from the calibration window, churn = no purchase in the holdout),
  plus two references: BG/NBD expected purchases (as a churn score:
  −expected purchases) and the fuzzy baseline's logistic score.

Every tuned model gets the same number of Optuna (TPE) trials: the network
minimises the validation objective ``train`` uses (the segment and churn
snapshots' validation log losses, summed, with median pruning); logistic
regression (C) and LightGBM (leaves, learning rate, trees, leaf size) maximise
the validation churn ROC-AUC. Each is then refitted with its best parameters
and scored once on the test customers.

Reports churn ROC-AUC per model, the network's segment agreement (accuracy)
with the fuzzy segments on the test customers, and the issue's two goals: the
network at least matches the best peer; agreement ≥ 97 %.

    .venv/bin/python benchmarks/bench_model_quality.py [--trials 15] [--datasets telco cdnow]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split

from valuecube.features.config import load_config
from valuecube.models.design import NetworkDesign
from valuecube.models.network import BPNetworkClassifier
from valuecube.models.value_cube import ValueCube
from valuecube.training import peers
from valuecube.training.data import load_training_data
from valuecube.training.tuning import create_study, make_objective, params_from_trial, torch_threads

ROOT = Path(__file__).resolve().parent.parent
NETWORK = "bp_network"
PEERS = tuple(peers.PEER_NAMES)
AGREEMENT = "segment_agreement"
AGREEMENT_GOAL = 0.97

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _prepare(cfg, table: pd.DataFrame, fit_ids: np.ndarray, parts: dict[str, np.ndarray]) -> dict:
    """Fit the cube and the design on ``fit_ids``; inputs, labels and fuzzy scores of every part."""
    cube = ValueCube(cfg).fit(table.loc[fit_ids])
    design = NetworkDesign(cube).fit(table.loc[fit_ids])
    out = {}
    for name, ids in parts.items():
        customers = table.loc[ids]
        factors = cube.factors(customers)
        out[name] = {
            "X": design.transform(customers),
            "y": pd.DataFrame(
                {"segment": cube.fuzzy_.predict(factors), "churn": customers["churn"].to_numpy()},
                index=ids,
            ),
            "scores": cube.fuzzy_.transform(factors),
            # BG/NBD (fitted inside the cube on the fit rows): expected purchases in the horizon
            "expected_purchases": factors["expected_purchases"].to_numpy()
            if "expected_purchases" in factors
            else None,
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
    return build(optuna.trial.FixedTrial(study.best_params)).fit(
        tr["X"].to_numpy(), tr["y"]["churn"]
    )


def evaluate(
    data: dict, trials: int, seed: int, max_epochs: int, patience: int
) -> dict[str, float]:
    """Tune every model on train/validation, score the test part once."""
    tr, va, te = data["train"], data["validation"], data["test"]
    study = create_study(f"bench-{time.time_ns()}", storage=None, seed=seed)
    study.optimize(
        make_objective(
            tr["X"], tr["y"], va["X"], va["y"], seed=seed, max_epochs=max_epochs, patience=patience
        ),
        n_trials=trials,
    )
    net = BPNetworkClassifier(
        **params_from_trial(study.best_trial.params),
        max_epochs=max_epochs,
        patience=patience,
        random_state=seed,
    )
    with torch_threads():
        net.fit(tr["X"], tr["y"], eval_set=(va["X"], va["y"]))
    y = te["y"]["churn"]
    result = {NETWORK: roc_auc_score(y, net.predict_churn_proba(te["X"]))}
    for kind in PEERS:
        model = _tune_peer(kind, tr, va, trials, seed)
        result[kind] = roc_auc_score(y, model.predict_proba(te["X"].to_numpy())[:, 1])
    fuzzy = peers.fuzzy_churn_peer(seed).fit(tr["scores"], tr["y"]["churn"])
    result["fuzzy_baseline"] = roc_auc_score(y, fuzzy.predict_proba(te["scores"])[:, 1])
    if te["expected_purchases"] is not None:
        result["bgnbd_expected_purchases"] = roc_auc_score(y, -te["expected_purchases"])
    result[AGREEMENT] = float((net.predict(te["X"]) == te["y"]["segment"].to_numpy()).mean())
    return result


def _line(values: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in values.items())


def telco(trials: int, seed: int, max_epochs: int, patience: int) -> pd.DataFrame:
    cfg = load_config(ROOT / "configs/telco.yaml")
    table = load_training_data(cfg, seed=seed).customers.table
    ids, churn = table.index.to_numpy(dtype=object), table["churn"].to_numpy()
    rows = []
    for fold, (train_idx, test_idx) in enumerate(
        StratifiedKFold(5, shuffle=True, random_state=seed).split(ids, churn)
    ):
        start = time.perf_counter()
        fit_ids, val_ids = train_test_split(
            ids[train_idx], test_size=0.2, random_state=seed, stratify=churn[train_idx]
        )
        data = _prepare(
            cfg, table, fit_ids, {"train": fit_ids, "validation": val_ids, "test": ids[test_idx]}
        )
        rows.append(evaluate(data, trials, seed, max_epochs, patience))
        print(
            f"  telco fold {fold} ({len(fit_ids)}/{len(val_ids)}/{len(test_idx)} fit/val/test, "
            f"{time.perf_counter() - start:.0f} s): {_line(rows[-1])}",
            flush=True,
        )
    return pd.DataFrame(rows)


def cdnow(trials: int, seed: int, max_epochs: int, patience: int) -> pd.DataFrame:
    cfg = load_config(ROOT / "configs/cdnow.yaml")
    td = load_training_data(cfg, seed=seed)
    split = td.split
    start = time.perf_counter()
    data = _prepare(
        cfg,
        td.customers.table,
        split.train.to_numpy(dtype=object),
        {"train": split.train, "validation": split.validation, "test": split.test},
    )
    result = pd.DataFrame([evaluate(data, trials, seed, max_epochs, patience)])
    print(
        f"  cdnow ({len(split.train)}/{len(split.validation)}/{len(split.test)} train/val/test, "
        f"{time.perf_counter() - start:.0f} s): {_line(result.iloc[0].to_dict())}",
        flush=True,
    )
    return result


def _goals(name: str, aucs: pd.Series, agreement: float) -> list[str]:
    best = aucs[list(PEERS)].idxmax()
    gap = aucs[NETWORK] - aucs[best]
    auc_goal = (
        f"{name}: network {aucs[NETWORK]:.4f} vs best peer {best} {aucs[best]:.4f}: "
        f"{'+' if gap >= 0 else '−'}{abs(gap):.4f} → {'MET' if gap >= 0 else 'NOT MET'}"
    )
    agreement_goal = (
        f"{name}: segment agreement {agreement:.2%} (goal ≥ {AGREEMENT_GOAL:.0%}) → "
        f"{'MET' if agreement >= AGREEMENT_GOAL else 'NOT MET'}"
    )
    return [auc_goal, agreement_goal]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--trials", type=int, default=15, help="Optuna trials per model (the same budget for each)"
    )
    parser.add_argument(
        "--max-epochs",
        type=int,
        default=150,
        help="epoch cap per network fit (as `valuecube train`)",
    )
    parser.add_argument(
        "--patience", type=int, default=15, help="early-stopping patience (as `valuecube train`)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--datasets", nargs="+", choices=("telco", "cdnow"), default=["telco", "cdnow"]
    )
    args = parser.parse_args()
    torch.set_num_threads(1)  # small networks: one thread is faster than contended ones
    pd.set_option("display.width", 160)
    print(
        f"trials per model {args.trials} · max_epochs {args.max_epochs} · "
        f"patience {args.patience} · "
        f"seed {args.seed} · torch threads {torch.get_num_threads()}",
        flush=True,
    )
    start = time.perf_counter()
    goals = []
    if "telco" in args.datasets:
        t = telco(args.trials, args.seed, args.max_epochs, args.patience)
        print(
            f"\nTelco, 5-fold stratified CV, churn ROC-AUC per fold "
            f"({args.trials} trials per model per fold):"
        )
        print(t.rename_axis("fold").round(4).to_string())
        summary = pd.DataFrame({"mean": t.mean(), "std": t.std()})
        print("\nTelco mean ± std over the 5 test folds:")
        print(summary.round(4).to_string())
        goals += _goals("Telco (CV mean)", t.mean(), t[AGREEMENT].mean())
        wins = int((t[NETWORK] >= t[list(PEERS)].max(axis=1)).sum())
        goals.append(
            f"Telco: network ≥ best peer on {wins} of {len(t)} folds; "
            f"agreement per fold min {t[AGREEMENT].min():.2%}"
        )
    if "cdnow" in args.datasets:
        c = cdnow(args.trials, args.seed, args.max_epochs, args.patience)
        print(
            f"\nCDNOW, holdout churn ROC-AUC on the test customers "
            f"({args.trials} trials per tuned model):"
        )
        print(c.T.rename(columns={0: "value"}).round(4).to_string())
        goals += _goals("CDNOW (test)", c.iloc[0], float(c[AGREEMENT].iloc[0]))
    print("\nGoals:")
    print("\n".join(f"  {g}" for g in goals))
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

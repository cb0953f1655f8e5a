"""Forecast quality on CDNOW: the network against its baselines and peers, per target.

The protocol of ``train`` (docs/forecasting.md), without MLflow: the value
cube is fitted on the training customers as of the config's ``as_of``
(1997-09-30) and frozen; the network is trained on rolling monthly
snapshots of the training customers (labels from the following 273 days),
tuned with Optuna on the validation customers at ``as_of`` (never on the
test customers), refitted with the best trial and scored once on the test
customers at ``as_of``. Peers are fitted on the same training examples and
inputs. Prints one table per target, the issue's goals and the wall time
of each step.

    .venv/bin/python benchmarks/bench_forecast_quality.py [--trials 4] [--max-epochs 80]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import optuna
import pandas as pd

from valuecube.features.config import load_config
from valuecube.features.snapshots import forecast_horizon_days
from valuecube.models.design import NetworkDesign
from valuecube.models.network import BPNetworkClassifier
from valuecube.models.value_cube import ValueCube
from valuecube.training.data import load_training_data
from valuecube.training.forecast_train import forecast_parts, forecast_tables
from valuecube.training.peers import NETWORK
from valuecube.training.train import FORECAST_NETWORK
from valuecube.training.tuning import create_study, make_objective, params_from_trial, torch_threads

ROOT = Path(__file__).resolve().parent.parent
GOALS = {
    ("segment_next", "accuracy"): 0.80,
    ("future_spend", "spearman"): 0.50,
    ("future_spend", "gini"): 0.76,
    ("churn", "roc_auc"): 0.780,
}
PERSISTENCE_MARGIN = 0.15


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--max-epochs", type=int, default=80)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--snapshot-months", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    timings = {}
    started = time.perf_counter()
    cfg = load_config(ROOT / "configs" / "cdnow.yaml")
    data = load_training_data(cfg, seed=args.seed)
    table = data.customers.table
    cube = ValueCube(cfg).fit(table.loc[data.split.train])
    design = NetworkDesign(cube, horizon_days=forecast_horizon_days(cfg)).fit(
        table.loc[data.split.train]
    )
    parts = forecast_parts(data, cube, design, snapshot_months=args.snapshot_months)
    timings["data and snapshots"] = time.perf_counter() - started

    tr, va = parts["train"], parts["validation"]
    started = time.perf_counter()
    study = create_study(f"bench-forecast-{time.time_ns()}", storage=None, seed=args.seed)
    objective = make_objective(
        tr["X"],
        tr["y"],
        va["X"],
        va["y"],
        seed=args.seed,
        max_epochs=args.max_epochs,
        patience=args.patience,
        fixed=FORECAST_NETWORK,
    )
    study.optimize(objective, n_trials=args.trials)
    timings[f"tuning ({args.trials} trials)"] = time.perf_counter() - started

    started = time.perf_counter()
    best = {**params_from_trial(study.best_trial.params), **FORECAST_NETWORK}
    network = BPNetworkClassifier(
        **best, max_epochs=args.max_epochs, patience=args.patience, random_state=args.seed
    )
    with torch_threads():
        network.fit(tr["X"], tr["y"], eval_set=(va["X"], va["y"]))
    timings["final fit"] = time.perf_counter() - started

    started = time.perf_counter()
    tables, _ = forecast_tables(network, parts, args.seed)
    timings["peers and evaluation"] = time.perf_counter() - started

    print(
        f"\nCDNOW forecasts, horizon {forecast_horizon_days(cfg)} days, evaluated at "
        f"{data.customers.as_of.date()} on {len(parts['test']['X']):,} test customers; "
        f"trained on {len(tr['X']):,} examples ({len(tr['dates'])} snapshots "
        f"{tr['dates'][0].date()}..{tr['dates'][-1].date()}) of "
        f"{len(data.split.train):,} customers"
    )
    print(f"best trial: {study.best_trial.params}; epochs run {network.n_epochs_}")
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 120):
        for target, target_table in tables.items():
            print(f"\n{target}\n{target_table}")
    print("\ngoals (network):")
    for (target, metric), goal in GOALS.items():
        value = tables[target].loc[NETWORK, metric]
        verdict = "met" if value >= goal else f"MISSED by {goal - value:.3f}"
        print(f"  {target} {metric} {value:.3f} >= {goal:.3f}: {verdict}")
    seg = tables["segment_next"]["accuracy"]
    margin = seg[NETWORK] - seg["persistence"]
    print(
        f"  segment_next accuracy - persistence {margin:+.3f} >= +{PERSISTENCE_MARGIN:.2f}: "
        f"{'met' if margin >= PERSISTENCE_MARGIN else 'MISSED'}; vs LightGBM "
        f"{seg[NETWORK] - seg['lightgbm']:+.3f}"
    )
    print("\nwall time (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))


if __name__ == "__main__":
    main()

"""The ``train`` job: tune the BP network (Optuna), compare it with peers, log and register it.

One parent MLflow run per call, holding:

* one nested run per Optuna trial (parameters, per-epoch validation metrics);
* the final network's run (best trial retrained; test metrics, ROC and
  confusion-matrix plots, the packaged pyfunc model, registered with the
  alias ``challenger``);
* sibling runs for the peers (logistic regression, LightGBM, the fuzzy
  baseline's churn score), trained on the same split and inputs;
* the config file, the Optuna study summary and the comparison table.

For a transaction log the network forecasts (docs/forecasting.md): it is
trained on rolling as-of snapshots of the training customers and predicts,
for a horizon after the as-of date, the segment then, the spend and churn;
each target gets a table of the network against its baselines and peers on
the test customers at the config's ``as_of`` (:mod:`training.forecast_train`),
logged as metrics ``test_<target>_<metric>_<model>`` of the parent run.
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from mlflow.models import ModelSignature, infer_signature
from optuna_integration.mlflow import MLflowCallback

import mlflow
from valuecube.features.config import DatasetConfig, load_config, with_posterior
from valuecube.features.snapshots import forecast_horizon_days
from valuecube.models.design import NetworkDesign
from valuecube.models.network import BPNetworkClassifier
from valuecube.models.packaged import ChurnSegmentModel, ValueCubePyfunc, input_schema
from valuecube.models.reasons import reasons_params_schema
from valuecube.models.value_cube import ValueCube
from valuecube.training import guards, lineage, peers, studies
from valuecube.training.data import TrainingData, load_training_data
from valuecube.training.evaluate import (
    comparison_table,
    plot_confusion,
    plot_roc,
    segment_agreement,
)
from valuecube.training.evaluation_split import cover_segments, with_evaluation_split
from valuecube.training.forecast_metrics import (
    CHURN_METRICS,
    segment_table,
    table_metrics,
)
from valuecube.training.forecast_train import forecast_parts, forecast_tables, is_forecast
from valuecube.training.lifetime_inputs import COMPARISON_EPOCHS, LifetimeChoice, choose_design
from valuecube.training.model_code import model_code as _model_code
from valuecube.training.model_code import requirements as _requirements
from valuecube.training.peers import FUZZY, NETWORK, lightgbm_peer
from valuecube.training.promotion import bootstrap_intervals
from valuecube.training.registry import CHALLENGER, register_challenger
from valuecube.training.tracking import (
    QuietLostServer,
    configure_tracking,
    ensure_experiment,
    server_errors,
)
from valuecube.training.tuning import (
    OBJECTIVE,
    make_objective,
    params_from_trial,
    torch_threads,
)

FORECAST_NETWORK = {"class_weight": None, "spend_loss": "tweedie"}
"""Fixed settings of the forecasting network (docs/forecasting.md): the segment after the
horizon is scored by accuracy, so its loss is not re-weighted towards rare segments."""


@dataclass(frozen=True)
class TrainResult:
    """What a train run produced."""

    model: ChurnSegmentModel
    comparison: pd.DataFrame
    agreement: dict[str, float]
    run_id: str
    model_uri: str
    registered_name: str
    version: str
    study: optuna.Study
    tables: dict[str, pd.DataFrame]
    """One table per target on the test customers: ``segment_next``/``segment``, ``churn``
    and, for logs, ``future_spend`` (models as rows)."""
    lifetime: LifetimeChoice | None = None
    """Whether the network has the survival outputs as inputs, and why (customer tables)."""


@dataclass(frozen=True)
class Prepared:
    """The data a training run (or a tuning worker) works on, fixed by the dataset seed."""

    data: TrainingData
    cube: ValueCube
    design: NetworkDesign
    parts: dict[str, dict[str, Any]]
    forecast: bool
    horizon: int | None
    fixed: dict[str, Any]
    lifetime: LifetimeChoice | None = None


def prepare(
    cfg: DatasetConfig,
    input_path: str | Path | None,
    *,
    seed: int,
    snapshot_months: int | None = None,
    comparison_epochs: int = COMPARISON_EPOCHS,
) -> Prepared:
    """Split the customers, fit the cube and the design, build the network's parts.

    ``comparison_epochs``: epoch cap of the ``network.lifetime_inputs: auto`` fits.
    """
    data = with_evaluation_split(load_training_data(cfg, input_path, seed=seed), seed=seed)
    table = data.customers.table
    cube = ValueCube(cfg).fit(table.loc[data.split.train])
    data = cover_segments(data, cube)  # a segment seen only in validation moves to training
    forecast = is_forecast(data)
    horizon = forecast_horizon_days(cfg) if forecast else None
    design = NetworkDesign(cube, horizon_days=horizon).fit(table.loc[data.split.train])
    lifetime = None
    if forecast:
        parts = forecast_parts(data, cube, design, snapshot_months=snapshot_months)
    else:
        design, parts, lifetime = choose_design(
            design,
            table.loc[data.split.train],
            lambda d: {part: _part(data, cube, d, ids) for part, ids in vars(data.split).items()},
            cfg.network.lifetime_inputs,
            seed=seed,
            max_epochs=comparison_epochs,
        )
    fixed = FORECAST_NETWORK if forecast else {}
    return Prepared(data, cube, design, parts, forecast, horizon, fixed, lifetime)


@server_errors
def run_train(
    config: str | Path | DatasetConfig,
    input_path: str | Path | None = None,
    *,
    trials: int = 10,
    experiment: str | None = None,
    register_as: str | None = None,
    seed: int = 0,
    storage: str | None = None,
    max_epochs: int = 150,
    patience: int = 15,
    tracking_uri: str | None = None,
    show_progress: bool = False,
    snapshot_months: int | None = None,
    guard: guards.GuardPolicy | None = None,
    study_name: str | None = None,
    worker: int = 0,
    posterior: str | None = None,
) -> TrainResult:
    """Tune, train, compare, log and register; see the module docstring.

    ``posterior`` (``"advi"``/``"mcmc"``) overrides the config's ``bgnbd.method``.

    ``snapshot_months`` overrides the config's months between training
    snapshots (transaction logs).
    """
    configure_tracking(tracking_uri, create=True)
    config_path = None if isinstance(config, DatasetConfig) else Path(config)
    cfg = config if isinstance(config, DatasetConfig) else load_config(config)
    cfg = with_posterior(cfg, posterior)
    name = register_as or f"valuecube-{cfg.name}"
    ensure_experiment(experiment or f"valuecube-{cfg.name}")
    prepared = prepare(
        cfg,
        input_path,
        seed=seed,
        snapshot_months=snapshot_months,
        comparison_epochs=min(max_epochs, COMPARISON_EPOCHS),
    )
    data, cube, design, parts = prepared.data, prepared.cube, prepared.design, prepared.parts
    forecast, horizon, fixed = prepared.forecast, prepared.horizon, prepared.fixed
    split, table = data.split, data.customers.table

    with mlflow.start_run(run_name=f"train-{cfg.name}") as parent:
        mlflow.log_params(
            {
                "dataset": cfg.name,
                "input": str(data.source),
                "seed": seed,
                "trials": trials,
                "max_epochs": max_epochs,
                "n_train": len(split.train),
                "n_validation": len(split.validation),
                "n_test": len(split.test),
                "n_inputs": len(design.columns_),
                "n_train_examples": len(parts["train"]["X"]),
                **(
                    {
                        "horizon_days": horizon,
                        "snapshots": ",".join(str(d.date()) for d in parts["train"]["dates"]),
                        # examples whose factors (now or after the horizon) were not computable
                        "n_examples_dropped": sum(p["dropped"] for p in parts.values()),
                    }
                    if forecast
                    else {}
                ),
            }
        )
        if prepared.lifetime is not None:
            mlflow.log_params(prepared.lifetime.params())
            mlflow.log_metrics(prepared.lifetime.metrics())
        if config_path is not None:
            mlflow.log_artifact(str(config_path), artifact_path="config")

        study = _tune(
            cfg,
            parts,
            trials=trials,
            storage=storage,
            seed=seed,
            max_epochs=max_epochs,
            patience=patience,
            show_progress=show_progress,
            fixed=fixed,
            study_name=study_name,
            worker=worker,
        )
        best = {**params_from_trial(study.best_trial.params), **fixed}

        with mlflow.start_run(run_name=NETWORK, nested=True) as net_run:
            mlflow.log_params({k: str(v) for k, v in best.items()})
            lineage_tags = lineage.log_lineage(data)
            network = BPNetworkClassifier(
                **best, max_epochs=max_epochs, patience=patience, random_state=seed
            )
            X, y = parts["train"]["X"], parts["train"]["y"]
            with torch_threads():
                network.fit(
                    X,
                    y,
                    eval_set=(parts["validation"]["X"], parts["validation"]["y"]),
                    on_epoch=lambda epoch, m: mlflow.log_metrics(m, step=epoch),
                )
            test = parts["test"]
            if forecast:
                tables, predictions = forecast_tables(network, parts, seed)
                scores = predictions["churn"]
            else:
                scores = {NETWORK: network.predict_churn_proba(test["X"])}
            segment_predicted = network.predict(test["X"])
            agreement = segment_agreement(test["y"]["segment"].to_numpy(), segment_predicted)
            net_metrics = {
                f"test_churn_{k}": v
                for k, v in comparison_table(test["y"]["churn"], scores).loc[NETWORK].items()
            }
            mlflow.log_metrics(
                {
                    **net_metrics,
                    **{f"test_{k}": v for k, v in agreement.items()},
                    "best_segment_epoch": network.best_segment_epoch_,
                    "best_churn_epoch": network.best_churn_epoch_,
                }
            )
            model = ChurnSegmentModel(
                cfg,
                cube,
                design,
                network,
                ChurnSegmentModel.reference_distribution(cube, table.loc[split.train]),
                metadata={
                    "dataset": cfg.name,
                    "input": str(data.source),
                    "seed": seed,
                    "run_id": net_run.info.run_id,
                    "customer_columns": []
                    if cfg.input.shape == "customer_table"
                    else list(data.rows.columns),
                    "metrics": {**net_metrics, **{f"test_{k}": v for k, v in agreement.items()}},
                    "horizon_days": horizon,
                },
            )
            decision = guards.check_network(
                parts, scores[NETWORK], agreement["segment_accuracy"], seed=seed, policy=guard
            )
            info = _log_model(model, data)
            version_tags = {
                "dataset": cfg.name,
                "input": str(data.source),
                "seed": str(seed),
                **{k: f"{v:.6f}" for k, v in net_metrics.items()},
                **decision.tags,
                **lineage_tags,
            }

        if forecast:
            _forecast_peer_runs(tables, seed)
        else:
            scores.update(_peer_runs(parts, seed))
        comparison = comparison_table(test["y"]["churn"], scores)
        if not forecast:
            tables = {
                "segment": _segment_now_table(parts, segment_predicted, seed),
                "churn": comparison[list(CHURN_METRICS)],
            }
        mlflow.log_metrics(table_metrics(tables))
        intervals = bootstrap_intervals(test["y"]["churn"].to_numpy(), scores, seed=seed)
        card = lineage.model_card(
            data=data,
            tags={**lineage_tags, **decision.tags},
            intervals=intervals,
            agreement=agreement,
            guard=decision.table,
        )
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            comparison.to_csv(tmp / "comparison.csv")
            for target, target_table in tables.items():
                target_table.to_csv(tmp / f"{target}.csv")
            (tmp / "segment_agreement.json").write_text(json.dumps(agreement, indent=2))
            plot_roc(test["y"]["churn"], scores, tmp / "roc.png")
            plot_confusion(
                test["y"]["segment"].to_numpy(),
                segment_predicted,
                tmp / "confusion_matrix.png",
                "Segment after the horizon on test: actual (rows) × network (columns)"
                if forecast
                else "Segments on test: fuzzy (rows) × network (columns)",
            )
            mlflow.log_artifacts(str(tmp), artifact_path="comparison")
            client = mlflow.MlflowClient()
            for f in ("roc.png", "confusion_matrix.png"):
                client.log_artifact(net_run.info.run_id, str(tmp / f), artifact_path="plots")
        mlflow.log_metrics(
            {f"test_churn_roc_auc_{m}": comparison.loc[m, "roc_auc"] for m in comparison.index}
        )
        # Registered last, once every run and artifact is logged: a tracking server that dies
        # before this leaves no version behind (a version never lacks its card or comparison).
        version = register_challenger(name, info.model_uri, tags=version_tags)
        mlflow.MlflowClient().update_model_version(name, version, description=card)

    return TrainResult(
        model,
        comparison,
        agreement,
        parent.info.run_id,
        f"models:/{name}@{CHALLENGER}",
        name,
        version,
        study,
        tables,
        prepared.lifetime,
    )


def _part(
    data: TrainingData, cube: ValueCube, design: NetworkDesign, ids: pd.Index
) -> dict[str, Any]:
    customers = data.customers.table.loc[ids]
    scores = cube.fuzzy_.transform(cube.factors(customers))
    return {
        "X": design.transform(customers),
        "y": pd.DataFrame(
            {
                "segment": cube.fuzzy_.predict(cube.factors(customers)),
                "churn": customers["churn"].to_numpy(),
            },
            index=ids,
        ),
        "scores": scores,
    }


def _tune(
    cfg: DatasetConfig,
    parts: dict,
    *,
    trials: int,
    storage: str | None,
    seed: int,
    max_epochs: int,
    patience: int,
    show_progress: bool,
    fixed: dict[str, Any],
    study_name: str | None = None,
    worker: int = 0,
) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trial_log = logging.getLogger("optuna.study._optimize")
    if not any(isinstance(f, QuietLostServer) for f in trial_log.filters):
        trial_log.addFilter(QuietLostServer())
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # optuna-integration 4.9 deprecates MLflowCallback (removal in 6.0, pinned below it) ahead of
    # a move to OptunaHub that has no published successor yet; the warning is not the user's.
    warnings.filterwarnings(
        "ignore", message="MLflowCallback has been deprecated", category=FutureWarning
    )
    name = study_name or studies.new_study_name(cfg.name)
    study = studies.open_study(
        name, storage=storage, worker=worker, seed=seed, shared=study_name is not None
    )
    mlflow.set_tag("optuna_study", name)
    callback = MLflowCallback(
        metric_name=OBJECTIVE, create_experiment=False, mlflow_kwargs={"nested": True}
    )
    objective = callback.track_in_mlflow()(
        make_objective(
            parts["train"]["X"],
            parts["train"]["y"],
            parts["validation"]["X"],
            parts["validation"]["y"],
            seed=seed,
            max_epochs=max_epochs,
            patience=patience,
            fixed=fixed,
        )
    )
    if trials:  # 0: retrain the best trial of an existing study (--from-study)
        study.optimize(
            objective, n_trials=trials, callbacks=[callback], show_progress_bar=show_progress
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "optuna_trials.csv"
        study.trials_dataframe().to_csv(path, index=False)
        mlflow.log_artifact(str(path), artifact_path="optuna")
    states = pd.Series([t.state.name for t in study.trials]).value_counts().to_dict()
    mlflow.log_dict(
        {
            "best_params": study.best_trial.params,
            "best_value": study.best_value,
            "trial_states": states,
        },
        "optuna/summary.json",
    )
    mlflow.log_metric(f"best_{OBJECTIVE}", study.best_value)
    return study


def _log_model(model: ChurnSegmentModel, data: TrainingData) -> mlflow.models.model.ModelInfo:
    example = lineage.masked_example(data)  # no real customer's row in the logged model
    # Inputs as columns of any type: the model's own validation takes what pd.read_csv gives
    signature = ModelSignature(
        inputs=input_schema(list(example.columns)),
        outputs=infer_signature(example, model.predict(example)).outputs,
        params=reasons_params_schema(),  # pyfunc predict(params={"reasons": N})
    )
    with _model_code() as code_paths:
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=ValueCubePyfunc(model),
            code_paths=code_paths,
            signature=signature,
            input_example=example,
            pip_requirements=_requirements(),
        )


def _peer_runs(parts: dict, seed: int) -> dict[str, np.ndarray]:
    train, test = parts["train"], parts["test"]
    fitted = peers.fit_peers(train["X"].to_numpy(), train["y"]["churn"].to_numpy(), seed=seed)
    fitted[FUZZY] = peers.fuzzy_churn_peer(seed).fit(
        train["scores"], train["y"]["churn"].to_numpy()
    )
    out = {}
    for peer_name, estimator in fitted.items():
        X_test = test["scores"] if peer_name == FUZZY else test["X"].to_numpy()
        out[peer_name] = estimator.predict_proba(X_test)[:, 1]
        with mlflow.start_run(run_name=peer_name, nested=True):
            mlflow.log_params({"peer": peer_name, "seed": seed})
            metrics = comparison_table(test["y"]["churn"], {peer_name: out[peer_name]}).loc[
                peer_name
            ]
            mlflow.log_metrics({f"test_churn_{k}": v for k, v in metrics.items()})
    return out


def _forecast_peer_runs(tables: dict[str, pd.DataFrame], seed: int) -> None:
    """One sibling run per baseline or peer, holding its test metrics of every target it has."""
    names = [m for table in tables.values() for m in table.index if m != NETWORK]
    for peer_name in dict.fromkeys(names):
        with mlflow.start_run(run_name=peer_name, nested=True):
            mlflow.log_params({"peer": peer_name, "seed": seed})
            mlflow.log_metrics(
                {
                    f"test_{target}_{metric}": float(value)
                    for target, table in tables.items()
                    if peer_name in table.index
                    for metric, value in table.loc[peer_name].items()
                    if np.isfinite(value)
                }
            )


def _segment_now_table(parts: dict, network_segment: np.ndarray, seed: int) -> pd.DataFrame:
    """The rule's segment now on test: the network against LightGBM on the same inputs."""
    train, test = parts["train"], parts["test"]
    lightgbm = lightgbm_peer(seed=seed).fit(train["X"].to_numpy(), train["y"]["segment"].to_numpy())
    return segment_table(
        test["y"]["segment"].to_numpy(),
        {NETWORK: network_segment, "lightgbm": lightgbm.predict(test["X"].to_numpy())},
    )

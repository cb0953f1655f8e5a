"""The ``train`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from valuecube.commands import train_options as opt
from valuecube.commands.segment import btyd_parameters
from valuecube.console import ConfigOption, console, fail, render_table


def train(
    config: ConfigOption,
    input: Annotated[
        Path | None,
        typer.Option("--input", "-i", help="Input file (default: the config's 'data')."),
    ] = None,
    trials: Annotated[
        int, typer.Option(help="Optuna trials (TPE sampler, median pruning).", min=1)
    ] = 10,
    experiment: Annotated[
        str | None, typer.Option(help="MLflow experiment (default: valuecube-<dataset>).")
    ] = None,
    register_as: Annotated[
        str | None, typer.Option(help="Registered model name (default: valuecube-<dataset>).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for the split, the sampler and the network.")] = 0,
    storage: Annotated[
        str | None,
        typer.Option(
            help="Optuna RDB storage URL (e.g. sqlite:///mlflow/optuna.db) to share a study; "
            "default in-memory."
        ),
    ] = None,
    max_epochs: Annotated[
        int,
        typer.Option(help="Epoch cap per network fit (early stopping usually ends sooner).", min=1),
    ] = 150,
    snapshot_months: Annotated[
        int | None,
        typer.Option(
            help="Transaction logs: months between training snapshots (default: the config's).",
            min=1,
        ),
    ] = None,
    allow_worse: opt.AllowWorse = None,
    brier_tolerance: opt.BrierTolerance = 0.01,
    auc_tolerance: opt.AucTolerance = 0.02,
    segment_accuracy_floor: opt.SegmentFloor = 0.5,
    study: opt.Study = None,
    worker: opt.Worker = 0,
    tune_only: opt.TuneOnly = False,
    from_study: opt.FromStudy = None,
    posterior: opt.PosteriorOption = None,
) -> None:
    """Tune and train the BP network, compare it with peers, log to MLflow, register a 'challenger'.

    Tracking goes to MLFLOW_TRACKING_URI, or to the local store under mlflow/ when unset.
    Ends with one table per target on the test customers: for a customer table the segment
    now (network vs LightGBM, against the rule) and churn (network, logistic regression,
    LightGBM, the fuzzy baseline); for a transaction log the forecasts over the horizon
    (docs/forecasting.md): segment after the horizon (vs persistence and LightGBM), future
    spend (vs BG/NBD x Gamma-Gamma, the PV score, LightGBM-Tweedie) and churn (vs logistic
    regression, LightGBM, BG/NBD, the fuzzy baseline).

    Example: valuecube train -c configs/telco.yaml --trials 20
    """
    from valuecube.features.config import ConfigError
    from valuecube.features.inputs import InputError
    from valuecube.training.guards import GuardRefused
    from valuecube.training.tracking import TrackingError
    from valuecube.training.train import run_train

    if from_study:
        from valuecube.training.studies import finished_study

        try:
            finished_study(from_study, storage)
        except ValueError as exc:
            fail(str(exc))
        study, trials = from_study, 0
    try:
        if tune_only:
            kw = dict(study=study, storage=storage, worker=worker, trials=trials, seed=seed)
            return opt.tune_only(config, input, experiment=experiment, max_epochs=max_epochs, **kw)
        result = run_train(
            config,
            input,
            trials=trials,
            experiment=experiment,
            register_as=register_as,
            seed=seed,
            storage=storage,
            max_epochs=max_epochs,
            show_progress=console.is_terminal,
            snapshot_months=snapshot_months,
            guard=opt.guard_policy(
                allow_worse, brier_tolerance, auc_tolerance, segment_accuracy_floor
            ),
            study_name=study,
            worker=worker,
            posterior=opt.posterior_method(posterior),
        )
    except GuardRefused as exc:
        opt.refused(exc)
    except (ConfigError, InputError, TrackingError, ValueError) as exc:
        fail(str(exc))
    horizon = result.model.metadata.get("horizon_days")
    within = f" within {horizon} days" if horizon else ""
    titles = {
        "segment": "segment now (the rule's) on the test split",
        "segment_next": f"segment after {horizon} days on the test customers",
        "future_spend": f"spend{within} on the test customers",
        "churn": f"churn{within} on the test split",
    }
    for target, table in result.tables.items():
        render_table(table, titles[target])
    if result.lifetime is not None:
        console.print(result.lifetime.line(), markup=False, soft_wrap=True)
    btyd = btyd_parameters(result.model.cube)
    if btyd:
        console.print(btyd, markup=False, soft_wrap=True)
    console.print(
        f"registered {result.registered_name} version {result.version} as {result.model_uri}"
    )

"""The ``train`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from valuecube.commands import train_options as opt
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
            help="Optuna RDB storage URL (e.g. sqlite:///mlflow/optuna.db) to share a study; default in-memory."
        ),
    ] = None,
    max_epochs: Annotated[
        int,
        typer.Option(help="Epoch cap per network fit (early stopping usually ends sooner).", min=1),
    ] = 150,
    allow_worse: opt.AllowWorse = None,
    brier_tolerance: opt.BrierTolerance = 0.01,
    auc_tolerance: opt.AucTolerance = 0.02,
    segment_accuracy_floor: opt.SegmentFloor = 0.5,
    study: opt.Study = None,
    worker: opt.Worker = 0,
    tune_only: opt.TuneOnly = False,
    from_study: opt.FromStudy = None,
) -> None:
    """Tune and train the BP network, compare it with peers, log to MLflow, register it as 'challenger'.

    Tracking goes to MLFLOW_TRACKING_URI, or to the local store under mlflow/ when unset.
    Ends with a table of test-split churn metrics for the network, logistic regression,
    LightGBM and the fuzzy baseline, and the network's agreement with the fuzzy segments.

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
            guard=opt.guard_policy(
                allow_worse, brier_tolerance, auc_tolerance, segment_accuracy_floor
            ),
            study_name=study,
            worker=worker,
        )
    except GuardRefused as exc:
        opt.refused(exc)
    except (ConfigError, InputError, TrackingError, ValueError) as exc:
        fail(str(exc))
    render_table(result.comparison, "churn on the test split")
    agreement = " · ".join(
        f"{k.removeprefix('segment_')} {v:.3f}" for k, v in result.agreement.items()
    )
    console.print(f"network vs fuzzy segments on test: {agreement}")
    console.print(
        f"registered {result.registered_name} version {result.version} as {result.model_uri}"
    )

"""The ``train`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
) -> None:
    """Tune and train the BP network, compare it with peers, log to MLflow, register it as 'challenger'.

    Tracking goes to MLFLOW_TRACKING_URI, or to the local store under mlflow/ when unset.
    Ends with a table of test-split churn metrics for the network, logistic regression,
    LightGBM and the fuzzy baseline, and the network's agreement with the fuzzy segments.

    Example: valuecube train -c configs/telco.yaml --trials 20
    """
    from valuecube.features.config import ConfigError
    from valuecube.features.inputs import InputError
    from valuecube.training.tracking import TrackingError
    from valuecube.training.train import run_train

    try:
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
        )
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

"""The ``monitor`` command: realised quality of a model once the churn labels are known."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from valuecube.console import console, fail, render_table


def monitor(
    model: Annotated[
        str,
        typer.Option("--model", "-m", help="Model URI, e.g. models:/valuecube-telco@champion."),
    ],
    input: Annotated[
        Path,
        typer.Option(
            "--input", "-i", exists=True, dir_okay=False, help="Labelled file: realised churn."
        ),
    ],
    auc_tolerance: Annotated[
        float, typer.Option(help="Retrain when ROC-AUC falls below the promised one by more.")
    ] = 0.03,
    brier_tolerance: Annotated[
        float, typer.Option(help="Retrain when Brier exceeds the promised one by more.")
    ] = 0.02,
    max_ece: Annotated[
        float, typer.Option(help="Retrain when the calibration error exceeds.")
    ] = 0.1,
    experiment: Annotated[
        str, typer.Option(help="MLflow experiment of the monitoring runs.")
    ] = "valuecube-monitoring",
) -> None:
    """Compare a model's realised churn quality on labelled customers with what it promised.

    Scores the labelled file (customers the model trained on are left out), prints
    ROC-AUC, Brier and calibration error against the model's test metrics at training,
    logs a run linked to the model version, and says whether to retrain (exit code 0
    either way; the advice is the last line and the run's 'retrain' tag).

    Example: valuecube monitor -m models:/valuecube-telco@champion -i data/telco_q3_labelled.csv
    """
    from mlflow.exceptions import MlflowException

    from valuecube.features.config import ConfigError
    from valuecube.features.inputs import InputError
    from valuecube.training.monitoring import realised_quality
    from valuecube.training.tracking import TrackingError, configure_tracking

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        uri = configure_tracking()
        report = realised_quality(
            model,
            input,
            auc_tolerance=auc_tolerance,
            brier_tolerance=brier_tolerance,
            max_ece=max_ece,
            experiment=experiment,
        )
    except MlflowException as exc:
        fail(f"cannot load {model} from the MLflow store {uri}: {exc.message}")
    except (TrackingError, ConfigError, InputError, ValueError, OSError) as exc:
        fail(str(exc))
    render_table(report.table, f"{model}: realised vs promised churn quality")
    console.print(
        f"{report.n_customers:,} labelled customers ({report.n_excluded:,} training customers "
        f"left out) · observed churn {report.churn_rate:.3f} · mean predicted "
        f"{report.mean_probability:.3f} · logged as run {report.run_id}"
    )
    console.print(report.advice)


# Options and the hook for `valuecube score` (the score command adds these three parameters and
# calls `after_scoring` once the job has finished; see docs/engineering.md).
MonitorExperiment = Annotated[
    str | None,
    typer.Option(
        "--monitor-experiment",
        help="MLflow experiment for this job's drift and row counts; '' to log nothing.",
    ),
]
DriftThreshold = Annotated[
    float, typer.Option("--drift-threshold", help="PSI above which a factor has drifted.")
]
FailOnDrift = Annotated[
    bool, typer.Option("--fail-on-drift", help="Exit with code 3 when any factor has drifted.")
]


def after_scoring(
    result, input: Path, monitor_experiment: str | None, drift_threshold: float, fail_on_drift: bool
) -> None:
    """Log the finished job to MLflow (unless the experiment is ''); exit 3 on drift if asked.

    The output is complete by then: a store that refuses the run is a warning, not a failure.
    """
    from valuecube.console import err

    drifted = result.drifted_over(drift_threshold)
    if monitor_experiment != "":  # MLflow loads only to log the run
        from mlflow.exceptions import MlflowException

        from valuecube.training.monitoring import MONITOR_EXPERIMENT, log_scoring_run

        experiment = monitor_experiment or MONITOR_EXPERIMENT
        try:
            logged = log_scoring_run(
                result, input_path=input, experiment=experiment, drift_threshold=drift_threshold
            )
        except (MlflowException, OSError) as exc:
            err.print(f"[yellow]warning:[/] monitoring run not logged to {experiment!r}: {exc}")
        else:
            console.print(f"monitoring run {logged.run_id} (drift, row counts) logged")
    if fail_on_drift and drifted:
        fail(f"input drift in {', '.join(drifted)} (PSI > {drift_threshold})", code=3)

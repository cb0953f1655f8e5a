"""The ``monitor`` command: realised quality of a model once the churn labels are known."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
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


LOG_TIMEOUT_S = 300.0
"""How long `valuecube score` waits for the store to take its monitoring run."""

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


class MonitoringProcess:
    """The process that logs a scoring job's monitoring run, started with the job.

    MLflow's imports and its store's set-up take about 1.5 s, longer than
    scoring a few customers. Started when the job starts
    (``python -m valuecube.training.scoring_runs``), they run on another core
    while the job scores; the job's figures are sent on its stdin when the
    job has finished. A process that is never sent a job (the job failed)
    is stopped without logging anything.
    """

    def __init__(self, experiment: str) -> None:
        from valuecube.store import tracking_uri

        self.experiment = experiment
        self.process = subprocess.Popen(
            [sys.executable, "-m", "valuecube.training.scoring_runs", tracking_uri(), experiment],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def log(self, request: dict, timeout: float = LOG_TIMEOUT_S) -> tuple[str | None, str | None]:
        """Send the job's request; ``(run_id, None)`` once logged, else ``(None, why)``."""
        try:
            out, errors = self.process.communicate(json.dumps(request) + "\n", timeout=timeout)
        except subprocess.TimeoutExpired:
            self.close()
            return None, f"the MLflow store did not answer within {timeout:.0f} s"
        answers = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        if self.process.returncode == 0 and answers:
            return answers[-1].get("run_id"), answers[-1].get("error")
        tail = errors.strip().splitlines()[-1:] or [f"exit code {self.process.returncode}"]
        return None, tail[0]

    def close(self) -> None:
        """Stop the process if it is still waiting (nothing is logged)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


@contextlib.contextmanager
def monitoring_process(experiment: str | None) -> Iterator[MonitoringProcess | None]:
    """The job's :class:`MonitoringProcess` while it runs (None when ``experiment`` is '')."""
    from valuecube.training.scoring_runs import MONITOR_EXPERIMENT

    process = MonitoringProcess(experiment or MONITOR_EXPERIMENT) if experiment != "" else None
    try:
        yield process
    finally:
        if process is not None:
            process.close()


def after_scoring(
    result,
    input: Path,
    monitor_experiment: str | None,
    drift_threshold: float,
    fail_on_drift: bool,
    process: MonitoringProcess | None = None,
) -> None:
    """Log the finished job to MLflow (unless the experiment is ''); exit 3 on drift if asked.

    ``process`` is the job's :class:`MonitoringProcess` (one is started here
    when not given). The output is complete by then: a store that refuses
    the run is a warning, not a failure.
    """
    from valuecube.console import err
    from valuecube.training.scoring_runs import MONITOR_EXPERIMENT, scoring_request

    drifted = result.drifted_over(drift_threshold)
    if monitor_experiment != "":
        process = process or MonitoringProcess(monitor_experiment or MONITOR_EXPERIMENT)
        request = scoring_request(result, input_path=input, drift_threshold=drift_threshold)
        run_id, problem = process.log(request)
        if run_id is None:
            err.print(
                f"[yellow]warning:[/] monitoring run not logged to {process.experiment!r}: "
                f"{problem}"
            )
        else:
            console.print(f"monitoring run {run_id} (drift, row counts) logged")
    if fail_on_drift and drifted:
        fail(f"input drift in {', '.join(drifted)} (PSI > {drift_threshold})", code=3)

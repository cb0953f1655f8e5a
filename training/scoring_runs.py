"""A scoring job's monitoring run: its request as plain data, and the process that logs it.

:func:`log_scoring_run` records one scoring job as an MLflow run linked to
the model version (tags ``model_name``, ``model_version``, ``model_run_id``):
the PSI of each tree factor against the training distribution, the number
of customers the PSI was computed on, and the row accounting.

``valuecube score`` does not import MLflow itself: it starts
``python -m valuecube.training.scoring_runs`` (:func:`main`) when its job
starts, so that MLflow's imports and its store's set-up (about 1.5 s, more
than scoring a few customers) run on another core meanwhile, and sends it
the finished job's :func:`scoring_request` on stdin. This module therefore
imports MLflow and pandas only inside the functions that log.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from valuecube.training.sources import relative_source

MONITOR_EXPERIMENT = "valuecube-monitoring"
"""The MLflow experiment of the monitoring runs."""
DRIFT_THRESHOLD = 0.2
"""PSI above this is a significant shift (a common rule of thumb)."""


@dataclass(frozen=True)
class DriftLog:
    """What :func:`log_scoring_run` recorded."""

    run_id: str
    drifted: list[str]
    max_psi: float

    @property
    def has_drift(self) -> bool:
        """At least one factor's PSI is above the threshold."""
        return bool(self.drifted)


def model_tags(name: str, version: str) -> dict[str, str]:
    """The tags linking a run to a model version (its training run's id when registered)."""
    from mlflow.exceptions import MlflowException

    from mlflow import MlflowClient

    tags = {"model_name": name, "model_version": str(version)}
    try:
        tags["model_run_id"] = str(MlflowClient().get_model_version(name, version).run_id)
    except MlflowException:  # a model outside the registry (e.g. a runs:/ URI)
        pass
    return tags


def log_scoring_run(
    result: Any,
    *,
    input_path: str | Path | None = None,
    experiment: str = MONITOR_EXPERIMENT,
    drift_threshold: float = DRIFT_THRESHOLD,
) -> DriftLog:
    """Log a finished scoring job (a ``serving.batch.ScoreResult``) as a monitoring run.

    Metrics: ``psi_<factor>`` per tree factor, ``psi_max``, ``drift_sample_size``
    (customers the PSI was computed on), ``drift_judged`` (1 when they were
    enough to judge drift; otherwise no factor counts as drifted),
    ``drifted_factors``, and the row
    accounting (``rows_read``, ``rows_rejected``, ``customers_scored``,
    ``customers_unscorable``, ``customers_excluded``), ``seconds``.
    """
    import pandas as pd

    import mlflow
    from valuecube.training.tracking import ensure_experiment

    drift = pd.Series(result.drift, dtype=float)
    judged = bool(getattr(result, "drift_judged", True))  # too few customers: PSI is noise
    drifted = sorted(drift.index[drift > drift_threshold]) if judged else []
    ensure_experiment(experiment)
    tags = {**model_tags(result.model_name, result.model_version), "job": "score"}
    with mlflow.start_run(run_name=f"score-{result.model_name}-v{result.model_version}") as run:
        mlflow.set_tags(tags)
        mlflow.log_params(
            {
                "input": "" if input_path is None else relative_source(input_path),
                "drift_threshold": drift_threshold,
                "shape": result.shape,
            }
        )
        counts = (
            "rows_read",
            "rows_rejected",
            "customers_scored",
            "customers_unscorable",
            "customers_excluded",
        )
        mlflow.log_metrics(
            {
                **{f"psi_{name}": float(v) for name, v in drift.items()},
                "psi_max": float(drift.max()) if len(drift) else 0.0,
                "drift_sample_size": float(
                    getattr(result, "drift_sample_size", result.customers_scored)
                ),
                "drifted_factors": float(len(drifted)),
                "drift_judged": float(judged),
                **{c: float(getattr(result, c)) for c in counts},
                "seconds": float(result.seconds),
            }
        )
        if drifted:
            mlflow.set_tag("drifted", ", ".join(drifted))
    return DriftLog(run.info.run_id, drifted, float(drift.max()) if len(drift) else 0.0)


SCORING_FIELDS = (
    "model_name",
    "model_version",
    "shape",
    "drift",
    "drift_sample_size",
    "drift_judged",
    "rows_read",
    "rows_rejected",
    "customers_scored",
    "customers_unscorable",
    "customers_excluded",
    "seconds",
)
"""What :func:`log_scoring_run` reads of a finished job."""


def scoring_request(
    result: Any, *, input_path: str | Path | None, drift_threshold: float
) -> dict[str, Any]:
    """A finished job's (a ``serving.batch.ScoreResult``) monitoring run as JSON-ready data."""
    fields = {name: getattr(result, name, None) for name in SCORING_FIELDS}
    if fields["drift_sample_size"] is None:
        fields["drift_sample_size"] = result.customers_scored
    if fields["drift_judged"] is None:
        fields["drift_judged"] = True
    drift = {} if result.drift is None else dict(result.drift)  # a Series or a dict, by factor
    fields["drift"] = {str(name): float(v) for name, v in drift.items()}
    return {
        "result": fields,
        "input_path": None if input_path is None else str(input_path),
        "drift_threshold": drift_threshold,
    }


def main(argv: list[str] | None = None) -> None:
    """Import MLflow, open the store, then log the one :func:`scoring_request` read from stdin.

    ``argv``: the tracking URI and the experiment (``valuecube score`` passes
    them when it starts this process, before its job). MLflow and the store
    are made ready first, while the job runs; the request comes when the job
    has finished. Answers one JSON line on stdout: ``{"run_id": ...}``, or
    ``{"error": ...}`` when the store refuses the run. No request (stdin
    closed: the job failed) logs nothing.
    """
    from valuecube.process import collect_less

    collect_less()
    tracking_uri, experiment = argv if argv is not None else sys.argv[1:3]
    from mlflow.exceptions import MlflowException

    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    try:
        mlflow.MlflowClient()  # the store: its engine and schema check
    except MlflowException as exc:
        problem: str | None = str(exc)
    else:
        problem = None
    line = sys.stdin.readline()
    if not line.strip():
        return
    request = json.loads(line)
    if problem is not None:
        print(json.dumps({"error": problem}), flush=True)
        return
    try:
        logged = log_scoring_run(
            SimpleNamespace(**request["result"]),
            input_path=request["input_path"],
            experiment=experiment,
            drift_threshold=request["drift_threshold"],
        )
    except (MlflowException, OSError) as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
    else:
        print(json.dumps({"run_id": logged.run_id}), flush=True)


if __name__ == "__main__":
    main()

"""Monitoring a registered model in use: drift at scoring time, realised quality once labels arrive.

* :func:`log_scoring_run` records one scoring job as an MLflow run linked to
  the model version (tags ``model_name``, ``model_version``, ``model_run_id``):
  the PSI of each tree factor against the training distribution, the number
  of customers the PSI was computed on, and the row accounting. A batch job
  uses its return value to fail on drift.
* :func:`realised_quality` scores a labelled file (customers whose churn is
  now known) and compares the churn ROC-AUC, Brier score and calibration with
  what the model promised at training (its test metrics), saying whether to
  retrain. Customers the model trained or early-stopped on are left out (its
  logged split, :mod:`~valuecube.training.lineage`): their scores flatter it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

import mlflow
from mlflow import MlflowClient
from valuecube.training import lineage
from valuecube.training.evaluate import churn_metrics
from valuecube.training.promotion import expected_calibration_error
from valuecube.training.tracking import ensure_experiment

MONITOR_EXPERIMENT = "valuecube-monitoring"
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


def _model_tags(name: str, version: str) -> dict[str, str]:
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
    (customers the PSI was computed on), ``drifted_factors``, and the row
    accounting (``rows_read``, ``rows_rejected``, ``customers_scored``,
    ``customers_unscorable``, ``customers_excluded``), ``seconds``.
    """
    drift = pd.Series(result.drift, dtype=float)
    drifted = sorted(drift.index[drift > drift_threshold])
    ensure_experiment(experiment)
    tags = {**_model_tags(result.model_name, result.model_version), "job": "score"}
    with mlflow.start_run(run_name=f"score-{result.model_name}-v{result.model_version}") as run:
        mlflow.set_tags(tags)
        mlflow.log_params(
            {
                "input": "" if input_path is None else lineage.relative_source(input_path),
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
                **{c: float(getattr(result, c)) for c in counts},
                "seconds": float(result.seconds),
            }
        )
        if drifted:
            mlflow.set_tag("drifted", ", ".join(drifted))
    return DriftLog(run.info.run_id, drifted, float(drift.max()) if len(drift) else 0.0)


@dataclass(frozen=True)
class QualityReport:
    """Realised against promised quality (one row per metric) and the advice."""

    table: pd.DataFrame
    n_customers: int
    n_excluded: int
    churn_rate: float
    mean_probability: float
    run_id: str

    @property
    def retrain(self) -> bool:
        """Some metric is outside its bound."""
        return not bool(self.table["ok"].all())

    @property
    def advice(self) -> str:
        """One line: retrain or not, and why."""
        if not self.retrain:
            return (
                f"no need to retrain: realised quality on {self.n_customers:,} labelled customers "
                "is within the bounds of what the model promised"
            )
        failed = ", ".join(self.table.index[~self.table["ok"]])
        return f"retrain: {failed} outside the bounds on {self.n_customers:,} labelled customers"


def realised_quality(
    model_uri: str,
    labelled: str | Path,
    *,
    auc_tolerance: float = 0.03,
    brier_tolerance: float = 0.02,
    max_ece: float = 0.1,
    experiment: str = MONITOR_EXPERIMENT,
) -> QualityReport:
    """Score ``labelled`` with the model, compare with its training-time test metrics, log a run.

    Raises
    ------
    ValueError
        The file has no churn label, or no customer is left once the
        model's own training customers are excluded.
    """
    from valuecube.features.customers import LABEL_COLUMNS, build_customer_table
    from valuecube.features.inputs import load_input
    from valuecube.models.packaged import unwrap

    model = unwrap(mlflow.pyfunc.load_model(model_uri))
    spec = model.config.input
    table = build_customer_table(load_input(labelled, spec, strict=True), spec).table
    if "churn" not in table.columns:
        raise ValueError(f"{labelled}: no churn label; monitoring needs the realised outcome")
    split = lineage.logged_split(str(model.metadata.get("run_id", "")))
    seen = np.zeros(len(table), dtype=bool)
    if split is not None:
        trained = set(split.loc[split["part"].isin(["train", "validation"]), "customer_hash"])
        seen = pd.Series(lineage.hashed_ids(table.index)).isin(trained).to_numpy()
    table = table[~seen]
    if len(table) == 0 or table["churn"].nunique() < 2:
        raise ValueError(
            f"{labelled}: {len(table)} customers left after excluding {int(seen.sum())} the model "
            "trained on, and both churn outcomes are needed"
        )
    out = model.predict_customers(table.drop(columns=[c for c in LABEL_COLUMNS if c in table]))
    y, p = table["churn"].to_numpy(dtype=float), out["churn_probability"].to_numpy(dtype=float)
    realised = churn_metrics(y, p)
    promised = model.metadata.get("metrics", {})
    auc0, brier0 = promised.get("test_churn_roc_auc", np.nan), promised.get("test_churn_brier")
    ece = expected_calibration_error(y, p)
    rows = {
        "churn roc_auc": (auc0, realised["roc_auc"], auc0 - auc_tolerance),
        "churn brier": (brier0, realised["brier"], (brier0 or np.nan) + brier_tolerance),
        "calibration ECE": (np.nan, ece, max_ece),
    }
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=["promised", "realised", "bound"])
    frame["ok"] = [
        bool(realised["roc_auc"] >= frame.loc["churn roc_auc", "bound"]),
        bool(realised["brier"] <= frame.loc["churn brier", "bound"]),
        bool(ece <= max_ece),
    ]
    frame = frame.rename_axis("metric")
    ensure_experiment(experiment)
    name, version = _registered(model_uri)
    with mlflow.start_run(run_name=f"monitor-{name}-v{version}") as run:
        mlflow.set_tags({**_model_tags(name, version), "job": "monitor"})
        mlflow.log_param("input", lineage.relative_source(labelled))
        mlflow.log_metrics(
            {
                "realised_churn_roc_auc": realised["roc_auc"],
                "realised_churn_brier": realised["brier"],
                "realised_calibration_ece": ece,
                "labelled_customers": float(len(table)),
                "excluded_training_customers": float(seen.sum()),
                "observed_churn_rate": float(y.mean()),
                "mean_churn_probability": float(p.mean()),
            }
        )
        report = QualityReport(
            frame, len(table), int(seen.sum()), float(y.mean()), float(p.mean()), run.info.run_id
        )
        mlflow.set_tag("retrain", "yes" if report.retrain else "no")
    return report


def _registered(model_uri: str) -> tuple[str, str]:
    """(name, version) of a ``models:/`` URI; ``(uri, "-")`` for other URIs."""
    if not model_uri.startswith("models:/"):
        return model_uri, "-"
    ref = model_uri.removeprefix("models:/")
    client = MlflowClient()
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return name, str(client.get_model_version_by_alias(name, alias).version)
    name, version = ref.split("/", 1)
    return name, version

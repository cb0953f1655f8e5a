"""Monitoring a registered model in use: realised quality once the churn labels arrive.

Drift at scoring time is each scoring job's own monitoring run
(:mod:`~valuecube.training.scoring_runs`).
:func:`realised_quality` scores a labelled file (customers whose churn is
  now known) and compares the churn ROC-AUC, Brier score and calibration with
  what the model promised at training (its test metrics), saying whether to
  retrain. Customers the model trained or early-stopped on are left out (its
  logged split, :mod:`~valuecube.training.lineage`): their scores flatter it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import mlflow
from mlflow import MlflowClient
from valuecube.training import lineage
from valuecube.training.evaluate import churn_metrics
from valuecube.training.promotion import expected_calibration_error
from valuecube.training.scoring_runs import MONITOR_EXPERIMENT, model_tags
from valuecube.training.tracking import ensure_experiment


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
        mlflow.set_tags({**model_tags(name, version), "job": "monitor"})
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

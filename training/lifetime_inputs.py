"""Whether the network gets the survival outputs as inputs, decided on validation customers.

``network.lifetime_inputs`` (docs/lifetimes.md): ``always``/``never`` fix it;
``auto`` fits the network with the default settings (no tuning: a cheap,
like-for-like comparison) on the training customers twice, with and without
the ``l:`` columns (``survival_12m``, ``expected_remaining_months``), and keeps
the design with the higher churn ROC-AUC on the validation customers — the
same ones the tuning scores trials on; the test customers are never used. A
tie keeps the smaller design. Only customer tables with a fitted survival
model have the choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from sklearn.metrics import roc_auc_score

from valuecube.models.design import NetworkDesign
from valuecube.models.network import BPNetworkClassifier
from valuecube.training.tuning import torch_threads

#: Epoch cap of each comparison fit (early stopping on validation usually ends sooner).
COMPARISON_EPOCHS = 60


@dataclass(frozen=True)
class LifetimeChoice:
    """The decision and, under ``auto``, the validation figures behind it."""

    option: str
    kept: bool
    auc_with: float | None = None
    auc_without: float | None = None

    def params(self) -> dict[str, str]:
        """MLflow params of the decision."""
        return {"lifetime_inputs_option": self.option, "lifetime_inputs": str(self.kept).lower()}

    def metrics(self) -> dict[str, float]:
        """MLflow metrics: the validation churn ROC-AUC with and without (``auto`` only)."""
        if self.auc_with is None:
            return {}
        return {
            "val_churn_roc_auc_with_lifetimes": self.auc_with,
            "val_churn_roc_auc_without_lifetimes": self.auc_without,
        }

    def line(self) -> str:
        """One line for ``train``'s output."""
        verdict = "kept" if self.kept else "dropped"
        if self.auc_with is None:
            return f"lifetime inputs: {verdict} (network.lifetime_inputs: {self.option})"
        return (
            f"lifetime inputs: {verdict} (validation ROC-AUC {self.auc_with:.3f} with vs "
            f"{self.auc_without:.3f} without)"
        )


def validation_auc(parts: dict[str, dict[str, Any]], *, seed: int, max_epochs: int) -> float:
    """Churn ROC-AUC on validation of the default network fitted on the training part."""
    network = BPNetworkClassifier(max_epochs=max_epochs, random_state=seed)
    train, validation = parts["train"], parts["validation"]
    with torch_threads():
        network.fit(train["X"], train["y"], eval_set=(validation["X"], validation["y"]))
    churn = validation["y"]["churn"].to_numpy()
    return float(roc_auc_score(churn, network.predict_churn_proba(validation["X"])))


def choose_design(
    design: NetworkDesign,
    train_customers: pd.DataFrame,
    build_parts,
    option: str,
    *,
    seed: int,
    max_epochs: int = COMPARISON_EPOCHS,
) -> tuple[NetworkDesign, dict[str, dict[str, Any]], LifetimeChoice | None]:
    """(design, parts, choice) per ``option``, starting from a fitted design without ``l:``.

    ``train_customers``: what ``design`` was fitted on; ``build_parts(design)``
    gives the train/validation/test parts of a design.
    Returns ``choice = None`` when the cube has no survival model.
    """
    if getattr(design.cube, "survival_", None) is None:
        return design, build_parts(design), None
    if option == "never":
        return design, build_parts(design), LifetimeChoice(option, kept=False)
    with_lifetimes = NetworkDesign(
        design.cube, horizon_days=design.horizon_days, lifetime_inputs=True
    ).fit(train_customers)
    with_parts = build_parts(with_lifetimes)
    if option == "always":
        return with_lifetimes, with_parts, LifetimeChoice(option, kept=True)
    without_parts = build_parts(design)
    auc_with = validation_auc(with_parts, seed=seed, max_epochs=max_epochs)
    auc_without = validation_auc(without_parts, seed=seed, max_epochs=max_epochs)
    choice = LifetimeChoice(option, auc_with > auc_without, auc_with, auc_without)
    if choice.kept:
        return with_lifetimes, with_parts, choice
    return design, without_parts, choice

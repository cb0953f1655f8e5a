"""Training-time quality guards: refuse to register a network that is worse than a plain peer.

A network is registered only when, on the test (evaluation) customers,

* its churn Brier score is at most logistic regression's plus ``brier_tolerance``;
* its churn ROC-AUC is at least logistic regression's minus ``auc_tolerance``;
* its segment accuracy against the fuzzy cube's segments is at least ``segment_accuracy_floor``.

Logistic regression on the same input matrix and split is the bar because it
is cheap, deterministic and hard to lose to by much: a network that does is
under-trained or broken (e.g. one epoch), not a modelling choice. An engineer
can still register it with an explicit reason (``allow_worse``), which is
tagged on the version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

import mlflow
from valuecube.training import peers
from valuecube.training.evaluate import churn_metrics

LOGISTIC = "logistic_regression"


@dataclass(frozen=True)
class GuardPolicy:
    """Tolerances of the training-time guard; ``allow_worse`` is the reason to register anyway."""

    brier_tolerance: float = 0.01
    auc_tolerance: float = 0.02
    segment_accuracy_floor: float = 0.5
    allow_worse: str | None = None


@dataclass(frozen=True)
class GuardDecision:
    """The guard's evidence table (one row per check) and its verdict."""

    table: pd.DataFrame
    policy: GuardPolicy = field(default_factory=GuardPolicy)

    @property
    def passed(self) -> bool:
        """Every check passed."""
        return bool(self.table["pass"].all())

    @property
    def register(self) -> bool:
        """Register: every check passed, or an override reason was given."""
        return self.passed or bool(self.policy.allow_worse)

    @property
    def tags(self) -> dict[str, str]:
        """Tags for the registered version: the verdict and, when overridden, the reason."""
        out = {"guard": "passed" if self.passed else "overridden"}
        failed = list(self.table.index[~self.table["pass"]])
        if failed:
            out["guard_failed_checks"] = ", ".join(failed)
            out["guard_override_reason"] = str(self.policy.allow_worse)
        return out


class GuardRefused(RuntimeError):
    """The network failed a quality guard and no override was given; carries the decision."""

    def __init__(self, decision: GuardDecision) -> None:
        failed = ", ".join(decision.table.index[~decision.table["pass"]])
        super().__init__(
            f"not registered: the network fails the quality guard ({failed}); "
            "fix the training or pass --allow-worse REASON"
        )
        self.decision = decision


def decide(
    network: dict[str, float],
    logistic: dict[str, float],
    segment_accuracy: float,
    policy: GuardPolicy | None = None,
) -> GuardDecision:
    """Compare the network's test churn metrics and segment accuracy with the bar of the module doc.

    ``network`` and ``logistic`` hold at least ``brier`` and ``roc_auc``
    (as returned by :func:`~valuecube.training.evaluate.churn_metrics`).
    """
    policy = policy or GuardPolicy()
    rows = {
        "churn brier": (
            network["brier"],
            logistic["brier"],
            logistic["brier"] + policy.brier_tolerance,
            network["brier"] <= logistic["brier"] + policy.brier_tolerance,
        ),
        "churn roc_auc": (
            network["roc_auc"],
            logistic["roc_auc"],
            logistic["roc_auc"] - policy.auc_tolerance,
            network["roc_auc"] >= logistic["roc_auc"] - policy.auc_tolerance,
        ),
        "segment accuracy": (
            segment_accuracy,
            np.nan,
            policy.segment_accuracy_floor,
            segment_accuracy >= policy.segment_accuracy_floor,
        ),
    }
    table = pd.DataFrame.from_dict(
        rows, orient="index", columns=["network", LOGISTIC, "bound", "pass"]
    ).rename_axis("check")
    table["pass"] = table["pass"].astype(bool)
    return GuardDecision(table, policy)


def check_network(
    parts: dict[str, Any],
    network_churn: np.ndarray,
    segment_accuracy: float,
    *,
    seed: int = 0,
    policy: GuardPolicy | None = None,
) -> GuardDecision:
    """Fit the logistic peer on the training part, decide on the test part; raise if refused.

    ``parts`` are the train job's parts (``X``, ``y`` per part). The peer is the
    same deterministic pipeline the train job logs as a sibling run.

    Raises
    ------
    GuardRefused
        When a check fails and ``policy.allow_worse`` is not set.
    """
    train, test = parts["train"], parts["test"]
    logistic = peers.logistic_peer(seed=seed).fit(
        train["X"].to_numpy(), train["y"]["churn"].to_numpy()
    )
    churn = test["y"]["churn"].to_numpy()
    decision = decide(
        churn_metrics(churn, network_churn),
        churn_metrics(churn, logistic.predict_proba(test["X"].to_numpy())[:, 1]),
        segment_accuracy,
        policy,
    )
    if mlflow.active_run() is not None:
        mlflow.log_text(decision.table.to_csv(), "guard/checks.csv")
    if not decision.register:
        raise GuardRefused(decision)
    return decision

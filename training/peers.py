"""Peer churn models trained on the same split and inputs as the network.

* logistic regression on the network's input matrix (standardised);
* LightGBM on the same matrix;
* the fuzzy baseline's churn score: a logistic regression on the three VA
  scores (CV, PV, RA) — how much churn signal the interpretable cube carries.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

NETWORK = "bp_network"  # the BP network, as named in runs, tables and reports
FUZZY = "fuzzy_baseline"  # the fuzzy value cube used as a churn score

PEER_NAMES = ("logistic_regression", "lightgbm")


def logistic_peer(C: float = 1.0, seed: int = 0) -> Pipeline:
    """Standardise, then an L2 logistic regression."""
    return make_pipeline(
        StandardScaler(), LogisticRegression(C=C, max_iter=2000, random_state=seed)
    )


def lightgbm_peer(seed: int = 0, **params: Any) -> lgb.LGBMClassifier:
    """A small, regularised gradient-boosted tree model (deterministic, 1 thread per fit)."""
    defaults = dict(
        n_estimators=300,
        learning_rate=0.03,
        num_leaves=15,
        min_child_samples=30,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        reg_lambda=1.0,
        random_state=seed,
        verbose=-1,
        deterministic=True,
        force_row_wise=True,
        n_jobs=1,
    )
    return lgb.LGBMClassifier(**{**defaults, **params})


def fuzzy_churn_peer(seed: int = 0) -> Pipeline:
    """Logistic regression on the three fuzzy VA scores."""
    return logistic_peer(seed=seed)


def fit_peers(X_train: np.ndarray, y_train: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Fit both peers on the same training rows."""
    return {
        "logistic_regression": logistic_peer(seed=seed).fit(X_train, y_train),
        "lightgbm": lightgbm_peer(seed=seed).fit(X_train, y_train),
    }

"""Baselines and peers of the forecasting network, on the same customers and inputs.

* segment after the horizon: persistence (the rule's segment now) and a
  LightGBM classifier on the network's input matrix;
* spend in the horizon: BG/NBD × Gamma-Gamma expected spend, the PV score
  (a rank, not money) and LightGBM with a Tweedie objective;
* churn in the horizon: logistic regression and LightGBM on the network's
  inputs (:mod:`training.peers`), and BG/NBD: a logistic regression on the
  BG/NBD expected purchases in the horizon and P(alive), fitted on the
  training examples (BG/NBD gives no churn-in-a-window probability itself).
"""

from __future__ import annotations

import copy
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from valuecube.models.value_cube import ValueCube
from valuecube.training.peers import lightgbm_peer, logistic_peer

PERSISTENCE = "persistence"
LIGHTGBM = "lightgbm"
LIGHTGBM_TWEEDIE = "lightgbm_tweedie"
BGNBD = "bgnbd"
BGNBD_GG = "bgnbd_gamma_gamma"
PV_SCORE = "pv_score"


def btyd_forecast(cube: ValueCube, customers: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
    """BG/NBD × Gamma-Gamma over the horizon, from the cube's frozen BTYD model.

    The one place the forecasting code reads the BTYD model, so that a change
    of library stays here. Returns, indexed like ``customers``,
    ``expected_purchases`` (in the horizon), ``p_alive`` and
    ``expected_spend`` (expected purchases × Gamma-Gamma mean spend per
    purchase). Scored snapshot by snapshot when ``customers`` stacks several
    (an ``as_of`` index level): each customer appears once per call.
    """
    if isinstance(customers.index, pd.MultiIndex):
        return pd.concat(
            btyd_forecast(cube, group.droplevel(0), horizon_days).set_axis(group.index)
            for _, group in customers.groupby(level=0, sort=False)
        )
    btyd = copy.copy(cube.bgnbd_).set_params(horizon_days=horizon_days)
    out = btyd.transform(customers, interval=False)  # point forecasts only
    return pd.DataFrame(
        {
            "expected_purchases": out["expected_purchases"],
            "p_alive": out["p_alive"],
            "expected_spend": out["expected_purchases"] * out["expected_spend"],
        },
        index=customers.index,
    )


def _btyd_churn_inputs(btyd: pd.DataFrame) -> np.ndarray:
    return np.column_stack([np.log1p(btyd["expected_purchases"]), btyd["p_alive"]])


def lightgbm_segment_peer(seed: int = 0) -> lgb.LGBMClassifier:
    """LightGBM for the segment after the horizon (the churn peer's settings, multiclass)."""
    return lightgbm_peer(seed=seed)


def lightgbm_tweedie_peer(seed: int = 0) -> lgb.LGBMRegressor:
    """LightGBM regression of spend, Tweedie objective (power 1.5), the churn peer's settings."""
    params = lightgbm_peer(seed=seed).get_params()
    params.update(objective="tweedie", tweedie_variance_power=1.5)
    return lgb.LGBMRegressor(**params)


def fit_forecast_peers(train: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """Fit every learned peer on the training examples (``X``, ``y``, ``btyd`` of a part)."""
    X = train["X"].to_numpy()
    y = train["y"]
    return {
        "segment": lightgbm_segment_peer(seed).fit(X, y["segment"].to_numpy()),
        "spend": lightgbm_tweedie_peer(seed).fit(X, y["spend"].to_numpy()),
        "churn_logistic": logistic_peer(seed=seed).fit(X, y["churn"].to_numpy()),
        "churn_lightgbm": lightgbm_peer(seed=seed).fit(X, y["churn"].to_numpy()),
        "churn_bgnbd": logistic_peer(seed=seed).fit(
            _btyd_churn_inputs(train["btyd"]), y["churn"].to_numpy()
        ),
    }


def forecast_peer_predictions(
    fitted: dict[str, Any], test: dict[str, Any]
) -> dict[str, dict[str, np.ndarray]]:
    """Every baseline's and peer's predictions on a part, per target.

    Returns ``{"segment_next": {...}, "future_spend": {...}, "pv_score": ...,
    "churn": {...}}``: the PV score goes apart because it is a rank, not money.
    """
    X = test["X"].to_numpy()
    btyd = test["btyd"]
    return {
        "segment_next": {
            PERSISTENCE: np.asarray(test["segment_now"]),
            LIGHTGBM: fitted["segment"].predict(X),
        },
        "future_spend": {
            BGNBD_GG: btyd["expected_spend"].to_numpy(),
            LIGHTGBM_TWEEDIE: fitted["spend"].predict(X),
        },
        "spend_scores": {PV_SCORE: np.asarray(test["scores"])[:, 1]},
        "churn": {
            "logistic_regression": fitted["churn_logistic"].predict_proba(X)[:, 1],
            LIGHTGBM: fitted["churn_lightgbm"].predict_proba(X)[:, 1],
            BGNBD: fitted["churn_bgnbd"].predict_proba(_btyd_churn_inputs(btyd))[:, 1],
        },
    }

"""The forecasting side of ``train``: snapshot parts, and the network against its peers per target.

:func:`forecast_parts` turns the customer split into network-ready parts
(training customers on every snapshot, validation and test customers at
the config's ``as_of``; :mod:`training.forecast_data`); :func:`forecast_tables`
evaluates the trained network and every baseline and peer on the test
customers and returns one table per target (:mod:`training.forecast_metrics`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from valuecube.features.snapshots import forecast_horizon_days
from valuecube.models.design import NetworkDesign
from valuecube.models.network import BPNetworkClassifier
from valuecube.models.value_cube import ValueCube
from valuecube.training.data import TrainingData
from valuecube.training.forecast_data import forecast_part, training_snapshot_dates
from valuecube.training.forecast_metrics import churn_table, segment_table, spend_table
from valuecube.training.forecast_peers import (
    btyd_forecast,
    fit_forecast_peers,
    forecast_peer_predictions,
)
from valuecube.training.peers import FUZZY, NETWORK, fuzzy_churn_peer


def is_forecast(data: TrainingData) -> bool:
    """Whether this dataset trains the forecasting network (a transaction log)."""
    return data.config.input.shape == "transaction_log"


def forecast_parts(
    data: TrainingData,
    cube: ValueCube,
    design: NetworkDesign,
    *,
    snapshot_months: int | None = None,
) -> dict[str, dict[str, Any]]:
    """``{"train", "validation", "test"}`` → ``X``, ``y`` (segment, churn, spend), peers' inputs.

    Each part also holds ``segment_now``, ``scores`` (VA now), ``customers``
    (the per-customer table as of each example's date), ``btyd`` (BG/NBD ×
    Gamma-Gamma over the horizon) and ``dates`` (the snapshot dates used).
    """
    cfg = data.config
    horizon = forecast_horizon_days(cfg)
    spec = cfg.input
    window_start = pd.Timestamp(spec.window_start) if spec.window_start else None
    as_of = data.customers.as_of
    every = snapshot_months or cfg.forecast.snapshot_months
    first = pd.Timestamp(cfg.forecast.first_snapshot) if cfg.forecast.first_snapshot else None
    train_dates = training_snapshot_dates(
        data.log, horizon, as_of, window_start=window_start, every_months=every, first=first
    )
    if as_of not in train_dates:
        raise ValueError(
            f"as_of {as_of.date()} has no full {horizon}-day horizon in the log "
            f"(last date {data.log['date'].max().date()}): move as_of or shorten the horizon"
        )
    parts = {}
    for name, ids in vars(data.split).items():
        dates = train_dates if name == "train" else [as_of]
        part = forecast_part(data.log, cube, design, ids, dates, horizon, window_start=window_start)
        parts[name] = {
            "X": part.X,
            "y": part.y,
            "segment_now": part.segment_now,
            "scores": part.scores,
            "customers": part.customers,
            "btyd": btyd_forecast(cube, part.customers, horizon),
            "dates": dates,
            "dropped": part.dropped,
        }
    return parts


def forecast_tables(
    network: BPNetworkClassifier, parts: dict[str, dict[str, Any]], seed: int
) -> tuple[dict[str, pd.DataFrame], dict[str, dict[str, np.ndarray]]]:
    """The network and every peer on the test customers: one table per target, and the predictions.

    The fuzzy baseline's churn score (a logistic regression on the VA scores)
    joins the churn peers, as in the customer-table comparison.
    """
    train, test = parts["train"], parts["test"]
    segment, churn, spend = network.predict_forecast(test["X"])
    predictions = forecast_peer_predictions(fit_forecast_peers(train, seed), test)
    fuzzy = fuzzy_churn_peer(seed).fit(train["scores"], train["y"]["churn"].to_numpy())
    predictions["segment_next"] = {NETWORK: segment, **predictions["segment_next"]}
    predictions["future_spend"] = {NETWORK: spend, **predictions["future_spend"]}
    predictions["churn"] = {
        NETWORK: churn,
        **predictions["churn"],
        FUZZY: fuzzy.predict_proba(test["scores"])[:, 1],
    }
    y = test["y"]
    tables = {
        "segment_next": segment_table(y["segment"].to_numpy(), predictions["segment_next"]),
        "future_spend": spend_table(
            y["spend"].to_numpy(), predictions["future_spend"], predictions["spend_scores"]
        ),
        "churn": churn_table(y["churn"].to_numpy(), predictions["churn"]),
    }
    return tables, predictions

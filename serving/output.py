"""The scoring output: its columns and Arrow schema, the churn-risk bands, and the rows of a chunk.

Every engine (local batch, Spark, the HTTP API) writes the same columns in the
same order, so a consumer reads one schema whichever way the customers were
scored: :data:`OUTPUT_COLUMNS` (every model), then the model's own columns
(:func:`output_columns`: a forecasting model's ``segment_next``,
``expected_spend``, ``horizon_days``; the cube's BTYD or survival columns),
appended so that the common columns keep their names and positions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from valuecube.features.columns import Table
from valuecube.features.customers import CUSTOMER_ID
from valuecube.features.factors import split_computable
from valuecube.models.packaged import (
    PREDICTION_COLUMNS,
    TEXT_OUTPUT_COLUMNS,
    ChurnSegmentModel,
)

CHURN_RISK_CUTOFFS = (0.3, 0.6)
"""Churn-risk bands: probability < 0.3 → low, < 0.6 → medium, else high."""
CHURN_RISK_LABELS = ("low", "medium", "high")
OUTPUT_COLUMNS = (*PREDICTION_COLUMNS, "churn_risk", "model_name", "model_version", "scored_at")
"""The columns every model's output starts with."""
OUTPUT_SCHEMA = pa.schema(
    [
        (CUSTOMER_ID, pa.string()),
        ("cv_score", pa.float64()),
        ("pv_score", pa.float64()),
        ("ra_score", pa.float64()),
        ("segment", pa.string()),
        ("segment_model", pa.string()),
        ("churn_probability", pa.float64()),
        ("churn_risk", pa.string()),
        ("model_name", pa.string()),
        ("model_version", pa.string()),
        ("scored_at", pa.timestamp("ms", tz="UTC")),
    ]
)


def model_columns(model: ChurnSegmentModel) -> tuple[str, ...]:
    """The model's own output columns, after :data:`OUTPUT_COLUMNS` (forecast, lifetime)."""
    return tuple(c for c in model.output_columns if c not in PREDICTION_COLUMNS)


def output_columns(model: ChurnSegmentModel) -> tuple[str, ...]:
    """All output columns of this model's scores, in order."""
    return (*OUTPUT_COLUMNS, *model_columns(model))


def output_schema(model: ChurnSegmentModel, reasons: int = 0, levers: bool = False) -> pa.Schema:
    """The Arrow schema of :func:`output_columns` (text columns string, the others float64).

    ``reasons`` > 0 appends the reasons columns as JSON strings (:mod:`models.reasons`).
    """
    extra = [
        (c, pa.string() if c in TEXT_OUTPUT_COLUMNS else pa.float64()) for c in model_columns(model)
    ]
    if reasons > 0:
        from valuecube.models.reasons import reason_column_names

        extra += [(c, pa.string()) for c in reason_column_names(model)]
    if levers:
        from valuecube.models.levers import LEVER_COLUMNS, TEXT_LEVER_COLUMNS

        extra += [
            (c, pa.string() if c in TEXT_LEVER_COLUMNS else pa.float64()) for c in LEVER_COLUMNS
        ]
    return pa.schema([*OUTPUT_SCHEMA, *extra])


def churn_risk(probability: np.ndarray) -> np.ndarray:
    """The churn-risk band of each probability (see :data:`CHURN_RISK_CUTOFFS`)."""
    bands = np.searchsorted(
        np.asarray(CHURN_RISK_CUTOFFS), np.asarray(probability, dtype=float), side="right"
    )
    return np.asarray(CHURN_RISK_LABELS, dtype=object)[bands]


def output_rows(
    predictions: pd.DataFrame, name: str, version: str, scored_at: pd.Timestamp
) -> pd.DataFrame:
    """Model predictions → the output rows: risk band, provenance, then the model's own columns.

    The columns are :func:`output_columns` of the model that made ``predictions``.
    """
    probability = predictions["churn_probability"].to_numpy()
    extra = [c for c in predictions.columns if c not in PREDICTION_COLUMNS]
    return pd.DataFrame(
        {  # the columns' arrays as they are: text stays Arrow strings, never Python objects
            **{c: predictions[c].array for c in PREDICTION_COLUMNS},
            CUSTOMER_ID: predictions[CUSTOMER_ID].astype("str").array,
            "churn_risk": churn_risk(probability),
            "model_name": name,
            "model_version": version,
            "scored_at": scored_at,
            **{c: predictions[c].array for c in extra},
        },
        index=pd.RangeIndex(len(predictions)),
    )


def predict_scorable(
    model: ChurnSegmentModel,
    customers: pd.DataFrame,
    reasons: int = 0,
    levers: bool = False,
    reasons_as_text: bool = False,
) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """Predict a per-customer table, setting aside customers whose factors cannot be computed.

    Returns ``(predictions, unscorable, factors)``: the model's output
    columns (:attr:`ChurnSegmentModel.output_columns`) for the scorable
    customers, the reason per unscorable customer (index = customer id), and
    the scored customers' factors (for the drift check).
    """
    customers, factors, unscorable = scorable(model, customers)
    return (
        model.predict_customers(
            customers, factors, reasons=reasons, levers=levers, reasons_as_text=reasons_as_text
        ),
        unscorable,
        factors,
    )


def scorable(model: ChurnSegmentModel, customers: Table) -> tuple[Table, Table, pd.Series]:
    """``(customers, factors, unscorable)``: the customers that can be scored, prepared.

    ``customers, factors = model.prepare(customers)`` restricted to the
    customers whose factors are all finite, and the reason for each of the
    others (index = customer id). Frames give frames, :class:`~valuecube.features.columns.Columns`
    give ``Columns``.
    """
    customers, factors = model.prepare(customers)
    ok, unscorable = split_computable(factors)
    if not ok.all():
        customers, factors = customers[ok], factors[ok]
    return customers, factors, unscorable

"""The scoring output: its columns and Arrow schema, the churn-risk bands, and the rows of a chunk.

Every engine (local batch, Spark, the HTTP API) writes these columns in this
order, so a consumer reads one schema whichever way the customers were
scored.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from valuecube.features.customers import CUSTOMER_ID
from valuecube.features.factors import split_computable
from valuecube.models.packaged import PREDICTION_COLUMNS, ChurnSegmentModel

CHURN_RISK_CUTOFFS = (0.3, 0.6)
"""Churn-risk bands: probability < 0.3 → low, < 0.6 → medium, else high."""
CHURN_RISK_LABELS = ("low", "medium", "high")
OUTPUT_COLUMNS = (*PREDICTION_COLUMNS, "churn_risk", "model_name", "model_version", "scored_at")
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


def churn_risk(probability: np.ndarray) -> np.ndarray:
    """The churn-risk band of each probability (see :data:`CHURN_RISK_CUTOFFS`)."""
    bands = np.searchsorted(
        np.asarray(CHURN_RISK_CUTOFFS), np.asarray(probability, dtype=float), side="right"
    )
    return np.asarray(CHURN_RISK_LABELS, dtype=object)[bands]


def output_rows(
    predictions: pd.DataFrame, name: str, version: str, scored_at: pd.Timestamp
) -> pd.DataFrame:
    """Model predictions → the output rows (:data:`OUTPUT_COLUMNS`): risk band and provenance."""
    probability = predictions["churn_probability"].to_numpy()
    return pd.DataFrame(
        {  # the columns' arrays as they are: text stays Arrow strings, never Python objects
            **{c: predictions[c].array for c in PREDICTION_COLUMNS},
            CUSTOMER_ID: predictions[CUSTOMER_ID].astype("str").array,
            "churn_risk": churn_risk(probability),
            "model_name": name,
            "model_version": version,
            "scored_at": scored_at,
        },
        index=pd.RangeIndex(len(predictions)),
    )


def predict_scorable(
    model: ChurnSegmentModel, customers: pd.DataFrame
) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """Predict a per-customer table, setting aside customers whose factors cannot be computed.

    Returns ``(predictions, unscorable, factors)``: the model's
    :data:`PREDICTION_COLUMNS` for the scorable customers, the reason per
    unscorable customer (index = customer id), and the scored customers'
    factors (for the drift check).
    """
    factors = model.cube.factors(customers)
    ok, unscorable = split_computable(factors)
    if not ok.all():
        customers, factors = customers[ok], factors[ok]
    if not len(customers):
        return pd.DataFrame({c: [] for c in PREDICTION_COLUMNS}), unscorable, factors
    return model.predict_customers(customers, factors), unscorable, factors

"""Train / validation / test splits of the per-customer table.

Customer tables and transaction logs split the same way, by customer,
stratified on the churn label: for a log the time protocol (features from
the calibration window, labels from the holdout) is already in the table, and
the customer-level split keeps test customers unseen in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sklearn.model_selection import train_test_split


@dataclass(frozen=True)
class Split:
    """Customer ids of each part."""

    train: pd.Index
    validation: pd.Index
    test: pd.Index


def split_customers(
    table: pd.DataFrame, *, test_size: float = 0.2, validation_size: float = 0.2, seed: int = 0
) -> Split:
    """Stratified (on ``churn``) train/validation/test split; sizes as fractions of the whole."""
    ids = table.index.to_numpy(dtype=object)
    stratify = table["churn"].to_numpy() if "churn" in table.columns else None
    rest, test, strat_rest, _ = train_test_split(
        ids,
        stratify if stratify is not None else ids,
        test_size=test_size,
        random_state=seed,
        stratify=stratify,
    )
    strat_rest = strat_rest if stratify is not None else None
    train, validation = train_test_split(
        rest, test_size=validation_size / (1 - test_size), random_state=seed, stratify=strat_rest
    )
    return Split(pd.Index(train), pd.Index(validation), pd.Index(test))

"""Training data: the per-customer table with labels, the model's input rows, and the split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from valuecube.features.config import DatasetConfig
from valuecube.features.customers import (
    CUSTOMER_ID,
    LABEL_COLUMNS,
    CustomerTable,
    build_customer_table,
)
from valuecube.features.inputs import load_input
from valuecube.features.snapshots import log_frame
from valuecube.training.splits import Split, split_customers


@dataclass(frozen=True)
class TrainingData:
    """A dataset ready for training and evaluation.

    ``rows`` are what the packaged model takes (indexed by customer id, no
    labels): raw typed columns for customer tables, the per-customer table for
    transaction logs. ``log`` is the validated transaction log itself
    (:func:`features.snapshots.log_frame`; ``None`` for customer tables): the
    forecasting network's snapshots are cut from it.
    """

    config: DatasetConfig
    source: Path
    customers: CustomerTable
    rows: pd.DataFrame
    split: Split
    log: pd.DataFrame | None = None

    @property
    def churn(self) -> pd.Series:
        """Observed churn label (0/1) per customer."""
        return self.customers.table["churn"]

    def model_input(self, ids: pd.Index) -> pd.DataFrame:
        """The packaged model's input for these customers (a customer-id column for logs)."""
        rows = self.rows.loc[ids]
        return (
            rows.reset_index()
            if self.config.input.shape == "transaction_log"
            else rows.reset_index(drop=True)
        )


def resolve_input(config: DatasetConfig, input_path: str | Path | None) -> Path:
    """The input file: the argument, else the config's ``data``; a clear error when neither."""
    if input_path is None and config.data is None:
        raise ValueError(f"no input: pass --input PATH or set 'data:' in the {config.name} config")
    return Path(input_path or config.data)


def load_training_data(
    config: DatasetConfig, input_path: str | Path | None = None, *, seed: int = 0
) -> TrainingData:
    """Load and validate the input strictly, build labelled customers and split them (seeded)."""
    source = resolve_input(config, input_path)
    validated = load_input(source, config.input, strict=True)
    customers = build_customer_table(validated, config.input)
    if "churn" not in customers.table.columns:
        raise ValueError(
            f"{source}: training needs a churn label: a label_column for customer tables, "
            "a holdout_end for logs"
        )
    if config.input.shape == "customer_table":
        spec = config.input
        rows = validated.data.drop(
            columns=[c for c in (spec.label_column,) if c in validated.data.columns]
        )
        # what a caller sends the packaged model: numbers and text (labels, not Categorical)
        types = {
            c: "float64" if s.type in ("int", "float") else "str"
            for c, s in spec.columns.items()
            if c in rows.columns and s.type in ("int", "float", "category")
        }
        rows = rows.astype(types)
        rows.index = customers.table.index
    else:
        rows = customers.table.drop(
            columns=[c for c in LABEL_COLUMNS if c in customers.table.columns]
        )
        # float64 like the customer-table columns above: an integer column in the example rows
        # would make MLflow reject a NaN or inf with a type error naming no row, before the
        # model's own check names the row and column.
        numeric = rows.select_dtypes(include="number").columns
        rows = rows.astype({c: "float64" for c in numeric})
    rows.index.name = CUSTOMER_ID
    log = log_frame(validated, config.input) if config.input.shape == "transaction_log" else None
    return TrainingData(
        config, source, customers, rows, split_customers(customers.table, seed=seed), log
    )

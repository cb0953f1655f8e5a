"""The per-customer table: one row per customer, from either input shape.

* A customer table is already one row per customer: the id becomes the
  index and the label column (if any) becomes ``churn`` ∈ {0, 1}.
* A transaction log is aggregated as of ``as_of`` into recency, frequency,
  monetary and the other per-customer features (:mod:`features.transactions`);
  with a holdout window it also yields the labels ``churn`` and
  ``future_spend``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from valuecube.features.config import InputSpec
from valuecube.features.inputs import LINE, REASON, ValidatedInput
from valuecube.features.transactions import customer_features, holdout_only_customers

CUSTOMER_ID = "customer_id"
LABEL_COLUMNS = ("churn", "future_spend", "future_purchases")


@dataclass(frozen=True)
class CustomerTable:
    """Per-customer rows (index ``customer_id``) and how they were obtained.

    ``excluded`` counts customers seen in a transaction log only after
    ``as_of`` (not yet customers then, so not scored; reported, not dropped
    silently). ``unused_lines`` are the log rows (their file lines) that no
    customer's row draws on: dated after the last day used (``as_of``, or
    ``holdout_end`` with labels), or of an excluded customer. With the
    rejected rows they make the row accounting of a log add up:
    ``rows_read == rows_used + len(unused_lines) + rows_rejected``.
    """

    table: pd.DataFrame
    as_of: pd.Timestamp | None = None
    excluded: int = 0
    unused_lines: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    rows_used: int = 0

    @property
    def rows_unused(self) -> int:
        """How many log rows no customer's row draws on (see the class docstring)."""
        return len(self.unused_lines)

    @property
    def labels(self) -> pd.DataFrame:
        """The label columns present (``churn``, ``future_spend``, …)."""
        return self.table[[c for c in LABEL_COLUMNS if c in self.table.columns]]


def _timestamp(value: dt.date | str | pd.Timestamp | None) -> pd.Timestamp | None:
    return None if value is None else pd.Timestamp(value)


def build_customer_table(
    validated: ValidatedInput,
    spec: InputSpec,
    *,
    as_of: dt.date | str | None = None,
    holdout_end: dt.date | str | None = None,
    with_labels: bool = True,
) -> CustomerTable:
    """Turn a validated input into the per-customer table.

    For a transaction log, ``as_of`` defaults to the config's ``as_of`` and
    then to the last date in the file; ``holdout_end`` to the config's (only
    when ``with_labels``).
    """
    data = validated.data
    if spec.shape == "customer_table":
        table = data.set_index(data[spec.id_column].astype(str).rename(CUSTOMER_ID)).drop(
            columns=spec.id_column
        )
        if spec.label_column is not None and spec.label_column in table.columns:
            label = table.pop(spec.label_column)
            if with_labels:
                table["churn"] = label.isin(spec.label_positive).astype(np.int64)
        return CustomerTable(table)

    log = pd.DataFrame(
        {
            CUSTOMER_ID: data[spec.id_column].astype(str),
            "date": data[spec.date_column].dt.normalize(),
            "quantity": data[spec.quantity_column].astype("float64"),
            "amount": data[spec.amount_column].astype("float64"),
        }
    )
    as_of_ts = _timestamp(as_of) or _timestamp(spec.as_of) or log["date"].max()
    end = (_timestamp(holdout_end) or _timestamp(spec.holdout_end)) if with_labels else None
    start = _timestamp(spec.window_start)
    if end is not None and end <= as_of_ts:
        end = None
    table = customer_features(log, as_of_ts, window_start=start, holdout_end=end)
    excluded = len(holdout_only_customers(log, as_of_ts, window_start=start))
    first = start if start is not None else log["date"].min()
    used = (
        (log["date"] >= first).to_numpy()
        & (log["date"] <= (end if end is not None else as_of_ts)).to_numpy()
        & log[CUSTOMER_ID].isin(table.index).to_numpy()
    )
    return CustomerTable(
        table,
        as_of=as_of_ts,
        excluded=excluded,
        unused_lines=np.asarray(data.index[~used], dtype=np.int64),
        rows_used=int(used.sum()),
    )


def customer_rejects(
    validated: ValidatedInput, spec: InputSpec, rejected: pd.DataFrame
) -> pd.DataFrame:
    """Customer-level rejects (index = customer id, a ``reason`` column) as rows of a rejects file.

    In a customer table a customer is one input row: its ``line`` and its
    values (as validated, in text) are filled in, like a row-level reject's.
    A log's customer spans many rows: ``line`` stays empty and the id column
    holds the id.
    """
    ids = rejected.index.astype(str)
    out = pd.DataFrame({CUSTOMER_ID: ids, REASON: rejected[REASON].to_numpy()})
    if spec.shape != "customer_table" or not len(out):
        out[spec.id_column] = ids
        out.insert(0, LINE, pd.array([pd.NA] * len(out), dtype="Int64"))
        return out
    data = validated.data
    line_of = pd.Series(data.index.to_numpy(), index=data[spec.id_column].astype(str).to_numpy())
    lines = line_of.reindex(ids).to_numpy()
    rows = data.loc[lines].drop(columns=[c for c in out.columns if c in data.columns])
    values = rows.astype(str).where(rows.notna(), None)
    out = pd.concat([out, values.reset_index(drop=True)], axis=1)
    out.insert(0, LINE, pd.array(lines, dtype="Int64"))
    return out

"""Where a batch job's rows go: scored output (here, or staged for Spark) and the rejects file.

A sink receives validated customers chunk by chunk and makes its output
appear at the destination only on :meth:`Sink.commit`; :meth:`Sink.abort`
leaves the destination as it was. :class:`LocalSink` scores in this
process (the Spark engine has no sink: it runs the whole job in Spark,
:mod:`valuecube.serving.spark_job`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from valuecube.features.inputs import LINE, REASON
from valuecube.features.io import AtomicWriter
from valuecube.serving.drift import DriftMonitor
from valuecube.serving.loading import LoadedModel
from valuecube.serving.output import output_rows, output_schema, predict_scorable


class Sink:
    """Where validated customers go; subclasses score them (locally or with Spark)."""

    reasons: int = 0
    """Top raising/lowering reasons per customer to write (0: no reasons columns)."""
    levers: bool = False
    """Append the rule's levers (models/levers.py)."""

    def __init__(self, loaded: LoadedModel, drift: DriftMonitor) -> None:
        self.loaded = loaded
        self.drift = drift

    def open(self, output: Path) -> None:
        """Prepare the destination (nothing is visible there until :meth:`commit`)."""

    def take(
        self, customers: pd.DataFrame, rows: pd.DataFrame, scored_at: pd.Timestamp
    ) -> pd.Series:
        """Handle one chunk; return the unscorable customers' reasons (index = customer id)."""
        raise NotImplementedError

    def commit(self) -> None:
        """Make the output appear at the destination."""

    def abort(self) -> None:
        """Drop whatever was written."""


class LocalSink(Sink):
    """Score each chunk in this process and append it to the output file."""

    def open(self, output: Path) -> None:
        self.writer = AtomicWriter(
            output, output_schema(self.loaded.model, self.reasons, self.levers)
        )

    def take(
        self, customers: pd.DataFrame, rows: pd.DataFrame, scored_at: pd.Timestamp
    ) -> pd.Series:
        predictions, unscorable, factors = predict_scorable(  # files hold reasons as JSON text
            self.loaded.model, customers, self.reasons, self.levers, reasons_as_text=True
        )
        self.drift.update(factors)
        self.writer.write(
            output_rows(predictions, self.loaded.name, self.loaded.version, scored_at)
        )
        return unscorable

    def commit(self) -> None:
        self.writer.commit()

    def abort(self) -> None:
        if hasattr(self, "writer"):
            self.writer.abort()


def rejects_schema(raw_columns: list[str]) -> pa.Schema:
    """Rejects file: the line (null for a log's customer rejects), the reason, the raw text."""
    return pa.schema(
        [(LINE, pa.int64()), (REASON, pa.string()), *[(c, pa.string()) for c in raw_columns]]
    )


class RejectsFile:
    """The rejects file: one row per rejected input row: its line, the reason, the raw columns."""

    def __init__(self, path: Path, raw_columns: list[str]) -> None:
        self.raw_columns = raw_columns
        self.writer = AtomicWriter(path, rejects_schema(raw_columns))

    def write(self, rejects: pd.DataFrame) -> None:
        """Append rejected rows (a ``line`` column when known, a ``reason``, raw columns)."""
        line = rejects[LINE] if LINE in rejects.columns else [pd.NA] * len(rejects)
        out = pd.DataFrame(
            {
                LINE: pd.array(line, dtype="Int64"),
                REASON: rejects[REASON].astype(object).to_numpy(),
            }
        )
        for c in self.raw_columns:
            out[c] = (
                rejects[c].astype(object).where(rejects[c].notna(), None).to_numpy()
                if c in rejects.columns
                else None
            )
        self.writer.write(out)

    def commit(self) -> None:
        """Make the rejects file appear."""
        self.writer.commit()

    def abort(self) -> None:
        """Drop it."""
        self.writer.abort()

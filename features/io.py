"""Writing tables atomically, CSV or Parquet by the file's extension.

A crash or a kill while writing never leaves a file at the destination that
looks complete: the table goes to a temporary file in the same folder, is
flushed to disk, and is then renamed over the destination in one step.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".txt")


def table_format(path: str | Path) -> str:
    """``"parquet"`` or ``"csv"`` from the extension; anything else is an error."""
    suffix = Path(path).suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in CSV_SUFFIXES:
        return "csv"
    raise ValueError(f"{path}: unknown output format {suffix!r}; use .csv or .parquet")


class AtomicFile:
    """A hidden temporary file beside ``path`` (``.NAME.XXXX.partial``) that becomes ``path`` in one step.

    Write to :attr:`handle` (binary); :meth:`commit` flushes, fsyncs and
    renames it over ``path``; :meth:`abort` deletes it. As a context manager
    it commits when the block succeeds and aborts when it raises.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".partial", dir=self.path.parent
        )
        self.tmp = Path(name)
        self.handle = os.fdopen(fd, "wb")

    def commit(self) -> Path:
        """Make the written bytes appear at ``path``."""
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the temporary file; ``path`` keeps whatever it had."""
        try:
            self.handle.close()
        finally:
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def write_table(frame: pd.DataFrame, path: str | Path, *, index: bool = False) -> Path:
    """Write ``frame`` to ``path`` atomically (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    fmt = table_format(path)
    with AtomicFile(path) as file:
        if fmt == "parquet":
            frame.to_parquet(file.handle, index=index)
        else:
            frame.to_csv(file.handle, index=index)
    return path

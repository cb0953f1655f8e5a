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


def write_table(frame: pd.DataFrame, path: str | Path, *, index: bool = False) -> Path:
    """Write ``frame`` to ``path`` atomically (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    fmt = table_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            if fmt == "parquet":
                frame.to_parquet(handle, index=index)
            else:
                frame.to_csv(handle, index=index)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path

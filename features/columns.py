"""A table without pandas: column name → 1-D NumPy array, and the rows' ids.

The scoring steps (factors, normalisation, survival, network input, reasons,
levers) read a table by column name and write matrices. For a batch of
thousands of customers a ``DataFrame`` costs nothing next to the arithmetic;
for the few customers of an API request its per-call overhead (index
alignment, block management, ``__getitem__``) is most of the time. The steps
therefore take either a ``DataFrame`` or a :class:`Columns` — the subset of
the frame interface they use — and give back the same kind (:func:`like`), so
each rule is written once and both paths run it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

SMALL_ROWS = 64
"""Up to this many customers (an API request's batch) the scoring steps take their small-batch
paths: fewer, larger NumPy calls instead of a per-call-costly kernel or a loop over months."""


class Columns:
    """Columns of equal length by name, with the rows' ids (``index``).

    Supports what the scoring steps ask of a table: ``table[name]`` (a 1-D
    array), ``table[names]`` and ``table[mask]`` (a sub-table), ``table[name] = values``,
    ``name in table``, ``len(table)`` (rows), ``columns``, ``index``, ``dtypes`` and
    ``to_numpy``. A table made from a matrix (:meth:`from_matrix`) gives that
    matrix back from ``to_numpy`` without a copy.

    Parameters
    ----------
    data : dict of str to ndarray
        The columns, each of length ``len(index)``.
    index : ndarray
        The rows' ids.
    """

    __slots__ = ("_data", "_matrix", "index")

    def __init__(self, data: dict[str, np.ndarray], index: np.ndarray) -> None:
        self._data = data
        self._matrix: np.ndarray | None = None
        self.index = index

    @classmethod
    def from_matrix(cls, matrix: np.ndarray, names: Sequence[str], index: np.ndarray) -> Columns:
        """A table whose columns are those of ``matrix`` (views, no copy)."""
        table = cls({name: matrix[:, j] for j, name in enumerate(names)}, index)
        table._matrix = matrix
        return table

    @property
    def columns(self) -> list[str]:
        """The column names, in order."""
        return list(self._data)

    @property
    def dtypes(self) -> list[np.dtype]:
        """Each column's dtype, in column order."""
        return [values.dtype for values in self._data.values()]

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, name: object) -> bool:
        return name in self._data

    def __iter__(self) -> Any:
        return iter(self._data)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return self._data[key]
        if isinstance(key, np.ndarray) and key.dtype == bool:
            return Columns({n: v[key] for n, v in self._data.items()}, self.index[key])
        return Columns({n: self._data[n] for n in key}, self.index)

    def __setitem__(self, name: str, values: np.ndarray) -> None:
        self._data[name] = values
        self._matrix = None

    def to_numpy(self, dtype: Any = None, na_value: Any = None) -> np.ndarray:
        """The columns as one (rows, columns) matrix (column-major)."""
        if self._matrix is not None and self._matrix.shape[1] == len(self._data):
            return self._matrix if dtype is None else self._matrix.astype(dtype, copy=False)
        matrix = np.empty((len(self.index), len(self._data)), dtype=dtype or np.float64, order="F")
        for j, values in enumerate(self._data.values()):
            matrix[:, j] = values
        return matrix


Table = pd.DataFrame | Columns
"""What the scoring steps read: a frame (batch) or :class:`Columns` (a few customers)."""


def floats(values: Any) -> np.ndarray:
    """A column as float64 (a pandas missing value as NaN)."""
    if isinstance(values, np.ndarray):
        return values.astype(np.float64, copy=False)
    return values.to_numpy(dtype="float64", na_value=np.nan)


def like(table: Table, matrix: np.ndarray, names: Iterable[str], index: Any = None) -> Table:
    """``matrix`` with column ``names`` as the same kind of table as ``table`` (and its index)."""
    index = table.index if index is None else index
    if isinstance(table, Columns):
        return Columns.from_matrix(matrix, list(names), np.asarray(index))
    return pd.DataFrame(matrix, index=index, columns=list(names), copy=False)


def like_columns(table: Table, data: dict[str, np.ndarray]) -> Table:
    """Named arrays as the same kind of table as ``table`` (and its index)."""
    if isinstance(table, Columns):
        return Columns(data, table.index)
    return pd.DataFrame(data, index=table.index)

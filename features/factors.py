"""Per-customer factors: the leaves of the indicator tree, computed from columns.

The factor definitions live in the dataset config (:class:`FactorSpec`); this
module evaluates them over a per-customer table, vectorised over customers.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from valuecube.features.columns import SMALL_ROWS, Table, floats, like
from valuecube.features.config import FactorSpec
from valuecube.features.expressions import parse_expression


def category_codes(values: pd.Series | np.ndarray, categories: Sequence[str]) -> np.ndarray:
    """Position of each value in ``categories`` as int64, −1 where it is absent or missing.

    Values are compared as text (so ``1`` matches ``"1"``). A ``Categorical``
    (what validation makes of a category column) costs a lookup of its few
    categories; other values one hash lookup each (Arrow's ``index_in``),
    however many categories there are, except a NumPy array (an API request's
    column, None where missing) or at most :data:`SMALL_ROWS` values, where
    the kernel call's fixed cost is most of the work: a binary search in the
    sorted categories (:func:`_text_codes`). The factors (``map``,
    ``count_of``) and the network's one-hot columns compare every categorical
    column with its values, on the scoring path.
    """
    if isinstance(
        values.dtype, pd.CategoricalDtype
    ):  # validated input: only its few categories are looked up
        codes = values.cat.codes.to_numpy().astype(np.int64)
        known = [str(c) for c in values.cat.categories]
        if known == list(categories):
            return codes
        position = {c: i for i, c in enumerate(categories)}
        return np.array([position.get(c, -1) for c in known] + [-1])[
            codes
        ]  # code −1 (missing) stays −1
    if isinstance(values, np.ndarray):
        return _text_codes(values, tuple(categories))
    text = values if isinstance(values.dtype, pd.StringDtype) else values.astype("string")
    if len(text) <= SMALL_ROWS:  # a request's few customers: a kernel call costs more
        return _text_codes(text.to_numpy(dtype=object), tuple(categories))
    array = pa.array(text.array)  # the array itself: a Series is probed attribute by attribute
    codes = pc.index_in(array, value_set=pa.array(list(categories), type=array.type))
    return np.asarray(pc.fill_null(codes, -1).to_numpy(zero_copy_only=False), dtype=np.int64)


def _text_codes(values: np.ndarray, categories: tuple[str, ...]) -> np.ndarray:
    """:func:`category_codes` of a NumPy array: a binary search per value in the sorted categories.

    For the few customers of an API request (an Arrow call's fixed cost is
    most of a lookup there). Values are compared as their text (``str``), as
    Arrow compares them; None and NaN are missing (−1).
    """
    ordered, order = _sorted_categories(categories)
    if not len(ordered):
        return np.full(len(values), -1, dtype=np.int64)
    if values.dtype.kind == "U":  # text without missing values (an API request's column)
        at = np.minimum(np.searchsorted(ordered, values), len(ordered) - 1)
        return np.where(ordered[at] == values, order[at], -1)
    missing = pd.isna(values)
    text = np.where(missing, "", values).astype(str)
    at = np.minimum(np.searchsorted(ordered, text), len(ordered) - 1)
    found = (ordered[at] == text) & ~missing
    return np.where(found, order[at], -1).astype(np.int64)


@lru_cache(maxsize=1024)
def _sorted_categories(categories: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The categories as sorted text, and each sorted one's position in ``categories``."""
    text = np.asarray([str(c) for c in categories], dtype=str)
    order = np.argsort(text, kind="stable")
    return text[order], order


def compute_factor(
    table: pd.DataFrame, name: str, spec: FactorSpec, computed: dict[str, pd.Series] | None = None
) -> pd.Series:
    """Evaluate one factor over a per-customer table (float64; NaN where not computable).

    An ``expr`` may use the table's columns and the factors in ``computed``.
    """
    earlier = {k: np.asarray(v, dtype="float64") for k, v in (computed or {}).items()}
    return pd.Series(_factor_values(table, name, spec, earlier), index=table.index, name=name)


def _factor_values(
    table: Table, name: str, spec: FactorSpec, computed: dict[str, np.ndarray]
) -> np.ndarray:
    """One factor as a float64 array, from a frame or :class:`~features.columns.Columns`.

    NumPy throughout: the API scores a handful of customers at a time, where a
    pandas object per step would cost more than the arithmetic.
    """
    if spec.count_of is not None:
        values = np.zeros(len(table))
        for column in spec.count_of:
            values += category_codes(table[column], [spec.value]) == 0
    elif spec.expr is not None:
        values = _evaluate(table, name, spec.expr, computed)
    elif spec.map is not None:
        mapped = np.append(
            np.asarray(list(spec.map.values()), dtype="float64"), np.nan
        )  # code −1 → NaN
        values = mapped[category_codes(table[spec.column], list(spec.map))]
    else:
        column = table[spec.column]
        if not pd.api.types.is_numeric_dtype(column.dtype):
            column = pd.to_numeric(column, errors="coerce")
        values = floats(column)
    if spec.fill is not None:
        values = np.where(np.isfinite(values), values, spec.fill)
    return values


def _evaluate(table: Table, name: str, expr: str, computed: dict[str, np.ndarray]) -> np.ndarray:
    """An ``expr`` factor: earlier factors first, then the table's numeric columns, by name."""
    expression = parse_expression(expr)
    values = {}
    for ref in expression.names:
        if ref in computed:
            values[ref] = computed[ref]
        elif ref in table.columns and pd.api.types.is_numeric_dtype(table[ref].dtype):
            values[ref] = floats(table[ref])
        elif ref in table.columns:
            raise ValueError(
                f"factor {name!r}: expr {expr!r} uses {ref!r}, which is not numeric "
                f"({table[ref].dtype})"
            )
        else:
            raise ValueError(
                f"factor {name!r}: expr {expr!r} uses {ref!r}, which is neither a column nor an "
                f"earlier factor (columns: {list(table.columns)}; factors so far: {list(computed)})"
            )
    return expression.evaluate(values, len(table))


def compute_factors(table: Table, specs: dict[str, FactorSpec]) -> Table:
    """Evaluate every configured factor, in config order: a column per factor, ``table``'s index.

    A frame gives a frame, :class:`~features.columns.Columns` gives ``Columns``.
    """
    # one column-major matrix filled factor by factor: a frame of one block, no stacking copy
    matrix = np.empty((len(table), len(specs)), order="F")
    computed: dict[str, np.ndarray] = {}
    for j, (name, spec) in enumerate(specs.items()):
        matrix[:, j] = _factor_values(table, name, spec, computed)
        computed[name] = matrix[:, j]
    return like(table, matrix, specs)


def split_computable(factors: Table) -> tuple[np.ndarray, pd.Series]:
    """The customers whose factors are all finite (a mask), and the reason for each of the others.

    :func:`factor_problems` for scoring paths: the reasons (index = customer)
    are worded only for the customers that have a problem, usually none.
    """
    ok = computable(factors)
    return ok, factor_problems(factors[~ok])


def computable(factors: Table) -> np.ndarray:
    """The customers whose factors are all finite (a mask)."""
    return np.isfinite(factors.to_numpy(dtype="float64", na_value=np.nan)).all(axis=1)


def factor_problems(factors: Table) -> pd.Series:
    """Per customer, the factors that are not finite ('' when all are), as a reject reason."""
    bad = ~np.isfinite(factors.to_numpy(dtype="float64", na_value=np.nan))
    reason = pd.Series("", index=factors.index, dtype=object)
    rows = bad.any(axis=1)
    if rows.any():
        names = np.asarray(factors.columns)
        reason[rows] = [
            "factor(s) not computable (non-finite): " + ", ".join(names[r]) for r in bad[rows]
        ]
    return reason

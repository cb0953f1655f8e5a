"""Per-customer factors: the leaves of the indicator tree, computed from columns.

The factor definitions live in the dataset config (:class:`FactorSpec`); this
module evaluates them over a per-customer table, vectorised over customers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.config import FactorSpec


def compute_factor(
    table: pd.DataFrame, name: str, spec: FactorSpec, computed: dict[str, pd.Series] | None = None
) -> pd.Series:
    """Evaluate one factor over a per-customer table (float64; NaN where not computable).

    An ``expr`` may use the table's columns and the factors in ``computed``.
    """
    if spec.count_of is not None:
        values = (table[spec.count_of].astype("string") == spec.value).sum(axis=1).astype("float64")
    elif spec.expr is not None:
        values = pd.to_numeric(table.eval(spec.expr, engine="python", resolvers=[computed or {}]), errors="coerce").astype("float64")
    elif spec.map is not None:
        values = table[spec.column].map(spec.map).astype("float64")
    else:
        values = pd.to_numeric(table[spec.column], errors="coerce").astype("float64")
    if spec.fill is not None:
        values = values.where(np.isfinite(values), spec.fill)
    return values.rename(name)


def compute_factors(table: pd.DataFrame, specs: dict[str, FactorSpec]) -> pd.DataFrame:
    """Evaluate every configured factor, in config order; one column per factor, same index as ``table``."""
    computed: dict[str, pd.Series] = {}
    for name, spec in specs.items():
        computed[name] = compute_factor(table, name, spec, computed)
    return pd.DataFrame(computed, index=table.index)


def factor_problems(factors: pd.DataFrame) -> pd.Series:
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

"""The network's input matrix, built from a fitted :class:`ValueCube`.

Columns, in a fixed order frozen at fit time:

* ``s:<score>`` — the three fuzzy scores VA (CV, PV, RA): the segment is a
  threshold on them, so the segment head learns the cut-offs instead of
  re-deriving the AHP-weighted sums, and the churn head can use them;
* ``u:<factor>`` — every tree factor normalised to [0, 1] with the cube's
  frozen statistics (what the fuzzy rule sees);
* ``f:<factor>`` — the configured factors outside the tree, as they are;
* ``x:<column>`` — the numeric input columns of a customer table;
* ``c:<column>=<value>`` — one-hot of the categorical input columns, over the
  values the config declares (so an unseen batch never changes the columns).

The network standardises these itself; here they only need to be finite.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from features.factors import factor_problems
from models.value_cube import ValueCube


class NetworkDesign(TransformerMixin, BaseEstimator):
    """Per-customer table → the network's numeric input matrix.

    Parameters
    ----------
    cube : ValueCube
        A fitted value cube (its factors and frozen normalisation are reused).

    Attributes
    ----------
    columns_ : list of str
        The matrix columns, in order.
    """

    def __init__(self, cube: ValueCube) -> None:
        self.cube = cube

    def _frame(self, customers: pd.DataFrame, factors: pd.DataFrame | None = None) -> pd.DataFrame:
        cfg = self.cube.config
        factors = self.cube.factors(customers) if factors is None else factors
        bad = factor_problems(factors)
        if (bad != "").any():
            first = bad[bad != ""]
            raise ValueError(f"{len(first)} customer(s) have non-computable factors, e.g. {first.index[0]}: {first.iloc[0]}")
        tree = cfg.tree.factor_names()
        fuzzy = self.cube.fuzzy_
        scores = pd.DataFrame(fuzzy.transform(factors), index=factors.index, columns=fuzzy.get_feature_names_out())
        parts = [scores.add_prefix("s:"), fuzzy.normalize(factors).add_prefix("u:")]
        others = [f for f in factors.columns if f not in tree]
        parts.append(factors[others].add_prefix("f:"))
        if cfg.input.shape == "customer_table":
            labels = {cfg.input.id_column, cfg.input.label_column}
            for name, spec in cfg.input.columns.items():
                if name in labels:
                    continue
                if spec.type in ("int", "float"):
                    parts.append(customers[[name]].astype("float64").add_prefix("x:"))
                elif spec.type == "category":
                    values = customers[name].to_numpy()
                    onehot = np.stack([values == v for v in spec.values], axis=1).astype("float64")
                    parts.append(pd.DataFrame(onehot, index=customers.index, columns=[f"c:{name}={v}" for v in spec.values]))
        return pd.concat(parts, axis=1)

    def fit(self, customers: pd.DataFrame, y: object = None) -> NetworkDesign:
        """Freeze the column list."""
        self.columns_ = list(self._frame(customers).columns)
        return self

    def transform(self, customers: pd.DataFrame, factors: pd.DataFrame | None = None) -> pd.DataFrame:
        """The input matrix as a float64 DataFrame with :attr:`columns_`.

        ``factors``: the customers' factors when the caller has computed them
        already (``cube.factors(customers)``), so they are not computed twice.
        """
        check_is_fitted(self, "columns_")
        return self._frame(customers, factors).reindex(columns=self.columns_).astype("float64")

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """The matrix column names."""
        check_is_fitted(self, "columns_")
        return np.asarray(self.columns_, dtype=object)

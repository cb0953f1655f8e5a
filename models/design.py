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

from valuecube.features.factors import category_codes, split_computable
from valuecube.models.fuzzy import SCORE_COLUMNS
from valuecube.models.value_cube import ValueCube


def _score_columns() -> list[str]:
    return [f"s:{c}" for c in SCORE_COLUMNS]


class NetworkDesign(
    TransformerMixin, BaseEstimator, auto_wrap_output_keys=None
):  # transform returns a frame itself
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
        ok, problems = split_computable(factors)
        if not ok.all():
            raise ValueError(
                f"{len(problems)} customer(s) have non-computable factors, e.g. {problems.index[0]}: {problems.iloc[0]}"
            )
        tree = cfg.tree.factor_names()
        fuzzy = self.cube.fuzzy_
        u = fuzzy.normalize(factors)
        others = [f for f in factors.columns if f not in tree]
        blocks: list[tuple[list[str], np.ndarray]] = [
            (_score_columns(), fuzzy.score_normalized(u)),
            ([f"u:{c}" for c in u.columns], u.to_numpy(dtype="float64")),
            ([f"f:{c}" for c in others], factors[others].to_numpy(dtype="float64")),
        ]
        if cfg.input.shape == "customer_table":
            labels = {cfg.input.id_column, cfg.input.label_column}
            for name, spec in cfg.input.columns.items():
                if name in labels:
                    continue
                if spec.type in ("int", "float"):
                    blocks.append(
                        ([f"x:{name}"], customers[name].to_numpy(dtype="float64")[:, None])
                    )
                elif spec.type == "category":
                    codes = category_codes(customers[name], spec.values)
                    onehot = (
                        np.arange(len(spec.values))[:, None] == codes
                    ).T  # column-major, like the matrix
                    blocks.append(([f"c:{name}={v}" for v in spec.values], onehot))
        # one preallocated matrix filled block by block: no concatenation or reindexing copies
        names = [n for block_names, _ in blocks for n in block_names]
        matrix = np.empty(
            (len(customers), len(names)), order="F"
        )  # column blocks: contiguous writes
        at = 0
        for block_names, values in blocks:
            matrix[:, at : at + len(block_names)] = values
            at += len(block_names)
        return pd.DataFrame(matrix, index=customers.index, columns=names, copy=False)

    def fit(self, customers: pd.DataFrame, y: object = None) -> NetworkDesign:
        """Freeze the column list."""
        self.columns_ = list(self._frame(customers).columns)
        return self

    def transform(
        self, customers: pd.DataFrame, factors: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """The input matrix as a float64 DataFrame with :attr:`columns_`.

        ``factors``: the customers' factors when the caller has computed them
        already (``cube.factors(customers)``), so they are not computed twice.
        """
        check_is_fitted(self, "columns_")
        frame = self._frame(customers, factors)
        return (
            frame if list(frame.columns) == self.columns_ else frame.reindex(columns=self.columns_)
        )

    @staticmethod
    def fuzzy_scores(X: pd.DataFrame) -> np.ndarray:
        """The fuzzy scores VA (CV, PV, RA), shape (n, 3), that an input matrix from :meth:`transform` carries."""
        return X[_score_columns()].to_numpy()

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """The matrix column names."""
        check_is_fitted(self, "columns_")
        return np.asarray(self.columns_, dtype=object)

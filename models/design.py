"""The network's input matrix, built from a fitted :class:`ValueCube`.

Columns, in a fixed order frozen at fit time:

* ``s:<score>`` — the three fuzzy scores VA (CV, PV, RA), transaction logs
  only. For a customer table the network's segment head learns the rule
  itself from the factors (as the source paper's network does), so it never
  sees the rule's own answer;
* ``u:<factor>`` — every tree factor normalised to [0, 1] with the cube's
  frozen statistics (what the fuzzy rule sees);
* ``f:<factor>`` — the configured factors outside the tree, as they are;
* ``x:<column>`` — the numeric input columns of a customer table;
* ``c:<column>=<value>`` — one-hot of the categorical input columns, over the
  values the config declares (so an unseen batch never changes the columns);
* ``l:<column>`` — with ``lifetime_inputs``, the cube's survival outputs
  (:data:`features.survival.SURVIVAL_COLUMNS`: ``survival_12m``,
  ``expected_remaining_months``), computed from the raw row by the survival
  model the cube fitted on the training customers (customer tables with a
  ``lifetime:`` block). A transaction log's BTYD outputs are tree factors in
  the bundled config, so they reach the network through ``u:``/``r:``.

With a forecast horizon (transaction logs), also what is known at the as-of
date *t* about where the customer is heading (docs/forecasting.md):

* ``r:<factor>`` — every tree factor as measured, log-scaled
  (``sign(v)·log1p(|v|)``: spend and counts are heavy-tailed);
* ``h:<column>`` — the purchase history
  (:data:`features.transactions.HISTORY_COLUMNS`: spend and purchase days per
  quarter over the last year, log-scaled the same way, and the window length);
* ``g:segment=<code>`` — one-hot of the rule's segment now;
* ``si:<score>`` and ``gi:segment=<code>`` — the VA scores and segment the
  frozen cube gives the customer at *t* + horizon if they buy nothing more
  (:func:`features.snapshots.idle_projection`): the segment a churner lands in.

The network standardises these itself; here they only need to be finite.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from valuecube.features.columns import Columns, Table, floats, like
from valuecube.features.factors import category_codes, computable, split_computable
from valuecube.features.snapshots import idle_projection
from valuecube.features.survival import SURVIVAL_COLUMNS, lifetime_design
from valuecube.features.transactions import HISTORY_COLUMNS
from valuecube.models.fuzzy import SCORE_COLUMNS
from valuecube.models.segments import SEGMENT_CODES, segment_index
from valuecube.models.value_cube import ValueCube


def _score_columns(prefix: str = "s") -> list[str]:
    return [f"{prefix}:{c}" for c in SCORE_COLUMNS]


def _signed_log(values: np.ndarray) -> np.ndarray:
    return np.sign(values) * np.log1p(np.abs(values))


def _segment_onehot(scores: np.ndarray, threshold: float) -> np.ndarray:
    return segment_index(scores, threshold)[:, None] == np.arange(len(SEGMENT_CODES))


class NetworkDesign(
    TransformerMixin, BaseEstimator, auto_wrap_output_keys=None
):  # transform returns a frame itself
    """Per-customer table → the network's numeric input matrix.

    Parameters
    ----------
    cube : ValueCube
        A fitted value cube (its factors and frozen normalisation are reused).
    horizon_days : int or None, default=None
        Forecast horizon of a transaction-log model: adds the ``r:``, ``h:``,
        ``g:``, ``si:`` and ``gi:`` blocks (see the module docstring).
    lifetime_inputs : bool, default=False
        Add the ``l:`` block of survival outputs; needs a cube with a fitted
        survival model (``cube.survival_``).

    Attributes
    ----------
    columns_ : list of str
        The matrix columns, in order.
    """

    def __init__(
        self, cube: ValueCube, horizon_days: int | None = None, lifetime_inputs: bool = False
    ) -> None:
        self.cube = cube
        self.horizon_days = horizon_days
        self.lifetime_inputs = lifetime_inputs

    def _frame(
        self,
        customers: Table,
        factors: Table | None = None,
        normalized: Table | None = None,
        survival: Table | None = None,
    ) -> Table:
        """The matrix with its column names: a frame for frames, ``Columns`` for ``Columns``."""
        cfg = self.cube.config
        factors = self.cube.factors(customers) if factors is None else factors
        if not computable(factors).all():
            _, problems = split_computable(factors)
            raise ValueError(
                f"{len(problems)} customer(s) have non-computable factors, "
                f"e.g. {problems.index[0]}: {problems.iloc[0]}"
            )
        tree = cfg.tree.factor_names()
        fuzzy = self.cube.fuzzy_
        u = fuzzy.normalize(factors) if normalized is None else normalized
        others = [f for f in factors.columns if f not in tree]
        blocks: list[tuple[list[str], np.ndarray]] = []
        is_log = cfg.input.shape == "transaction_log"
        if is_log:
            scores = fuzzy.score_normalized(u)
            blocks.append((_score_columns(), scores))
        blocks += [
            ([f"u:{c}" for c in u.columns], u.to_numpy(dtype="float64")),
            ([f"f:{c}" for c in others], factors[others].to_numpy(dtype="float64")),
        ]
        if is_log and self.horizon_days is not None:
            blocks += self._forecast_blocks(customers, factors[u.columns], scores)
        if cfg.input.shape == "customer_table":
            labels = {cfg.input.id_column, cfg.input.label_column}
            for name, spec in cfg.input.columns.items():
                if name in labels:
                    continue
                if spec.type in ("int", "float"):
                    blocks.append(([f"x:{name}"], floats(customers[name])[:, None]))
                elif spec.type == "category":
                    codes = category_codes(customers[name], spec.values)
                    onehot = (
                        np.arange(len(spec.values))[:, None] == codes
                    ).T  # column-major, like the matrix
                    blocks.append(([f"c:{name}={v}" for v in spec.values], onehot))
        if getattr(self, "lifetime_inputs", False):
            blocks.append(self._lifetime_block(customers, factors, survival))
        # one preallocated matrix filled block by block: no concatenation or reindexing copies
        names = [n for block_names, _ in blocks for n in block_names]
        matrix = np.empty(
            (len(customers), len(names)), order="F"
        )  # column blocks: contiguous writes
        at = 0
        for block_names, values in blocks:
            matrix[:, at : at + len(block_names)] = values
            at += len(block_names)
        return like(customers, matrix, names)

    def _lifetime_block(
        self,
        customers: pd.DataFrame,
        factors: pd.DataFrame,
        computed: pd.DataFrame | None = None,
    ) -> tuple[list[str], np.ndarray]:
        """The ``l:`` block: the cube's survival outputs for these customers.

        ``computed``: those outputs when the caller has them already (the
        packaged model outputs them too, and computes them once).
        """
        survival = getattr(self.cube, "survival_", None)
        if survival is None:
            raise ValueError(
                "lifetime_inputs needs a cube with a survival model "
                "(a customer table with a 'lifetime:' block, fitted with the churn label)"
            )
        values = (
            survival.transform(lifetime_design(customers, factors, self.cube.config))
            if computed is None
            else computed
        )
        columns = list(SURVIVAL_COLUMNS)
        return [f"l:{c}" for c in columns], values[columns].to_numpy(dtype="float64")

    def _forecast_blocks(
        self, customers: pd.DataFrame, tree_factors: pd.DataFrame, scores: np.ndarray
    ) -> list[tuple[list[str], np.ndarray]]:
        """The ``r:``, ``h:``, ``g:``, ``si:`` and ``gi:`` blocks (logs with a horizon)."""
        threshold = self.cube.fuzzy_.threshold
        idle = idle_projection(customers, self.horizon_days)
        idle_factors = self.cube.factors(idle)
        ok, problems = split_computable(idle_factors)
        if not ok.all():
            raise ValueError(
                f"{len(problems)} customer(s) have non-computable projected factors, "
                f"e.g. {problems.index[0]}: {problems.iloc[0]}"
            )
        idle_scores = self.cube.fuzzy_.transform(idle_factors)
        history = customers[list(HISTORY_COLUMNS)].to_numpy(dtype="float64")
        segments = [f"segment={code}" for code in SEGMENT_CODES]
        return [
            ([f"r:{c}" for c in tree_factors.columns], _signed_log(tree_factors.to_numpy(float))),
            ([f"h:{c}" for c in HISTORY_COLUMNS], _signed_log(history)),
            ([f"g:{s}" for s in segments], _segment_onehot(scores, threshold)),
            (_score_columns("si"), idle_scores),
            ([f"gi:{s}" for s in segments], _segment_onehot(idle_scores, threshold)),
        ]

    def fit(self, customers: pd.DataFrame, y: object = None) -> NetworkDesign:
        """Freeze the column list."""
        self.columns_ = list(self._frame(customers).columns)
        return self

    def transform(
        self,
        customers: pd.DataFrame,
        factors: pd.DataFrame | None = None,
        normalized: pd.DataFrame | None = None,
        survival: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """The input matrix as a float64 DataFrame with :attr:`columns_`.

        :class:`~features.columns.Columns` (the API's few customers) give
        ``Columns`` over the same matrix.

        ``factors``: the customers' factors when the caller has computed them
        already (``cube.factors(customers)``), so they are not computed twice;
        ``normalized``: likewise ``cube.fuzzy_.normalize(factors)``;
        ``survival``: likewise the cube's survival outputs (``lifetime_inputs``).
        """
        check_is_fitted(self, "columns_")
        frame = self._frame(customers, factors, normalized, survival)
        if list(frame.columns) == self.columns_:
            return frame
        if isinstance(frame, Columns):  # as reindex does: a column not made here is NaN
            missing = np.full(len(frame), np.nan)
            kept = {c: frame[c] if c in frame else missing for c in self.columns_}
            return Columns(kept, frame.index)
        return frame.reindex(columns=self.columns_)

    def segment_now(self, X: pd.DataFrame) -> np.ndarray:
        """The rule's segment code now, read from the ``g:`` block of a forecast input matrix."""
        onehot = X[[f"g:segment={code}" for code in SEGMENT_CODES]].to_numpy()
        return np.asarray(SEGMENT_CODES, dtype=object)[onehot.argmax(axis=1)]

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """The matrix column names."""
        check_is_fitted(self, "columns_")
        return np.asarray(self.columns_, dtype=object)

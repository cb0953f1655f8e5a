"""Fuzzy comprehensive evaluation of the three value dimensions (docs/methods.md §2.3).

Symbols follow the source papers:

* V = (9, 7, 5, 3, 1) — the evaluation set for the grades
  (high, fairly high, medium, fairly low, low);
* R — a membership matrix, one row per factor, one column per grade;
* A — the weights of a node's children (AHP, :mod:`models.ahp`);
* B = A ∘ R — the membership vector of a node; VA = B·Vᵀ ∈ [1, 9] its score.

Memberships come from an expert panel (:mod:`features.experts`, the
membership columns of ``expert_factors``) or, for factors measured from
data, from the factor normalised to [0, 1] with statistics frozen at fit time
and five triangular membership functions that partition unity
(:func:`data_memberships`).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

from valuecube.features.columns import Columns, like
from valuecube.features.config import TreeSpec
from valuecube.features.experts import membership_columns
from valuecube.models.ahp import node_weights
from valuecube.models.interpolation import KnotTable
from valuecube.models.segments import SEGMENT_CODES, assign_segments

GRADES = ("high", "fairly high", "medium", "fairly low", "low")
"""The five grades, in the order of V (ratings files spell them with underscores)."""
V = np.array([9.0, 7.0, 5.0, 3.0, 1.0])

SCORE_COLUMNS = ("cv_score", "pv_score", "ra_score")
_KNOT_TABLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""Each fitted evaluator's :class:`KnotTable` per factor, with the ``knots_`` they were built
from (kept out of the evaluator itself, so nothing new is pickled with a model)."""
_CENTRES = np.array([1.0, 0.75, 0.5, 0.25, 0.0])
Operator = Literal["weighted_average", "zadeh"]


def data_memberships(u: np.ndarray) -> np.ndarray:
    """Memberships (n, 5) of normalised values u ∈ [0, 1] in the five grades.

    Triangular functions centred at 1, 0.75, 0.5, 0.25, 0 (high … low), each
    0.25 wide at half height; every row sums to 1, and VA = B·Vᵀ = 1 + 8u.
    """
    u = np.clip(np.asarray(u, dtype=float), 0.0, 1.0)
    # 1 − 4·|u − c|, clipped to [0, 1]; computed in place (same operations, no temporaries)
    m = np.subtract(u[:, None], _CENTRES[None, :])
    np.abs(m, out=m)
    np.multiply(m, 4.0, out=m)
    np.subtract(1.0, m, out=m)
    return np.clip(m, 0.0, 1.0, out=m)


def compose(
    weights: np.ndarray, r: np.ndarray, operator: Operator = "weighted_average"
) -> np.ndarray:
    """B = A ∘ R for one node, vectorised over customers.

    Parameters
    ----------
    weights : (k,) weights A of the node's k children.
    r : (k, 5) or (n, k, 5) memberships R of the children (per customer).
    operator : ``"weighted_average"`` (B = A·R, the default) or ``"zadeh"``
        (M(∧,∨): b_q = max_p min(a_p, r_pq), then normalised to sum 1 so that
        VA stays in [1, 9]).
    """
    a = np.asarray(weights, dtype=float)
    if operator == "weighted_average":
        return np.einsum("p,...pq->...q", a, r)
    if operator == "zadeh":
        b = np.max(np.minimum(a[:, None], r), axis=-2)
        total = b.sum(axis=-1, keepdims=True)
        return np.divide(b, total, out=np.zeros_like(b), where=total > 0)
    raise ValueError(f"unknown operator {operator!r}; use 'weighted_average' or 'zadeh'")


def va_score(b: np.ndarray) -> np.ndarray:
    """VA = B·Vᵀ."""
    return np.asarray(b) @ V


@dataclass(frozen=True)
class FuzzyEvaluation:
    """Everything the evaluation computed, for explanations.

    ``normalized``: factors in [0, 1] (before direction); ``indicators``:
    B of each (dimension, indicator) as an (n, 5) array; ``dimensions``:
    (n, 3, 5) B of CV, PV, RA; ``scores``: (n, 3) VA of CV, PV, RA.
    """

    normalized: pd.DataFrame
    indicators: dict[tuple[str, str], np.ndarray]
    dimensions: np.ndarray
    scores: np.ndarray


class FuzzyValueClassifier(ClassifierMixin, TransformerMixin, BaseEstimator):
    """Value-cube segments from a fuzzy comprehensive evaluation (the baseline).

    ``fit`` freezes each factor's normalisation and the AHP weights of the
    tree; ``transform`` gives the three scores VA (CV, PV, RA) ∈ [1, 9];
    ``predict`` the segment code.

    Parameters
    ----------
    tree : TreeSpec
        The indicator tree (dimension → indicator → factors with directions,
        with AHP matrices or weights at each node).
    threshold : float, default 5
        A dimension is high when VA ≥ threshold.
    operator : {"weighted_average", "zadeh"}
        The composition operator ∘ (see :func:`compose`).
    normalization : {"quantile", "minmax"}
        ``quantile``: the factor's mid-rank empirical CDF in the fit data
        (robust to skew and outliers; interpolated between ``n_quantiles``
        knots); ``minmax``: (x − min)/(max − min), clipped.
    n_quantiles : int
        Knots kept of each factor's empirical CDF.
    expert_factors : tuple of str
        Factors whose memberships may come from experts: ``X`` then holds
        their five membership columns (:func:`features.experts.membership_columns`),
        NaN for a customer nobody rated, who takes the data membership of the
        factor's own column (which is then required).

    Attributes
    ----------
    feature_names_in_ : ndarray of the factor names, in tree order.
    knots_ : dict factor → (x, level) arrays of the frozen normalisation.
    weights_ : dict with the AHP weights of every node.
    classes_ : ndarray of the eight segment codes.

    References
    ----------
    Value-cube customer segmentation with AHP and fuzzy comprehensive evaluation
    (the source papers of docs/methods.md §2).
    """

    def __init__(
        self,
        tree: TreeSpec,
        *,
        threshold: float = 5.0,
        operator: Operator = "weighted_average",
        normalization: Literal["quantile", "minmax"] = "quantile",
        n_quantiles: int = 1001,
        expert_factors: tuple[str, ...] = (),
    ) -> None:
        self.tree = tree
        self.threshold = threshold
        self.operator = operator
        self.normalization = normalization
        self.n_quantiles = n_quantiles
        self.expert_factors = expert_factors

    def fit(self, X: pd.DataFrame, y: object = None) -> FuzzyValueClassifier:
        """Freeze the factor normalisation and compute the tree's AHP weights."""
        if self.operator not in ("weighted_average", "zadeh"):
            raise ValueError(
                f"unknown operator {self.operator!r}; use 'weighted_average' or 'zadeh'"
            )
        names = self.tree.factor_names()
        measured = self._measured(X, names)
        values = self._factor_matrix(X, measured)
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_features_in_ = len(names)
        self.knots_ = {name: self._knots(values[:, j]) for j, name in enumerate(measured)}
        self.weights_ = self._tree_weights()
        self.linear_weights_ = self._linear_weights(names)
        self.classes_ = np.asarray(SEGMENT_CODES, dtype=object)
        return self

    def _knots(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.normalization == "minmax":
            lo, hi = float(x.min()), float(x.max())
            return np.array([lo, hi if hi > lo else lo + 1.0]), np.array([0.0, 1.0])
        if self.normalization != "quantile":
            raise ValueError(
                f"unknown normalization {self.normalization!r}; use 'quantile' or 'minmax'"
            )
        levels = np.linspace(0.0, 1.0, self.n_quantiles)
        xs = np.quantile(x, levels)
        unique, inverse = np.unique(xs, return_inverse=True)
        mid = np.bincount(inverse, weights=levels) / np.bincount(inverse)
        if len(unique) == 1:
            return np.array([unique[0] - 0.5, unique[0] + 0.5]), np.array([0.5, 0.5])
        return unique, mid

    def _tree_weights(self) -> dict:
        out: dict = {}
        for dim_name, dim in self.tree.dimensions().items():
            ind_w = node_weights(
                dim.comparison, dim.weights, len(dim.indicators), name=f"tree.{dim_name}"
            )
            inds = {}
            for ind_name, ind in dim.indicators.items():
                where = f"tree.{dim_name}.indicators.{ind_name}"
                inds[ind_name] = node_weights(
                    ind.comparison, ind.weights, len(ind.factors), name=where
                )
            out[dim_name] = {"weights": ind_w, "indicators": inds}
        return out

    def _measured(self, X: pd.DataFrame, names: list[str]) -> list[str]:
        """The factors with a data column: all but expert factors given by memberships only."""
        if not isinstance(X, pd.DataFrame):
            return names
        return [n for n in names if n not in self.expert_factors or n in X.columns]

    def _expert_goodness(self, X: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per expert factor: (rated mask, memberships R (n, 5)) of the customers experts rated."""
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if not isinstance(X, pd.DataFrame | Columns):
            return out
        for name in self.expert_factors:
            columns = membership_columns(name)
            if not set(columns) <= set(X.columns):
                continue
            r = X[columns].to_numpy(dtype="float64", na_value=np.nan)
            out[name] = (np.isfinite(r).all(axis=1), r)
        return out

    def _directions(self) -> dict[str, str]:
        return {
            f: d
            for dim in self.tree.dimensions().values()
            for ind in dim.indicators.values()
            for f, d in ind.factors.items()
        }

    @staticmethod
    def _factor_matrix(X: pd.DataFrame | Columns | np.ndarray, names: list[str]) -> np.ndarray:
        """The factors as float64 (n, len(names)): a table by column name, an array by position."""
        if not isinstance(X, pd.DataFrame | Columns):
            values = check_array(X, dtype="float64")
            if values.shape[1] != len(names):
                raise ValueError(
                    f"X has {values.shape[1]} feature(s), but the tree has {len(names)} factors "
                    f"{names} (an array's columns are the factors in tree order)"
                )
            return values
        if len(X) == 0:
            raise ValueError("X has 0 sample(s); at least one customer is needed")
        missing = [n for n in names if n not in X.columns]
        if missing:
            raise ValueError(f"factors missing from X: {missing}")
        values = X[names].to_numpy(dtype="float64", na_value=np.nan)
        bad = ~np.isfinite(values)
        if bad.any():
            cols = [names[j] for j in np.flatnonzero(bad.any(axis=0))]
            raise ValueError(
                f"{int(bad.any(axis=1).sum())} row(s) have NaN/inf factor values in {cols}"
            )
        return values

    def normalize(self, X: pd.DataFrame) -> pd.DataFrame:
        """Factors mapped to [0, 1] with the frozen statistics (before direction).

        A frame (or an array) gives a frame; :class:`~features.columns.Columns` gives ``Columns``.
        """
        check_is_fitted(self, "knots_")
        names = list(self.feature_names_in_)
        measured = [n for n in names if n in self.knots_]
        if not getattr(self, "expert_factors", ()):  # models pickled before expert factors
            measured = names
        # contiguous columns, each interpolated through its factor's knots
        values = np.asfortranarray(self._factor_matrix(X, measured))
        u = np.empty((values.shape[0], len(names)), order="F")
        tables = self._knot_tables()
        for j, name in enumerate(names):
            if name in tables:
                tables[name](values[:, measured.index(name)], out=u[:, j])
            else:  # an expert factor without a data column: filled by _rated_values
                u[:, j] = np.nan
        if getattr(self, "expert_factors", ()):
            self._rated_values(X, names, u)
        if isinstance(X, Columns):
            return like(X, u, names)
        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(u, index=index, columns=names, copy=False)

    def _knot_tables(self) -> dict[str, KnotTable]:
        """Per measured factor, its knots as a :class:`KnotTable` (built once per fit, unsaved)."""
        cached = _KNOT_TABLES.get(self)
        if cached is None or cached[0] is not self.knots_:
            tables = {name: KnotTable(xp, fp) for name, (xp, fp) in self.knots_.items()}
            cached = _KNOT_TABLES[self] = (self.knots_, tables)
        return cached[1]

    def _rated_values(self, X: pd.DataFrame, names: list[str], u: np.ndarray) -> None:
        """Put in ``u`` the value whose data memberships score as the experts' R does.

        R·Vᵀ = 1 + 8g defines g ∈ [0, 1]; u = g (benefit) or 1 − g (cost), so
        the linear scoring of :meth:`score_normalized` gives exactly the VA of
        the experts' memberships. Customers neither rated nor measured are an error.
        """
        directions = self._directions()
        rated = self._expert_goodness(X)
        for name in self.expert_factors:
            j = names.index(name)
            if name in rated:
                mask, r = rated[name]
                g = (r[mask] @ V - 1.0) / 8.0
                u[mask, j] = g if directions[name] == "benefit" else 1.0 - g
            missing = np.isnan(u[:, j])
            if missing.any():
                raise ValueError(
                    f"{int(missing.sum())} row(s) have neither expert memberships nor a value "
                    f"for factor {name!r}"
                )

    def evaluate(self, X: pd.DataFrame) -> FuzzyEvaluation:
        """The full two-level evaluation: memberships at every node and the scores."""
        rated = self._expert_goodness(X) if getattr(self, "expert_factors", ()) else {}
        return self._evaluate_normalized(self.normalize(X), rated)

    def _memberships(self, u: pd.DataFrame, factor: str, direction: str, rated: dict) -> np.ndarray:
        """R of one factor: the experts' where they rated, else the data memberships."""
        col = np.asarray(u[factor])
        m = data_memberships(col if direction == "benefit" else 1.0 - col)
        if factor in rated:
            mask, r = rated[factor]
            m[mask] = r[mask]
        return m

    def _evaluate_normalized(self, u: pd.DataFrame, rated: dict | None = None) -> FuzzyEvaluation:
        rated = rated or {}
        indicators: dict[tuple[str, str], np.ndarray] = {}
        dims = []
        for dim_name, dim in self.tree.dimensions().items():
            w = self.weights_[dim_name]
            stacked = []
            if self.operator == "weighted_average":
                # B = A·R accumulated child by child: compose()'s sums without (n, k, 5) copies
                b_dim = None
                for i, (ind_name, ind) in enumerate(dim.indicators.items()):
                    b = None
                    for p, (f, d) in enumerate(ind.factors.items()):
                        term = self._memberships(u, f, d, rated)
                        term *= w["indicators"][ind_name][p]
                        b = term if b is None else np.add(b, term, out=b)
                    indicators[(dim_name, ind_name)] = b
                    term = b * w["weights"][i]
                    b_dim = term if b_dim is None else np.add(b_dim, term, out=b_dim)
                dims.append(b_dim)
                continue
            for ind_name, ind in dim.indicators.items():
                r = np.stack(
                    [self._memberships(u, f, d, rated) for f, d in ind.factors.items()], axis=1
                )
                b = compose(w["indicators"][ind_name], r, self.operator)
                indicators[(dim_name, ind_name)] = b
                stacked.append(b)
            dims.append(compose(w["weights"], np.stack(stacked, axis=1), self.operator))
        b_dims = np.stack(dims, axis=1)
        return FuzzyEvaluation(u, indicators, b_dims, va_score(b_dims))

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """The scores VA of CV, PV and RA, shape (n, 3), each in [1, 9].

        With the weighted-average operator the two-level evaluation is linear:
        each factor's memberships score B·Vᵀ = 1 + 8u (see
        :func:`data_memberships`) and the weights of every level sum to 1, so
        VA = 1 + 8·Σ_f w_f·u_f with w_f the factor's global weight. That
        identity scores without building the membership matrices (the same
        numbers as :meth:`evaluate`, to rounding); Zadeh's operator is not
        linear and takes the full evaluation.
        """
        if self.operator != "weighted_average":
            return self.evaluate(X).scores
        return self.score_normalized(self.normalize(X))

    def score_normalized(self, u: pd.DataFrame) -> np.ndarray:
        """:meth:`transform` from factors already normalised by :meth:`normalize`.

        For callers that need both the normalised factors and the scores (the
        network's inputs): the normalisation is most of the cost.
        """
        if self.operator != "weighted_average":
            return self._evaluate_normalized(u).scores
        u = u.to_numpy() if hasattr(u, "to_numpy") else np.asarray(u)
        if not hasattr(self, "linear_weights_"):  # models pickled before this attribute existed
            self.linear_weights_ = self._linear_weights(list(self.feature_names_in_))
        weights, offset = self.linear_weights_
        # Element-wise sums in a fixed factor order, not a matrix product: BLAS picks different
        # kernels for 1 row and for many, which changes the last bits of a customer's score
        # depending on the batch it is in (the scores must be identical alone or in any batch).
        scores = np.empty((len(u), weights.shape[1]))
        term = np.empty(len(u))
        for k in range(weights.shape[1]):
            acc = np.full(len(u), offset[k])
            for j in np.flatnonzero(weights[:, k]):
                acc += np.multiply(u[:, j], weights[j, k], out=term)
            acc *= 8.0
            acc += 1.0
            scores[:, k] = acc
        return scores

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The segment code of each customer."""
        return assign_segments(self.transform(X), self.threshold)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Names of the :meth:`transform` columns."""
        return np.asarray(SCORE_COLUMNS, dtype=object)

    def _linear_weights(self, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(F, 3) signed global factor weights and (3,) offsets of Σ w·u'.

        u' = u for a benefit factor, 1 − u for a cost factor.
        """
        table = self.effective_weights()
        column = {d: k for k, d in enumerate(self.tree.dimensions())}
        weights, offset = np.zeros((len(names), 3)), np.zeros(3)
        for row in table.itertuples(index=False):
            sign = 1.0 if row.direction == "benefit" else -1.0
            weights[names.index(row.factor), column[row.dimension]] += sign * row.weight
            offset[column[row.dimension]] += 0.0 if sign > 0 else row.weight
        return weights, offset

    def effective_weights(self) -> pd.DataFrame:
        """Each factor's global weight per dimension (product of the level weights), for reports."""
        check_is_fitted(self, "weights_")
        rows = []
        for dim_name, dim in self.tree.dimensions().items():
            w = self.weights_[dim_name]
            for i, (ind_name, ind) in enumerate(dim.indicators.items()):
                for j, (factor, direction) in enumerate(ind.factors.items()):
                    rows.append(
                        {
                            "dimension": dim_name,
                            "indicator": ind_name,
                            "factor": factor,
                            "direction": direction,
                            "weight": w["weights"][i] * w["indicators"][ind_name][j],
                        }
                    )
        return pd.DataFrame(rows)

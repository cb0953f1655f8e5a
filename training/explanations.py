"""Which of the network's inputs move its churn probability (docs/methods.md §3.5).

Globally, :func:`permutation_importances`: the drop in churn ROC-AUC when one
input group is shuffled. Per customer, :func:`median_substitution`: the churn
probability minus that with one input group set to a typical training
customer's value (:func:`reference_inputs`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.metrics import roc_auc_score

from valuecube.models.packaged import ChurnSegmentModel

if TYPE_CHECKING:
    from valuecube.training.compare import ScoredCustomers

_GROUP_LABELS = {"s": "VA score", "u": "factor", "f": "extra factor", "x": "column", "c": "column"}


def input_groups(columns: list[str]) -> dict[str, list[int]]:
    """The network's inputs grouped for explanations: one group per score, factor or raw column.

    Design columns are ``<kind>:<name>`` (see :mod:`models.design`); the one-hot
    columns ``c:<column>=<value>`` of a categorical column form one group, so a
    category moves as a whole. Labels read e.g. ``factor: tenure_months``.
    """
    groups: dict[str, list[int]] = {}
    for j, column in enumerate(columns):
        kind, name = column.split(":", 1)
        groups.setdefault(f"{_GROUP_LABELS.get(kind, kind)}: {name.split('=', 1)[0]}", []).append(j)
    return groups


class _GroupedChurn:
    """The network's churn head over *row indices per input group* (for permutation importance).

    Column g of the integer matrix it is given says which customer's values
    group g takes, so permuting that column shuffles the whole group together
    (all one-hot columns of a category at once) — sklearn permutes one column
    at a time.
    """

    def __init__(
        self, model: ChurnSegmentModel, X: pd.DataFrame, groups: dict[str, list[int]]
    ) -> None:
        self.network, self.X, self.groups = model.network, X, list(groups.values())

    def fit(self, X: Any = None, y: Any = None) -> _GroupedChurn:
        """Nothing to fit: the network is already trained (sklearn requires the method)."""
        return self

    def churn(self, rows: np.ndarray) -> np.ndarray:
        """Churn probability with group g of row i taken from customer ``rows[i, g]``."""
        values = self.X.to_numpy()
        out = np.empty_like(values)
        for g, cols in enumerate(self.groups):
            out[:, cols] = values[np.ix_(np.asarray(rows[:, g], dtype=int), cols)]
        return self.network.predict_churn_proba(pd.DataFrame(out, columns=self.X.columns))


def _roc_auc(estimator: _GroupedChurn, rows: np.ndarray, y: np.ndarray) -> float:
    return float(roc_auc_score(y, estimator.churn(rows)))


def permutation_importances(
    model: ChurnSegmentModel, scored: ScoredCustomers, *, n_repeats: int = 3, seed: int = 0
) -> pd.DataFrame:
    """Drop in the network's churn ROC-AUC when one input group is shuffled across customers.

    sklearn's ``permutation_importance`` on these customers (scoring ROC-AUC),
    one group at a time (:func:`input_groups`). Correlated inputs share their
    importance (shuffling one leaves its copies intact), so read a small value
    as "not needed given the others", not "unrelated to churn".
    """
    groups = input_groups(list(scored.X.columns))
    rows = np.tile(np.arange(len(scored.X))[:, None], (1, len(groups)))
    result = permutation_importance(
        _GroupedChurn(model, scored.X, groups),
        rows,
        scored.table["churn"].to_numpy(),
        scoring=_roc_auc,
        n_repeats=n_repeats,
        random_state=seed,
    )
    return (
        pd.DataFrame(
            {"importance": result.importances_mean, "std": result.importances_std},
            index=list(groups),
        )
        .rename_axis("input")
        .sort_values("importance", ascending=False)
    )


def reference_inputs(train_X: pd.DataFrame) -> pd.Series:
    """A typical training customer's inputs: each input's median, a category's most common level.

    A categorical column's one-hot group takes its most frequent pattern (a
    per-column median of one-hot columns could switch every level off).
    """
    reference = train_X.median()
    for cols in input_groups(list(train_X.columns)).values():
        if len(cols) > 1:
            names = train_X.columns[cols]
            reference[names] = np.asarray(train_X[names].value_counts().index[0], dtype=float)
    return reference


def median_substitution(
    model: ChurnSegmentModel, X: pd.DataFrame, reference: pd.Series
) -> pd.DataFrame:
    """Per customer and input group: churn probability minus that with the group at the reference.

    Positive: this customer's own value of the group pushes churn up compared
    with a typical customer (:func:`reference_inputs`); one group changed at a
    time, the others kept. Rows: groups; columns: customers.
    """
    base = model.network.predict_churn_proba(X)
    out = {}
    for label, cols in input_groups(list(X.columns)).items():
        changed = X.copy()
        changed.iloc[:, cols] = np.broadcast_to(
            reference.iloc[cols].to_numpy(), (len(X), len(cols))
        )
        out[label] = base - model.network.predict_churn_proba(changed)
    return pd.DataFrame(out, index=X.index).T.rename_axis("input")

"""The BP network's inputs and targets: checks with errors that name what is wrong, the split.

``y`` is 1-D segment labels, ``[segment, churn]`` or ``[segment, churn, spend]``
(see :class:`~models.network.BPNetworkClassifier`); ``X`` must be finite.
:func:`prepare_fit` turns them into the standardised training and validation
rows that :func:`models.network_training.train_heads` trains on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length, check_is_fitted, validate_data

TARGET_COLUMNS = ("segment", "churn")
SPEND_COLUMN = "spend"
"""Optional third target column: the spend in the horizon (zero-inflated, >= 0)."""


def split_targets(y: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Split ``y`` into segment labels and (if present) 0/1 churn and spend, as floats."""
    spend = None
    if isinstance(y, pd.DataFrame):
        columns = set(map(str, y.columns))
        if columns not in (set(TARGET_COLUMNS), {*TARGET_COLUMNS, SPEND_COLUMN}):
            raise ValueError(
                f"A DataFrame y must have exactly the columns {list(TARGET_COLUMNS)} "
                f"(and optionally {SPEND_COLUMN!r}); got {list(y.columns)}."
            )
        segment, churn = y["segment"].to_numpy(), y["churn"].to_numpy()
        if SPEND_COLUMN in columns:
            spend = y[SPEND_COLUMN].to_numpy()
    else:
        y = np.asarray(y)
        if y.ndim == 1:
            segment, churn = y, None
        elif y.ndim == 2 and y.shape[1] in (2, 3):
            segment, churn = y[:, 0], y[:, 1]
            spend = y[:, 2] if y.shape[1] == 3 else None
        else:
            raise ValueError(
                "y must be 1-D segment labels or columns [segment, churn] or "
                f"[segment, churn, spend]; got shape {y.shape}."
            )
    missing = pd.isna(segment)
    if missing.any():
        raise ValueError(f"y has {int(missing.sum())} missing segment labels.")
    if spend is not None:
        try:
            spend = np.asarray(spend, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError("spend must be a number >= 0.") from error
        if not (np.isfinite(spend) & (spend >= 0)).all():
            raise ValueError("spend must be finite and >= 0.")
    if churn is None:
        return segment, None, None
    try:
        churn = np.asarray(churn, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError("churn must be 0 or 1.") from error
    invalid = ~np.isin(churn, (0.0, 1.0))
    if invalid.any():
        raise ValueError(
            f"churn must be 0 or 1; {int(invalid.sum())} rows have other values "
            f"(e.g. {churn[invalid][:3].tolist()})."
        )
    return segment, churn, spend


def check_finite(X: np.ndarray, estimator: BaseEstimator) -> np.ndarray:
    """Reject NaN/inf, naming how many rows and which columns hold them."""
    non_finite = ~np.isfinite(X)
    if not non_finite.any():
        return X
    names = getattr(estimator, "feature_names_in_", None)
    described = ", ".join(
        f"{names[j] if names is not None else f'column {j}'} ({int(non_finite[:, j].sum())} rows)"
        for j in np.flatnonzero(non_finite.any(axis=0))
    )
    raise ValueError(
        f"X contains non-finite values (NaN or inf) in {int(non_finite.any(axis=1).sum())} of "
        f"{len(X)} rows, in columns: {described}. Impute or drop them before "
        f"{type(estimator).__name__}."
    )


def check_hidden_layers(hidden_layers: Sequence[int]) -> tuple[int, ...]:
    if not all(isinstance(width, Integral) and width >= 1 for width in hidden_layers):
        raise ValueError(f"hidden_layers must be positive integers; got {tuple(hidden_layers)!r}.")
    return tuple(int(width) for width in hidden_layers)


def check_eval_set(
    estimator: BaseEstimator,
    eval_set: tuple[Any, Any],
    classes: np.ndarray,
    has_churn_head: bool,
    has_spend_head: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Validate ``eval_set`` against the fitted inputs and heads.

    Returns the finite validation inputs, their segment codes (indices into
    ``classes``), and churn and spend for the heads being trained (``None``
    for absent heads).
    """
    X_val, y_val = eval_set
    X_val = check_finite(
        validate_data(estimator, X_val, dtype=np.float64, ensure_all_finite=False, reset=False),
        estimator,
    )
    segment, churn, spend = split_targets(y_val)
    check_consistent_length(X_val, segment)
    unseen = np.setdiff1d(segment, classes)
    if unseen.size:
        raise ValueError(
            f"eval_set has segment labels not seen in y: {unseen.tolist()}; "
            f"known labels are {classes.tolist()}."
        )
    if has_churn_head and churn is None:
        raise ValueError("eval_set needs a churn column because y has one.")
    if has_spend_head and spend is None:
        raise ValueError("eval_set needs a spend column because y has one.")
    return (
        X_val,
        np.searchsorted(classes, segment),
        churn if has_churn_head else None,
        spend if has_spend_head else None,
    )


def validation_split(
    codes: np.ndarray, validation_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/validation row indices, stratified on the segment when possible."""
    rows = np.arange(len(codes))
    stratify = codes if np.bincount(codes).min() >= 2 else None
    try:
        return train_test_split(
            rows, test_size=validation_fraction, random_state=seed, stratify=stratify
        )
    except ValueError:
        # Too few rows to give every segment a place on both sides.
        return train_test_split(rows, test_size=validation_fraction, random_state=seed)


@dataclass(frozen=True)
class FitData:
    """Validated training data, split for early stopping and standardised.

    ``train`` and ``val`` are ``(X, segment codes, churn, spend)`` with ``X``
    standardised by the training rows' ``input_mean`` and ``input_scale``;
    churn and spend are ``None`` for heads not trained. ``codes`` and
    ``churn`` cover every row of ``y`` (they set the loss weights).
    """

    classes: np.ndarray
    codes: np.ndarray
    churn: np.ndarray | None
    train: tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]
    val: tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]
    input_mean: np.ndarray
    input_scale: np.ndarray
    seed: int

    @property
    def has_churn_head(self) -> bool:
        """Whether the churn head is trained."""
        return self.churn is not None

    @property
    def has_spend_head(self) -> bool:
        """Whether the spend head is trained."""
        return self.train[3] is not None


def prepare_fit(estimator: Any, X: Any, y: Any, eval_set: tuple[Any, Any] | None) -> FitData:
    """Check ``X`` and ``y``, decide the heads, split off validation rows and standardise.

    A churn (spend) head is trained when ``y`` has that column and the
    estimator's ``churn_loss_weight`` (``spend_loss_weight``) is above zero.
    The seed drawn from ``estimator.random_state`` seeds the split here and
    the network's generator later.
    """
    X = check_finite(
        validate_data(estimator, X, dtype=np.float64, ensure_all_finite=False), estimator
    )
    if y is None:
        raise ValueError(
            f"{type(estimator).__name__} requires y to be passed, but the target y is None."
        )
    segment, churn, spend = split_targets(y)
    check_classification_targets(segment)
    check_consistent_length(X, segment)
    classes = np.unique(segment)
    codes = np.searchsorted(classes, segment)
    has_churn_head = churn is not None and estimator.churn_loss_weight > 0
    if not has_churn_head:
        churn = None
    elif np.unique(churn).size < 2:
        raise ValueError("churn has a single class in y; it needs both 0 and 1 to be learned.")
    has_spend_head = spend is not None and estimator.spend_loss_weight > 0
    if not has_spend_head:
        spend = None

    seed = int(check_random_state(estimator.random_state).randint(np.iinfo(np.int32).max))
    if eval_set is None:
        train_idx, val_idx = validation_split(codes, estimator.validation_fraction, seed)
        X_train, X_val = X[train_idx], X[val_idx]
        codes_train, codes_val = codes[train_idx], codes[val_idx]
        churn_train, churn_val = (
            (None, None) if churn is None else (churn[train_idx], churn[val_idx])
        )
        spend_train, spend_val = (
            (None, None) if spend is None else (spend[train_idx], spend[val_idx])
        )
    else:
        X_train, codes_train, churn_train, spend_train = X, codes, churn, spend
        X_val, codes_val, churn_val, spend_val = check_eval_set(
            estimator, eval_set, classes, has_churn_head, has_spend_head
        )

    input_mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    input_scale = np.where(std > np.finfo(np.float64).eps, std, 1.0)
    return FitData(
        classes=classes,
        codes=codes,
        churn=churn,
        train=((X_train - input_mean) / input_scale, codes_train, churn_train, spend_train),
        val=((X_val - input_mean) / input_scale, codes_val, churn_val, spend_val),
        input_mean=input_mean,
        input_scale=input_scale,
        seed=seed,
    )


_HEAD_HINTS = {
    "churn": "it was fitted on segment labels only (1-D y) or with churn_loss_weight=0. "
    "Fit with y = [segment, churn] columns to predict churn.",
    "spend": "fit with y = [segment, churn, spend] columns to predict spend.",
}


def require_head(estimator: Any, head: str) -> None:
    """Raise unless ``estimator`` is fitted with the ``head`` ("churn" or "spend") head.

    Checks ``classes_`` (set with the weights): asking for ``module_`` would
    rebuild the torch module of a loaded model (:mod:`models.network_arrays`).
    """
    check_is_fitted(estimator, "classes_")
    if not getattr(estimator, f"has_{head}_head_", False):
        raise ValueError(f"This {type(estimator).__name__} has no {head} head: {_HEAD_HINTS[head]}")

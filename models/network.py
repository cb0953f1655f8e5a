"""The back-propagation (BP) network of docs/methods.md §2.5, as a scikit-learn estimator.

A PyTorch module with up to three heads trained together by back-propagation:
the value-cube segment (a ReLU multilayer perceptron, softmax over the
observed segment codes), the churn probability (sigmoid over an observed 0/1
label; by default linear in the inputs, optionally also reading the hidden
layers) and, for forecasts, the spend in the horizon (a zero-inflated
lognormal or Tweedie head, :mod:`models.spend_loss`).

This module holds the estimator; the PyTorch module is in
:mod:`models.network_heads`, the training loop in :mod:`models.network_training`
and the checks of ``X`` and ``y`` in :mod:`models.network_inputs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.metrics import accuracy_score
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from valuecube.models import network_arrays
from valuecube.models.network_inputs import (
    SPEND_COLUMN,
    TARGET_COLUMNS,
    check_finite,
    check_hidden_layers,
    prepare_fit,
    require_head,
    split_targets,
)
from valuecube.models.spend_loss import SPEND_LOSSES, expected_spend_numpy

if TYPE_CHECKING:  # torch loads only to train and to attribute (reasons): scoring runs in NumPy
    import torch

    from valuecube.models.network_training import EpochCallback

__all__ = ["SPEND_COLUMN", "TARGET_COLUMNS", "BPNetworkClassifier", "EpochCallback"]


def __getattr__(name: str) -> Any:
    """Names loaded on first use: ``EpochCallback`` and the torch classes older pickles refer to.

    Estimators pickled before the weights were stored as arrays hold their
    ``module_`` as ``_TwoHeadMLP``/``_HeadSnapshots`` of this module; loading
    one imports torch then, and only then.
    """
    if name == "EpochCallback":
        from valuecube.models.network_training import EpochCallback

        return EpochCallback
    if name in ("_TwoHeadMLP", "_HeadSnapshots"):
        from valuecube.models import network_heads

        return getattr(network_heads, name[1:])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class BPNetworkClassifier(ClassifierMixin, BaseEstimator):
    """Two-headed back-propagation network for value-cube segment and churn.

    The BP network of docs/methods.md §2.5: every input is standardised (needed for
    convergence), then a multilayer perceptron with ReLU hidden layers is
    trained by back-propagation so that new customers are placed in a value
    segment without re-running the expert (fuzzy) evaluation. A second head
    predicts the probability of churn from observed labels, a third (for
    forecasts) the spend in the horizon; :class:`~models.network_heads.TwoHeadMLP`
    describes the heads. The default churn head is the wide (linear) path:
    the churn signal of both bundled datasets is close to linear, and the
    deep path overfits it within a few epochs.

    The training objective

        L = (1 - w) * CE(segment) + w * BCE(churn) + w_s * S(spend),

    with ``w = churn_loss_weight``, ``w_s = spend_loss_weight`` and S the
    spend loss (:mod:`models.spend_loss`), is minimised with AdamW on
    shuffled mini-batches, with early stopping per head
    (:func:`~models.network_training.train_heads`): segments are predicted
    with the weights of the epoch of lowest validation segment log loss,
    churn with those of lowest churn log loss, spend likewise.

    Parameters
    ----------
    hidden_layers : tuple of int, default=(64, 32)
        Width of each hidden layer, input side first. ``()`` gives a linear
        (multinomial-logistic) model.
    dropout : float in [0, 1), default=0.1
        Dropout rate after every hidden layer during training.
    learning_rate : float, default=1e-3
        AdamW learning rate.
    weight_decay : float, default=1e-4
        AdamW (decoupled) weight decay.
    batch_size : int, default=256
        Mini-batch size; validation is evaluated in one full batch.
    max_epochs : int, default=200
        Upper bound on training epochs.
    patience : int, default=15
        Stop after this many epochs in which neither head's validation log
        loss reached a new low.
    churn_loss_weight : float in [0, 1], default=0.5
        Weight ``w`` of the churn loss. Ignored when ``y`` has no churn
        column; with ``w = 0`` the churn head is not built; with ``w = 1``
        the segment head receives no gradient. With the wide churn head the
        heads share no weights, and AdamW is invariant to the scale of each
        parameter's loss, so ``w`` then only weights ``val_loss``.
    spend_loss : {"ziln", "tweedie"}, default="ziln"
        Loss of the spend head: the zero-inflated lognormal (Wang, Liu & Miao
        2019) or the Tweedie deviance (power 1.5). See docs/forecasting.md for
        the validation runs that chose the default.
    spend_loss_weight : float >= 0, default=0.5
        Weight ``w_s`` of the spend loss; ignored without a spend column.
    churn_head : {"wide", "wide_deep", "deep"}, default="wide"
        The churn logit's paths: ``"wide"`` a linear map of the standardised
        inputs, ``"deep"`` a linear map of the last hidden layer (sharing
        the segment trunk), ``"wide_deep"`` their sum.
    class_weight : {"balanced"} or None, default="balanced"
        ``"balanced"`` weights the segment cross-entropy by inverse class
        frequency in ``y`` (:func:`sklearn.utils.class_weight.compute_class_weight`).
    churn_pos_weight : {"balanced"} or None, default=None
        ``"balanced"`` sets the BCE ``pos_weight`` to ``n_negative / n_positive``.
        The default leaves the churn loss unweighted so that
        :meth:`predict_churn_proba` stays a calibrated probability (batch jobs
        write it out as the churn score); balancing trades calibration for
        recall of the minority class and inflates every predicted probability.
    validation_fraction : float in (0, 1), default=0.15
        Share of the training rows held out for early stopping when no
        ``eval_set`` is passed to :meth:`fit`. The split is stratified on the
        segment when every segment has at least two rows.
    random_state : int, RandomState instance or None, default=0
        Seeds weight initialisation, dropout, shuffling and the validation
        split. Only a local ``torch.Generator`` is used, never the global
        torch RNG: the same seed and data give bit-identical predictions on
        CPU.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Segment labels seen in ``y``, sorted; columns of :meth:`predict_proba`.
    n_features_in_ : int
        Number of input features.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Input column names; only set when ``X`` is a DataFrame with string
        column names.
    input_mean_ : ndarray of shape (n_features_in_,)
        Per-feature mean of the training rows, frozen at fit.
    input_scale_ : ndarray of shape (n_features_in_,)
        Per-feature standard deviation of the training rows (1.0 where it is
        zero), frozen at fit.
    has_churn_head_ : bool
        Whether the churn head was trained (``y`` had a churn column and
        ``churn_loss_weight > 0``).
    module_ : torch.nn.Module
        The trained network in eval mode: ``module_.segment`` holds the
        weights of ``best_segment_epoch_``, ``module_.churn`` those of
        ``best_churn_epoch_`` (the same module when the epochs are equal;
        ``None`` without a churn head). ``module_(x)`` maps standardised
        inputs to ``(segment_logits, churn_logit)``, each from its snapshot.
    history_ : list of dict
        Per-epoch metrics, ``history_[epoch]``: ``train_loss``, ``val_loss``
        (the weighted objective ``L``), ``val_segment_accuracy``,
        ``val_segment_logloss`` and, with a churn head, ``val_churn_logloss``
        and ``val_churn_auc`` (NaN when the validation churn labels have a
        single class). The two log losses are unweighted, so runs with
        different loss weights compare on them; they choose the snapshots.
    best_segment_epoch_ : int
        Index into ``history_`` of the segment snapshot (lowest
        ``val_segment_logloss``).
    has_spend_head_ : bool
        Whether the spend head was trained (``y`` had a spend column and
        ``spend_loss_weight > 0``); ``module_.spend`` then holds the weights
        of ``best_spend_epoch_`` (lowest ``val_spend_loss``).
    best_spend_epoch_ : int or None
        Index into ``history_`` of the spend snapshot; ``None`` without one.
    best_churn_epoch_ : int or None
        Index into ``history_`` of the churn snapshot (lowest
        ``val_churn_logloss``); ``None`` without a churn head.
    n_epochs_ : int
        Number of epochs run (``len(history_)``).

    Notes
    -----
    ``y`` is either a 1-D array of segment labels, or two columns
    ``[segment, churn]`` (a DataFrame must name them ``segment`` and
    ``churn``) with churn in {0, 1}, or three ``[segment, churn, spend]``
    with spend >= 0 (the forecasting network). Non-finite values in ``X`` are rejected
    with the rows and columns that contain them.

    :meth:`score` is the segment accuracy, so the estimator works in
    ``cross_val_score`` and ``GridSearchCV`` with either form of ``y``. With
    the two-column form pass an explicit ``cv`` (e.g. the folds of
    ``StratifiedKFold().split(X, y["segment"])``): scikit-learn cannot infer a
    splitter from a mixed-type two-column target.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(size=(600, 3))
    >>> segment = np.where(X[:, 0] >= 0.5, "high_value", "low_value")
    >>> churn = (X[:, 1] < 0.3).astype(int)
    >>> net = BPNetworkClassifier(hidden_layers=(16,), max_epochs=50)
    >>> net = net.fit(X, np.column_stack([segment, churn]))
    >>> net.predict(X[:2]).tolist()
    ['high_value', 'low_value']
    >>> net.predict_churn_proba(X[:2]).shape
    (2,)
    """

    _parameter_constraints: ClassVar[dict[str, list]] = {
        "hidden_layers": [tuple, list],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "churn_loss_weight": [Interval(Real, 0, 1, closed="both")],
        "churn_head": [StrOptions({"wide", "wide_deep", "deep"})],
        "spend_loss": [StrOptions(set(SPEND_LOSSES))],
        "spend_loss_weight": [Interval(Real, 0, None, closed="left")],
        "class_weight": [StrOptions({"balanced"}), None],
        "churn_pos_weight": [StrOptions({"balanced"}), None],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        hidden_layers: Sequence[int] = (64, 32),
        dropout: float = 0.1,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        batch_size: int = 256,
        max_epochs: int = 200,
        patience: int = 15,
        churn_loss_weight: float = 0.5,
        churn_head: str = "wide",
        spend_loss: str = "ziln",
        spend_loss_weight: float = 0.5,
        class_weight: str | None = "balanced",
        churn_pos_weight: str | None = None,
        validation_fraction: float = 0.15,
        random_state: int | np.random.RandomState | None = 0,
    ) -> None:
        self.hidden_layers = hidden_layers
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.churn_loss_weight = churn_loss_weight
        self.churn_head = churn_head
        self.spend_loss = spend_loss
        self.spend_loss_weight = spend_loss_weight
        self.class_weight = class_weight
        self.churn_pos_weight = churn_pos_weight
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(
        self,
        X: Any,
        y: Any,
        *,
        eval_set: tuple[Any, Any] | None = None,
        on_epoch: EpochCallback | None = None,
    ) -> BPNetworkClassifier:
        """Train the network by back-propagation with early stopping.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Numeric, finite inputs.
        y : array-like of shape (n_samples,) or (n_samples, 2)
            Segment labels, or ``[segment, churn]`` columns (see Notes).
        eval_set : tuple (X_val, y_val), optional
            Validation data for early stopping, in the same formats as
            ``X``/``y``. When omitted, ``validation_fraction`` of the rows is
            held out instead.
        on_epoch : callable, optional
            Called as ``on_epoch(epoch, metrics)`` after every epoch with the
            0-based epoch index and that epoch's ``history_`` entry. Anything
            it raises (e.g. ``optuna.TrialPruned``) propagates.

        Returns
        -------
        self : BPNetworkClassifier
        """
        import torch

        from valuecube.models.network_training import (
            Tensors,
            build_module,
            build_objective,
            train_heads,
        )

        hidden_layers = check_hidden_layers(self.hidden_layers)
        data = prepare_fit(self, X, y, eval_set)
        objective = build_objective(
            data.codes,
            len(data.classes),
            data.churn,
            class_weight=self.class_weight,
            churn_pos_weight=self.churn_pos_weight,
            churn_weight=self.churn_loss_weight,
            spend_loss=self.spend_loss if data.has_spend_head else None,
            spend_weight=self.spend_loss_weight,
        )
        generator = torch.Generator().manual_seed(data.seed)
        module = build_module(
            n_features=self.n_features_in_,
            hidden_layers=hidden_layers,
            dropout=self.dropout,
            n_classes=len(data.classes),
            churn_head=self.churn_head if data.has_churn_head else None,
            spend_loss=self.spend_loss if data.has_spend_head else None,
            spend_train=data.train[3],
            generator=generator,
        )
        # Learned attributes are set together once training has finished, so a fit that
        # fails (or is pruned by on_epoch) never leaves a half-updated estimator.
        trained = train_heads(
            module,
            objective,
            Tensors.build(*data.train),
            Tensors.build(*data.val),
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            patience=self.patience,
            generator=generator,
            on_epoch=on_epoch,
        )
        self.classes_ = data.classes
        self.input_mean_ = data.input_mean
        self.input_scale_ = data.input_scale
        self.has_churn_head_ = data.has_churn_head
        self.has_spend_head_ = data.has_spend_head
        self.module_ = trained.module
        # the arrays the NumPy forward pass reads, made now so that predicting changes no state
        self.__dict__["_weights"] = network_arrays.snapshot_arrays(self.module_)
        self.history_ = trained.history
        self.best_segment_epoch_ = trained.best_segment_epoch
        self.best_churn_epoch_ = trained.best_churn_epoch
        self.best_spend_epoch_ = trained.best_spend_epoch
        self.n_epochs_ = len(trained.history)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Most probable segment label for each row, from ``classes_``."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Segment probabilities, shape (n_samples, n_classes), columns as ``classes_``."""
        check_is_fitted(self, "classes_")
        segment = self.weights_["segment"]
        return network_arrays.softmax(network_arrays.segment_logits(segment, self._standardised(X)))

    def predict_churn_proba(self, X: Any) -> np.ndarray:
        """Churn probability for each row, shape (n_samples,).

        Raises
        ------
        ValueError
            If the network was fitted without a churn column (or with
            ``churn_loss_weight=0``), so no churn head was trained.
        """
        require_head(self, "churn")
        x = self._standardised(X)
        return network_arrays.sigmoid(network_arrays.churn_logit(self.weights_, x))

    def predict_with_churn(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(predict(X), predict_churn_proba(X))`` with one forward pass per snapshot."""
        require_head(self, "churn")
        segment_logits, churn_logit, _ = self._forward(X)
        proba = network_arrays.softmax(segment_logits)
        return self.classes_[np.argmax(proba, axis=1)], network_arrays.sigmoid(churn_logit)

    def predict_spend(self, X: Any) -> np.ndarray:
        """Expected spend in the horizon for each row, shape (n_samples,).

        Raises
        ------
        ValueError
            If the network was fitted without a spend column.
        """
        require_head(self, "spend")
        return expected_spend_numpy(self.spend_loss, self._forward(X)[2])

    def predict_forecast(self, X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(predict(X), predict_churn_proba(X), predict_spend(X))``, one pass per snapshot."""
        require_head(self, "churn")
        require_head(self, "spend")
        segment_logits, churn_logit, spend = self._forward(X)
        proba = network_arrays.softmax(segment_logits)
        return (
            self.classes_[np.argmax(proba, axis=1)],
            network_arrays.sigmoid(churn_logit),
            expected_spend_numpy(self.spend_loss, spend),
        )

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Segment accuracy on ``(X, y)``; a churn column in ``y`` is ignored."""
        segment = split_targets(y)[0]
        return float(accuracy_score(segment, self.predict(X), sample_weight=sample_weight))

    def _forward(self, X: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Segment logits, churn logit and spend outputs of the validated ``X`` (NumPy, float32).

        :func:`models.network_arrays.forward` on the checked input, standardised
        block by block: no torch, no autograd. Batch scoring passes 100,000
        rows at a time.
        """
        return network_arrays.forward(self.weights_, self._checked(X), self._standardise_rows)

    def _standardised(self, X: Any) -> np.ndarray:
        """The validated ``X`` as the first layer takes it: standardised in float64, as float32."""
        return self._standardise(self._checked(X))

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        """``(X − mean) / scale`` in float64, rounded to float32, in ``X``'s memory order.

        One float64 temporary; a column-major matrix from
        :class:`~models.design.NetworkDesign` stays so (BLAS may order a
        product's sums by the memory order).
        """
        standardised = np.empty_like(X, dtype=np.float32)
        np.divide(
            np.subtract(X, self.input_mean_),
            self.input_scale_,
            out=standardised,
            casting="same_kind",
        )
        return standardised

    def _standardise_rows(self, rows: np.ndarray) -> np.ndarray:
        """A block of checked rows standardised, in float64 for the NumPy layers.

        The same float32 values as :meth:`_standardised`; a block's temporaries
        stay in the CPU cache instead of passing over a whole chunk twice.
        """
        return self._standardise(rows).astype(np.float64)

    def _checked(self, X: Any) -> np.ndarray:
        """``X`` validated against the fitted columns as float64, every value finite."""
        names = getattr(self, "feature_names_in_", None)
        columns = getattr(X, "columns", None)
        if (  # the design's own matrix: its columns are the fitted names, checked cheaply here
            names is not None
            and columns is not None
            and len(columns) == len(names)
            and (columns == names).all()
            and all(dtype == np.float64 for dtype in X.dtypes)
        ):
            X = X.to_numpy(dtype=np.float64)
        else:  # scikit-learn's full check of names, shape and dtype: costly for a few rows
            X = validate_data(self, X, dtype=np.float64, ensure_all_finite=False, reset=False)
        return check_finite(X, self)

    def standardise(self, X: Any) -> torch.Tensor:
        """The validated ``X`` as the torch module takes it (float32, standardised)."""
        import torch

        return torch.from_numpy(self._standardised(X))

    @property
    def weights_(self) -> dict[str, Any]:
        """The snapshots' weights as arrays (:mod:`models.network_arrays`), what pickles hold."""
        weights = self.__dict__.get("_weights")
        if weights is None:
            weights = self.__dict__["_weights"] = network_arrays.snapshot_arrays(self.module_)
        return weights

    def __getattr__(self, name: str) -> Any:
        """``module_`` (torch), rebuilt from the arrays on first use (training and reasons)."""
        if name == "module_" and "_weights" in self.__dict__:
            module = network_arrays.build_snapshots(self.__dict__["_weights"])
            self.__dict__["module_"] = module
            return module
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __getstate__(self) -> dict[str, Any]:
        """The pickled state: the weights as arrays instead of the torch module."""
        state = super().__getstate__()
        if "module_" in state or "_weights" in state:
            state = dict(state)
            state["_weights"] = self.weights_
            state.pop("module_", None)
        return state

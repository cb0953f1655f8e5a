"""The back-propagation (BP) network of docs/methods.md §2.5, as a scikit-learn estimator.

A PyTorch module with up to three heads trained together by back-propagation:
the value-cube segment (a ReLU multilayer perceptron, softmax over the
observed segment codes), the churn probability (sigmoid over an observed 0/1
label; by default linear in the inputs, optionally also reading the hidden
layers) and, for forecasts, the spend in the horizon (a zero-inflated
lognormal or Tweedie head, :mod:`models.spend_loss`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from itertools import pairwise
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length, check_is_fitted, validate_data
from torch import nn

from valuecube.models.spend_loss import (
    SPEND_LOSSES,
    expected_spend,
    initial_bias,
    spend_loss,
    spend_outputs,
)

EpochCallback = Callable[[int, dict[str, float]], None]

TARGET_COLUMNS = ("segment", "churn")
SPEND_COLUMN = "spend"
"""Optional third target column: the spend in the horizon (zero-inflated, >= 0)."""


class _TwoHeadMLP(nn.Module):
    """ReLU trunk with a segment head (logits) and an optional churn head (logit).

    The churn logit is built from a "deep" path (a linear map of the last
    hidden layer), a "wide" path (a linear map of the inputs), or the sum of
    both, as ``churn_head`` says (``None``: no churn head). The wide weights
    start at zero; in the sum only the deep path has a bias.

    Dropout is applied by hand after every hidden layer so that its masks can
    be drawn from a caller-supplied ``torch.Generator`` (``nn.Dropout`` only
    uses the global RNG).
    """

    def __init__(
        self,
        n_features: int,
        hidden_layers: Sequence[int],
        dropout: float,
        n_classes: int,
        churn_head: str | None,
        n_spend_outputs: int = 0,
    ) -> None:
        super().__init__()
        sizes = [n_features, *hidden_layers]
        self.hidden = nn.ModuleList(nn.Linear(n_in, n_out) for n_in, n_out in pairwise(sizes))
        self.dropout = dropout
        self.segment_head = nn.Linear(sizes[-1], n_classes)
        deep = churn_head in ("deep", "wide_deep")
        self.churn_deep = nn.Linear(sizes[-1], 1) if deep else None
        wide = churn_head in ("wide", "wide_deep")
        self.churn_wide = nn.Linear(n_features, 1, bias=not deep) if wide else None
        # the spend head reads the trunk (deep) plus the inputs (wide, starting at zero)
        self.spend_deep = nn.Linear(sizes[-1], n_spend_outputs) if n_spend_outputs else None
        self.spend_wide = (
            nn.Linear(n_features, n_spend_outputs, bias=False) if n_spend_outputs else None
        )

    def reset_parameters(self, generator: torch.Generator) -> None:
        """He-uniform hidden weights, PyTorch-default head weights, zero biases and wide weights."""
        for layer in self.hidden:
            nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu", generator=generator)
            nn.init.zeros_(layer.bias)
        for head in (self.segment_head, self.churn_deep, self.spend_deep):
            if head is not None:
                bound = 1.0 / math.sqrt(head.in_features)
                nn.init.uniform_(head.weight, -bound, bound, generator=generator)
                nn.init.zeros_(head.bias)
        for wide_head in (self.churn_wide, self.spend_wide):
            if wide_head is not None:
                for parameter in wide_head.parameters():
                    nn.init.zeros_(parameter)

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        inputs = x
        keep = 1.0 - self.dropout
        for layer in self.hidden:
            x = torch.relu(layer(x))
            if self.training and self.dropout > 0:
                x = x * torch.bernoulli(torch.full_like(x, keep), generator=generator) / keep
        churn_logit = None if self.churn_deep is None else self.churn_deep(x)
        if self.churn_wide is not None:
            wide = self.churn_wide(inputs)
            churn_logit = wide if churn_logit is None else churn_logit + wide
        spend = None if self.spend_deep is None else self.spend_deep(x) + self.spend_wide(inputs)
        churn_logit = None if churn_logit is None else churn_logit.squeeze(-1)
        return self.segment_head(x), churn_logit, spend

    def churn_logit(self, x: torch.Tensor) -> torch.Tensor | None:
        """The churn logit alone: the hidden layers only run when the deep path reads them."""
        if self.churn_deep is not None:
            return self.forward(x)[1]
        return None if self.churn_wide is None else self.churn_wide(x).squeeze(-1)


class _HeadSnapshots(nn.Module):
    """The trained network as best-validation snapshots: one per head.

    ``segment`` holds the weights of the epoch with the lowest validation
    segment log loss, ``churn`` those of the lowest validation churn log loss
    (``None`` without a churn head). When both heads were best at the same
    epoch, ``churn`` is ``segment`` and :meth:`forward` runs once; otherwise
    the churn snapshot computes only its churn logit (for the default wide
    head, one linear map, not a second pass through the hidden layers).
    ``spend`` (lowest validation spend loss) likewise, when there is a
    spend head.
    """

    def __init__(
        self, segment: _TwoHeadMLP, churn: _TwoHeadMLP | None, spend: _TwoHeadMLP | None = None
    ) -> None:
        super().__init__()
        self.segment = segment
        self.churn = churn
        self.spend = spend

    def forward(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Segment logits, churn logit and spend outputs, each from its head's snapshot."""
        segment_logits, churn_logit, spend = self.segment(x)
        if self.churn is not None and self.churn is not self.segment:
            churn_logit = self.churn.churn_logit(x)
        if self.spend is not None and self.spend is not self.segment:
            spend = self.spend(x)[2]
        return segment_logits, churn_logit, spend

    def churn_logit(self, x: torch.Tensor) -> torch.Tensor | None:
        """The churn logit from the churn snapshot."""
        return None if self.churn is None else self.churn.churn_logit(x)


class _Checkpoint:
    """The lowest value so far of one validation metric, its epoch, and the weights then."""

    def __init__(self, metric: str) -> None:
        self.metric = metric
        self.loss = math.inf
        self.epoch = 0
        self.state: dict[str, torch.Tensor] | None = None

    def update(self, epoch: int, metrics: dict[str, float], module: nn.Module) -> None:
        """Keep a copy of ``module``'s weights if ``metrics[metric]`` is a new low (never NaN)."""
        if metrics[self.metric] < self.loss:
            self.loss, self.epoch = metrics[self.metric], epoch
            self.state = copy.deepcopy(module.state_dict())


class BPNetworkClassifier(ClassifierMixin, BaseEstimator):
    """Two-headed back-propagation network for value-cube segment and churn.

    The BP network of docs/methods.md §2.5: every input is standardised (needed for
    convergence), then a multilayer perceptron with ReLU hidden layers is
    trained by back-propagation so that new customers are placed in a value
    segment without re-running the expert (fuzzy) evaluation. A second head
    predicts the probability of churn from observed labels. Its logit comes
    from a "wide" path (linear in the standardised inputs: logistic
    regression, trained in the same module by back-propagation), a "deep"
    path (linear in the last hidden layer) or their sum (``churn_head``). The
    default is the wide path alone: on both bundled datasets the churn signal
    is close to linear, and in validation runs the deep path, alone or added
    to the wide one, overfitted within a few epochs and cost churn ROC-AUC.

    The training objective is

        L = (1 - w) * CE(segment) + w * BCE(churn) + w_s * S(spend),

    with ``w = churn_loss_weight``, ``w_s = spend_loss_weight`` and S the
    spend loss (only when ``y`` has a ``spend`` column; see
    :mod:`models.spend_loss`). The spend head reads the last hidden layer and
    the inputs; it shares the trunk with the segment head, so the trunk also
    learns how much a customer will buy — what decides their next segment.

    minimised with AdamW on shuffled mini-batches. The heads stop improving
    at different epochs, so early stopping is per head: after every epoch
    the weights are snapshotted when the validation segment log loss, or the
    validation churn log loss, is the lowest so far, and training stops when
    neither has improved for ``patience`` epochs. Segments are then predicted
    with the segment snapshot and churn with the churn snapshot (one module
    when both heads were best at the same epoch).

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

    References
    ----------
    D. E. Rumelhart, G. E. Hinton and R. J. Williams, "Learning
    representations by back-propagating errors", Nature 323, 533-536, 1986.

    I. Loshchilov and F. Hutter, "Decoupled Weight Decay Regularization",
    ICLR 2019.

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
        hidden_layers = _check_hidden_layers(self.hidden_layers)
        X = _check_finite(validate_data(self, X, dtype=np.float64, ensure_all_finite=False), self)
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        segment, churn, spend = _split_targets(y)
        check_classification_targets(segment)
        check_consistent_length(X, segment)
        classes = np.unique(segment)
        codes = np.searchsorted(classes, segment)
        has_churn_head = churn is not None and self.churn_loss_weight > 0
        if not has_churn_head:
            churn = None
        elif np.unique(churn).size < 2:
            raise ValueError("churn has a single class in y; it needs both 0 and 1 to be learned.")
        has_spend_head = spend is not None and self.spend_loss_weight > 0
        if not has_spend_head:
            spend = None

        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        if eval_set is None:
            train_idx, val_idx = _validation_split(codes, self.validation_fraction, seed)
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
            X_val, codes_val, churn_val, spend_val = self._check_eval_set(
                eval_set, classes, has_churn_head, has_spend_head
            )

        # Learned attributes are set together once training has finished, so a fit that
        # fails (or is pruned by on_epoch) never leaves a half-updated estimator.
        input_mean = X_train.mean(axis=0)
        std = X_train.std(axis=0)
        input_scale = np.where(std > np.finfo(np.float64).eps, std, 1.0)

        segment_weight = None
        if self.class_weight == "balanced":
            weights = compute_class_weight("balanced", classes=np.arange(len(classes)), y=codes)
            segment_weight = torch.as_tensor(weights, dtype=torch.float32)
        pos_weight = None
        if churn is not None and self.churn_pos_weight == "balanced":
            n_pos = float(churn.sum())
            pos_weight = torch.tensor((len(churn) - n_pos) / n_pos)
        objective = _Objective(
            segment_loss=nn.CrossEntropyLoss(weight=segment_weight),
            churn_loss=nn.BCEWithLogitsLoss(pos_weight=pos_weight),
            churn_weight=self.churn_loss_weight if has_churn_head else 0.0,
            spend_loss=self.spend_loss if has_spend_head else None,
            spend_weight=self.spend_loss_weight,
        )

        generator = torch.Generator().manual_seed(seed)
        module = _TwoHeadMLP(
            n_features=self.n_features_in_,
            hidden_layers=hidden_layers,
            dropout=self.dropout,
            n_classes=len(classes),
            churn_head=self.churn_head if has_churn_head else None,
            n_spend_outputs=spend_outputs(self.spend_loss) if has_spend_head else 0,
        )
        module.reset_parameters(generator)
        if has_spend_head:
            with torch.no_grad():
                module.spend_deep.bias.copy_(
                    torch.as_tensor(initial_bias(self.spend_loss, spend_train))
                )
        optimizer = torch.optim.AdamW(
            module.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        train = _Tensors.build(
            (X_train - input_mean) / input_scale, codes_train, churn_train, spend_train
        )
        val = _Tensors.build((X_val - input_mean) / input_scale, codes_val, churn_val, spend_val)

        history: list[dict[str, float]] = []
        segment_best = _Checkpoint("val_segment_logloss")
        churn_best = _Checkpoint("val_churn_logloss") if has_churn_head else None
        spend_best = _Checkpoint("val_spend_loss") if has_spend_head else None
        checkpoints = [c for c in (segment_best, churn_best, spend_best) if c is not None]
        for epoch in range(self.max_epochs):
            train_loss = _train_one_epoch(
                module, optimizer, objective, train, self.batch_size, generator
            )
            metrics = {"train_loss": train_loss, **_evaluate(module, objective, val)}
            history.append(metrics)
            for checkpoint in checkpoints:
                checkpoint.update(epoch, metrics, module)
            if on_epoch is not None:
                on_epoch(epoch, dict(metrics))
            if epoch - max(checkpoint.epoch for checkpoint in checkpoints) >= self.patience:
                break

        if any(checkpoint.state is None for checkpoint in checkpoints):
            raise RuntimeError(
                "Training diverged: a validation log loss was never finite. "
                "Try a smaller learning_rate."
            )
        churn_module = _snapshot(module, churn_best, segment_best)
        spend_module = _snapshot(module, spend_best, segment_best)
        module.load_state_dict(segment_best.state)
        self.classes_ = classes
        self.input_mean_ = input_mean
        self.input_scale_ = input_scale
        self.has_churn_head_ = has_churn_head
        self.has_spend_head_ = has_spend_head
        self.module_ = _HeadSnapshots(module, churn_module, spend_module).eval()
        self.history_ = history
        self.best_segment_epoch_ = segment_best.epoch
        self.best_churn_epoch_ = None if churn_best is None else churn_best.epoch
        self.best_spend_epoch_ = None if spend_best is None else spend_best.epoch
        self.n_epochs_ = len(history)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Most probable segment label for each row, from ``classes_``."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Segment probabilities, shape (n_samples, n_classes), columns as ``classes_``."""
        check_is_fitted(self, "module_")
        segment_logits = self._forward(X, self.module_.segment)[0]
        return torch.softmax(segment_logits.double(), dim=1).numpy()

    def predict_churn_proba(self, X: Any) -> np.ndarray:
        """Churn probability for each row, shape (n_samples,).

        Raises
        ------
        ValueError
            If the network was fitted without a churn column (or with
            ``churn_loss_weight=0``), so no churn head was trained.
        """
        self._check_churn_head()
        return torch.sigmoid(self._forward(X, self.module_.churn_logit).double()).numpy()

    def predict_with_churn(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(predict(X), predict_churn_proba(X))`` with one forward pass per snapshot."""
        self._check_churn_head()
        segment_logits, churn_logit, _ = self._forward(X, self.module_)
        proba = torch.softmax(segment_logits.double(), dim=1).numpy()
        return self.classes_[np.argmax(proba, axis=1)], torch.sigmoid(churn_logit.double()).numpy()

    def predict_spend(self, X: Any) -> np.ndarray:
        """Expected spend in the horizon for each row, shape (n_samples,).

        Raises
        ------
        ValueError
            If the network was fitted without a spend column.
        """
        self._check_spend_head()
        output = self._forward(X, lambda x: self.module_.spend(x)[2])
        return expected_spend(self.spend_loss, output.double()).numpy()

    def predict_forecast(self, X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(predict(X), predict_churn_proba(X), predict_spend(X))``, one pass per snapshot."""
        self._check_churn_head()
        self._check_spend_head()
        segment_logits, churn_logit, spend = self._forward(X, self.module_)
        proba = torch.softmax(segment_logits.double(), dim=1).numpy()
        return (
            self.classes_[np.argmax(proba, axis=1)],
            torch.sigmoid(churn_logit.double()).numpy(),
            expected_spend(self.spend_loss, spend.double()).numpy(),
        )

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Segment accuracy on ``(X, y)``; a churn column in ``y`` is ignored."""
        segment = _split_targets(y)[0]
        return float(accuracy_score(segment, self.predict(X), sample_weight=sample_weight))

    def _check_churn_head(self) -> None:
        check_is_fitted(self, "module_")
        if not self.has_churn_head_:
            raise ValueError(
                "This BPNetworkClassifier has no churn head: it was fitted on segment labels "
                "only (1-D y) or with churn_loss_weight=0. Fit with y = [segment, churn] "
                "columns to predict churn."
            )

    def _check_spend_head(self) -> None:
        check_is_fitted(self, "module_")
        if not getattr(self, "has_spend_head_", False):
            raise ValueError(
                "This BPNetworkClassifier has no spend head: fit with y = [segment, churn, "
                "spend] columns to predict spend."
            )

    def _forward(self, X: Any, module: Callable[[torch.Tensor], Any]) -> Any:
        """``module`` applied to the validated, standardised ``X``, without autograd.

        Standardised in float64 and stored as float32, as in training, with one
        float64 temporary and in ``X``'s memory order (a column-major matrix
        from :class:`~models.design.NetworkDesign` stays so: the first layer's
        matrix product reads it as it is). Batch scoring passes 100,000 rows
        at a time.
        """
        X = _check_finite(
            validate_data(self, X, dtype=np.float64, ensure_all_finite=False, reset=False), self
        )
        standardised = np.empty_like(X, dtype=np.float32)
        np.divide(
            np.subtract(X, self.input_mean_),
            self.input_scale_,
            out=standardised,
            casting="same_kind",
        )
        with torch.inference_mode():
            return module(torch.from_numpy(standardised))

    def _check_eval_set(
        self,
        eval_set: tuple[Any, Any],
        classes: np.ndarray,
        has_churn_head: bool,
        has_spend_head: bool,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        X_val, y_val = eval_set
        X_val = _check_finite(
            validate_data(self, X_val, dtype=np.float64, ensure_all_finite=False, reset=False), self
        )
        segment, churn, spend = _split_targets(y_val)
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


class _Objective:
    """(1 - w) * CE(segment) + w * BCE(churn) + w_s * S(spend); absent heads contribute nothing."""

    def __init__(
        self,
        segment_loss: nn.Module,
        churn_loss: nn.Module,
        churn_weight: float,
        spend_loss: str | None = None,
        spend_weight: float = 0.0,
    ) -> None:
        self.segment_loss = segment_loss
        self.churn_loss = churn_loss
        self.churn_weight = churn_weight
        self.spend = spend_loss
        self.spend_weight = spend_weight

    def __call__(self, outputs: tuple, batch: _Tensors) -> torch.Tensor:
        segment_logits, churn_logit, spend = outputs
        loss = self.segment_loss(segment_logits, batch.segment)
        if churn_logit is not None:
            loss = (1 - self.churn_weight) * loss + self.churn_weight * self.churn_loss(
                churn_logit, batch.churn
            )
        if spend is not None:
            loss = loss + self.spend_weight * spend_loss(self.spend, spend, batch.spend)
        return loss


class _Tensors:
    """Standardised inputs and encoded targets as torch tensors."""

    def __init__(
        self,
        X: torch.Tensor,
        segment: torch.Tensor,
        churn: torch.Tensor | None,
        spend: torch.Tensor | None = None,
    ) -> None:
        self.X, self.segment, self.churn, self.spend = X, segment, churn, spend

    @classmethod
    def build(
        cls,
        X: np.ndarray,
        codes: np.ndarray,
        churn: np.ndarray | None,
        spend: np.ndarray | None = None,
    ) -> _Tensors:
        def floats(values: np.ndarray | None) -> torch.Tensor | None:
            # a float32 copy: the labels may be a read-only view of a frame
            return None if values is None else torch.from_numpy(values.astype(np.float32))

        return cls(
            torch.as_tensor(X, dtype=torch.float32),
            torch.as_tensor(codes, dtype=torch.long),
            floats(churn),
            floats(spend),
        )

    def __len__(self) -> int:
        return len(self.segment)

    def subset(self, index: torch.Tensor) -> _Tensors:
        def take(values: torch.Tensor | None) -> torch.Tensor | None:
            return None if values is None else values[index]

        return _Tensors(self.X[index], self.segment[index], take(self.churn), take(self.spend))


def _train_one_epoch(
    module: _TwoHeadMLP,
    optimizer: torch.optim.Optimizer,
    objective: _Objective,
    train: _Tensors,
    batch_size: int,
    generator: torch.Generator,
) -> float:
    """One pass over shuffled mini-batches; returns the row-weighted mean batch loss."""
    module.train()
    order = torch.randperm(len(train), generator=generator)
    total = 0.0
    for start in range(0, len(train), batch_size):
        batch = train.subset(order[start : start + batch_size])
        loss = objective(module(batch.X, generator=generator), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(batch)
    return total / len(train)


def _evaluate(module: _TwoHeadMLP, objective: _Objective, val: _Tensors) -> dict[str, float]:
    """Full-batch validation loss, segment accuracy, churn AUC and spend loss (heads present)."""
    module.eval()
    with torch.inference_mode():
        outputs = module(val.X)
        segment_logits, churn_logit, spend = outputs
        metrics = {
            "val_loss": objective(outputs, val).item(),
            "val_segment_accuracy": (segment_logits.argmax(dim=1) == val.segment)
            .double()
            .mean()
            .item(),
            "val_segment_logloss": nn.functional.cross_entropy(segment_logits, val.segment).item(),
        }
        if spend is not None:
            metrics["val_spend_loss"] = spend_loss(objective.spend, spend, val.spend).item()
    if churn_logit is not None:
        metrics["val_churn_logloss"] = nn.functional.binary_cross_entropy_with_logits(
            churn_logit, val.churn
        ).item()
        labels = val.churn.numpy()
        metrics["val_churn_auc"] = (
            float(roc_auc_score(labels, churn_logit.numpy()))
            if np.unique(labels).size == 2
            else math.nan
        )
    return metrics


def _snapshot(module: _TwoHeadMLP, best: _Checkpoint | None, segment: _Checkpoint) -> Any:
    """The module with ``best``'s weights: ``module`` itself when its epoch is the segment's."""
    if best is None:
        return None
    if best.epoch == segment.epoch:
        return module
    snapshot = copy.deepcopy(module)
    snapshot.load_state_dict(best.state)
    return snapshot


def _validation_split(
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


def _split_targets(y: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
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


def _check_finite(X: np.ndarray, estimator: BPNetworkClassifier) -> np.ndarray:
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


def _check_hidden_layers(hidden_layers: Sequence[int]) -> tuple[int, ...]:
    if not all(isinstance(width, Integral) and width >= 1 for width in hidden_layers):
        raise ValueError(f"hidden_layers must be positive integers; got {tuple(hidden_layers)!r}.")
    return tuple(int(width) for width in hidden_layers)

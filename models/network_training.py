"""Training of the BP network's heads: the objective, the epochs and per-head early stopping.

:func:`train_heads` runs the loop that :meth:`BPNetworkClassifier.fit
<models.network.BPNetworkClassifier.fit>` describes: AdamW on shuffled
mini-batches, a full-batch validation pass after every epoch, a snapshot of the
weights whenever a head's validation loss reaches a new low, and a stop when no
head has improved for ``patience`` epochs.

References
----------
D. E. Rumelhart, G. E. Hinton and R. J. Williams, "Learning representations by
back-propagating errors", Nature 323, 533-536, 1986.

I. Loshchilov and F. Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from sklearn.utils.class_weight import compute_class_weight
from torch import nn

from valuecube.models.network_heads import HeadSnapshots, TwoHeadMLP
from valuecube.models.spend_loss import initial_bias, spend_loss, spend_outputs

EpochCallback = Callable[[int, dict[str, float]], None]


class Checkpoint:
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


class Objective:
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

    def __call__(self, outputs: tuple, batch: Tensors) -> torch.Tensor:
        segment_logits, churn_logit, spend = outputs
        loss = self.segment_loss(segment_logits, batch.segment)
        if churn_logit is not None:
            loss = (1 - self.churn_weight) * loss + self.churn_weight * self.churn_loss(
                churn_logit, batch.churn
            )
        if spend is not None:
            loss = loss + self.spend_weight * spend_loss(self.spend, spend, batch.spend)
        return loss


class Tensors:
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
    ) -> Tensors:
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

    def subset(self, index: torch.Tensor) -> Tensors:
        def take(values: torch.Tensor | None) -> torch.Tensor | None:
            return None if values is None else values[index]

        return Tensors(self.X[index], self.segment[index], take(self.churn), take(self.spend))


def train_one_epoch(
    module: TwoHeadMLP,
    optimizer: torch.optim.Optimizer,
    objective: Objective,
    train: Tensors,
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


def evaluate(module: TwoHeadMLP, objective: Objective, val: Tensors) -> dict[str, float]:
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


def snapshot(module: TwoHeadMLP, best: Checkpoint | None, segment: Checkpoint) -> Any:
    """The module with ``best``'s weights: ``module`` itself when its epoch is the segment's."""
    if best is None:
        return None
    if best.epoch == segment.epoch:
        return module
    snapshot = copy.deepcopy(module)
    snapshot.load_state_dict(best.state)
    return snapshot


def build_objective(
    codes: np.ndarray,
    n_classes: int,
    churn: np.ndarray | None,
    *,
    class_weight: str | None,
    churn_pos_weight: str | None,
    churn_weight: float,
    spend_loss: str | None,
    spend_weight: float,
) -> Objective:
    """The training objective, its class weights and churn ``pos_weight`` taken from all of ``y``.

    ``churn`` (``None`` without a churn head) and ``spend_loss`` (``None``
    without a spend head) say which heads the objective counts.
    """
    segment_weight = None
    if class_weight == "balanced":
        weights = compute_class_weight("balanced", classes=np.arange(n_classes), y=codes)
        segment_weight = torch.as_tensor(weights, dtype=torch.float32)
    pos_weight = None
    if churn is not None and churn_pos_weight == "balanced":
        n_pos = float(churn.sum())
        pos_weight = torch.tensor((len(churn) - n_pos) / n_pos)
    return Objective(
        segment_loss=nn.CrossEntropyLoss(weight=segment_weight),
        churn_loss=nn.BCEWithLogitsLoss(pos_weight=pos_weight),
        churn_weight=churn_weight if churn is not None else 0.0,
        spend_loss=spend_loss,
        spend_weight=spend_weight,
    )


def build_module(
    n_features: int,
    hidden_layers: Sequence[int],
    dropout: float,
    n_classes: int,
    churn_head: str | None,
    spend_loss: str | None,
    spend_train: np.ndarray | None,
    generator: torch.Generator,
) -> TwoHeadMLP:
    """A freshly initialised network (``generator`` draws the weights).

    With a spend head (``spend_loss`` set), its bias starts at the value that
    fits ``spend_train`` without inputs (:func:`models.spend_loss.initial_bias`).
    """
    module = TwoHeadMLP(
        n_features=n_features,
        hidden_layers=hidden_layers,
        dropout=dropout,
        n_classes=n_classes,
        churn_head=churn_head,
        n_spend_outputs=0 if spend_loss is None else spend_outputs(spend_loss),
    )
    module.reset_parameters(generator)
    if spend_loss is not None:
        with torch.no_grad():
            module.spend_deep.bias.copy_(torch.as_tensor(initial_bias(spend_loss, spend_train)))
    return module


@dataclass(frozen=True)
class TrainedHeads:
    """What :func:`train_heads` returns: the per-head snapshots and the epochs' metrics."""

    module: HeadSnapshots
    history: list[dict[str, float]]
    best_segment_epoch: int
    best_churn_epoch: int | None
    best_spend_epoch: int | None


def train_heads(
    module: TwoHeadMLP,
    objective: Objective,
    train: Tensors,
    val: Tensors,
    *,
    learning_rate: float,
    weight_decay: float,
    batch_size: int,
    max_epochs: int,
    patience: int,
    generator: torch.Generator,
    on_epoch: EpochCallback | None = None,
) -> TrainedHeads:
    """Train ``module`` with AdamW and per-head early stopping; ``module`` ends in eval mode.

    The churn and spend heads are trained (and snapshotted) when ``train``
    holds their targets. ``generator`` draws the shuffling and dropout masks.

    Raises
    ------
    RuntimeError
        If a head's validation loss was never finite (training diverged).
    """
    optimizer = torch.optim.AdamW(module.parameters(), lr=learning_rate, weight_decay=weight_decay)
    history: list[dict[str, float]] = []
    segment_best = Checkpoint("val_segment_logloss")
    churn_best = None if train.churn is None else Checkpoint("val_churn_logloss")
    spend_best = None if train.spend is None else Checkpoint("val_spend_loss")
    checkpoints = [c for c in (segment_best, churn_best, spend_best) if c is not None]
    for epoch in range(max_epochs):
        train_loss = train_one_epoch(module, optimizer, objective, train, batch_size, generator)
        metrics = {"train_loss": train_loss, **evaluate(module, objective, val)}
        history.append(metrics)
        for checkpoint in checkpoints:
            checkpoint.update(epoch, metrics, module)
        if on_epoch is not None:
            on_epoch(epoch, dict(metrics))
        if epoch - max(checkpoint.epoch for checkpoint in checkpoints) >= patience:
            break

    if any(checkpoint.state is None for checkpoint in checkpoints):
        raise RuntimeError(
            "Training diverged: a validation log loss was never finite. "
            "Try a smaller learning_rate."
        )
    churn_module = snapshot(module, churn_best, segment_best)
    spend_module = snapshot(module, spend_best, segment_best)
    module.load_state_dict(segment_best.state)
    return TrainedHeads(
        module=HeadSnapshots(module, churn_module, spend_module).eval(),
        history=history,
        best_segment_epoch=segment_best.epoch,
        best_churn_epoch=None if churn_best is None else churn_best.epoch,
        best_spend_epoch=None if spend_best is None else spend_best.epoch,
    )

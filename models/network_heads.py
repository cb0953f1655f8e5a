"""The PyTorch module of the BP network (docs/methods.md §2.5): a ReLU trunk and its heads.

:class:`TwoHeadMLP` is the network being trained: a segment head, an optional
churn head and an optional spend head on one trunk. :class:`HeadSnapshots` is
what a fitted :class:`~models.network.BPNetworkClassifier` keeps: one
best-validation copy of that network per head.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn


class TwoHeadMLP(nn.Module):
    """ReLU trunk with a segment head (logits) and an optional churn head (logit).

    The churn logit is built from a "deep" path (a linear map of the last
    hidden layer), a "wide" path (a linear map of the inputs), or the sum of
    both, as ``churn_head`` says (``None``: no churn head). The wide weights
    start at zero; in the sum only the deep path has a bias. The optional
    spend head (``n_spend_outputs`` columns, :mod:`models.spend_loss`) reads
    the last hidden layer plus the inputs: sharing the trunk with the segment
    head, it teaches the trunk how much a customer will buy, which decides
    their next segment.

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


class HeadSnapshots(nn.Module):
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
        self, segment: TwoHeadMLP, churn: TwoHeadMLP | None, spend: TwoHeadMLP | None = None
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

"""Losses for a zero-inflated, heavy-tailed target (future spend) and the expected value under each.

* ``"ziln"`` — the zero-inflated lognormal of Wang, Liu & Miao (2019): three
  outputs per customer, the logit of P(spend > 0) and the mean μ and scale σ
  of log spend when positive. Loss = BCE(spend > 0) − 1[spend > 0]·log
  LogNormal(spend; μ, σ); expected spend = P(spend > 0)·exp(μ + σ²/2).
* ``"tweedie"`` — the Tweedie deviance with power ρ = 1.5 (compound
  Poisson–gamma: a point mass at zero and a continuous positive part), one
  output η = log E[spend]. Loss (up to a constant) =
  −y·exp((1 − ρ)η)/(1 − ρ) + exp((2 − ρ)η)/(2 − ρ).

References
----------
X. Wang, T. Liu and J. Miao, "A Deep Probabilistic Model for Customer
Lifetime Value Prediction", arXiv:1912.07753, 2019.

B. Jørgensen, "Exponential Dispersion Models", J. R. Stat. Soc. B 49 (2),
127-162, 1987.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch loads inside the functions: scoring uses expected_spend_numpy
    import torch

SPEND_LOSSES = ("ziln", "tweedie")
TWEEDIE_POWER = 1.5
_MIN_SCALE = 1e-3


def spend_outputs(loss: str) -> int:
    """How many network outputs the loss reads."""
    return 3 if loss == "ziln" else 1


def initial_bias(loss: str, spend: np.ndarray) -> np.ndarray:
    """Output biases that start the head at the training data's marginal distribution.

    ZILN: logit of the share of positive spend, mean of log positive spend,
    and the scale's softplus inverse of its standard deviation; Tweedie: log
    of the mean spend. Only the starting point: training moves all of them.
    """
    positive = spend[spend > 0]
    if loss == "tweedie":
        return np.array([math.log(max(float(spend.mean()), 1e-6))])
    share = min(max(positive.size / max(spend.size, 1), 1e-3), 1 - 1e-3)
    logs = np.log(positive) if positive.size else np.zeros(1)
    sd = max(float(logs.std()), 0.1)
    return np.array([math.log(share / (1 - share)), float(logs.mean()), math.log(math.expm1(sd))])


def spend_loss(loss: str, output: torch.Tensor, spend: torch.Tensor) -> torch.Tensor:
    """Mean loss over the batch; ``output`` has :func:`spend_outputs` columns."""
    import torch
    from torch import nn

    if loss == "tweedie":
        eta = output[:, 0]
        rho = TWEEDIE_POWER
        return (
            -spend * torch.exp((1 - rho) * eta) / (1 - rho) + torch.exp((2 - rho) * eta) / (2 - rho)
        ).mean()
    logit, mu = output[:, 0], output[:, 1]
    sigma = nn.functional.softplus(output[:, 2]) + _MIN_SCALE
    positive = spend > 0
    bce = nn.functional.binary_cross_entropy_with_logits(logit, positive.float(), reduction="none")
    log_y = torch.log(torch.where(positive, spend, torch.ones_like(spend)))
    nll = log_y + torch.log(sigma) + 0.5 * math.log(2 * math.pi) + 0.5 * ((log_y - mu) / sigma) ** 2
    return (bce + torch.where(positive, nll, torch.zeros_like(nll))).mean()


def expected_spend(loss: str, output: torch.Tensor) -> torch.Tensor:
    """E[spend] under the fitted distribution, one value per row."""
    import torch
    from torch import nn

    if loss == "tweedie":
        return torch.exp(output[:, 0])
    sigma = nn.functional.softplus(output[:, 2]) + _MIN_SCALE
    return torch.sigmoid(output[:, 0]) * torch.exp(output[:, 1] + 0.5 * sigma**2)


def expected_spend_numpy(loss: str, output: np.ndarray) -> np.ndarray:
    """:func:`expected_spend` in NumPy float64, for scoring without torch."""
    from scipy.special import expit

    output = np.asarray(output, dtype=np.float64)
    if loss == "tweedie":
        return np.exp(output[:, 0])
    sigma = np.logaddexp(0.0, output[:, 2]) + _MIN_SCALE  # softplus
    return expit(output[:, 0]) * np.exp(output[:, 1] + 0.5 * sigma**2)

"""The forecasting network's spend head: zero-inflated, heavy-tailed spend, learned."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import spearmanr

from valuecube.models.network import BPNetworkClassifier
from valuecube.models.spend_loss import expected_spend, spend_loss


def spend_problem(n_rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Churn ~ logistic in x0; spend of the others lognormal with log-mean 3 + 2·x1."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.uniform(size=(n_rows, 4)), columns=[f"x{j}" for j in range(4)])
    churn = (rng.uniform(size=n_rows) < 1 / (1 + np.exp(-(6 * X["x0"] - 3)))).astype(int)
    spend = np.where(churn == 1, 0.0, np.exp(3 + 2 * X["x1"] + 0.3 * rng.normal(size=n_rows)))
    segment = np.where(X["x2"] >= 0.5, "maintain", "release")
    return X, pd.DataFrame({"segment": segment, "churn": churn, "spend": spend})


@pytest.fixture(scope="module")
def problem():
    return spend_problem(1200, seed=3)


@pytest.mark.parametrize("loss", ["ziln", "tweedie"])
def test_spend_head_ranks_and_scales_spend(problem, loss) -> None:
    X, y = problem
    net = BPNetworkClassifier(
        hidden_layers=(16,), max_epochs=25, learning_rate=1e-2, spend_loss=loss, class_weight=None
    ).fit(X[:1000], y[:1000])
    assert net.has_spend_head_ and net.best_spend_epoch_ is not None
    predicted = net.predict_spend(X[1000:])
    actual = y["spend"].to_numpy()[1000:]
    assert (predicted >= 0).all()
    assert spearmanr(actual, predicted).statistic > 0.6
    assert 0.5 < predicted.mean() / actual.mean() < 2  # on the right scale
    segment, churn, spend = net.predict_forecast(X[1000:])
    np.testing.assert_array_equal(segment, net.predict(X[1000:]))
    np.testing.assert_allclose(churn, net.predict_churn_proba(X[1000:]), rtol=0, atol=1e-12)
    np.testing.assert_allclose(spend, predicted, rtol=1e-12)


def test_same_seed_same_forecast(problem) -> None:
    X, y = problem
    kwargs = dict(hidden_layers=(8,), max_epochs=3, learning_rate=1e-2, random_state=7)
    a = BPNetworkClassifier(**kwargs).fit(X, y).predict_forecast(X[:100])
    b = BPNetworkClassifier(**kwargs).fit(X, y).predict_forecast(X[:100])
    for left, right in zip(a, b, strict=True):
        np.testing.assert_array_equal(left, right)


def test_without_spend_column_there_is_no_spend_head(problem) -> None:
    X, y = problem
    net = BPNetworkClassifier(hidden_layers=(8,), max_epochs=1).fit(X, y[["segment", "churn"]])
    assert not net.has_spend_head_
    with pytest.raises(ValueError, match="no spend head"):
        net.predict_spend(X)


def test_ziln_loss_and_mean_by_hand() -> None:
    # logit 0 (p = 1/2), mu = 1, softplus^-1 chosen so that sigma = 1 (up to the floor)
    raw_sigma = float(np.log(np.expm1(1.0 - 1e-3)))
    output = torch.tensor([[0.0, 1.0, raw_sigma]], dtype=torch.float64)
    mean = expected_spend("ziln", output).item()
    assert mean == pytest.approx(0.5 * np.exp(1.5))
    # a zero: only the Bernoulli part, -log(1/2)
    assert spend_loss("ziln", output, torch.tensor([0.0], dtype=torch.float64)).item() == (
        pytest.approx(np.log(2))
    )
    # y = e: log 2 + lognormal NLL at log y = mu = 1 with sigma 1: 1 + 0.5 log(2 pi)
    value = spend_loss("ziln", output, torch.tensor([np.e], dtype=torch.float64)).item()
    assert value == pytest.approx(np.log(2) + 1 + 0.5 * np.log(2 * np.pi))

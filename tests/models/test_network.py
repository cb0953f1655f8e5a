import pickle

import cloudpickle
import numpy as np
import optuna
import pandas as pd
import pytest
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_score

from valuecube.models import network_arrays
from valuecube.models.network import BPNetworkClassifier
from valuecube.models.segments import SEGMENT_CODES


def value_cube_problem(n_rows: int, n_noise: int = 2, seed: int = 0):
    """Segment = which of 3 scores are >= 0.5 (8 cells); churn ~ logistic in two other inputs."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n_rows, 5 + n_noise))
    low = (X[:, :3] < 0.5).astype(int)  # CV, PV, RA scores
    segment = np.array(SEGMENT_CODES)[4 * low[:, 0] + 2 * low[:, 1] + low[:, 2]]
    churn_probability = 1 / (1 + np.exp(-(6 * X[:, 3] - 6 * X[:, 4])))
    churn = (rng.uniform(size=n_rows) < churn_probability).astype(int)
    columns = [f"x{j}" for j in range(X.shape[1])]
    return pd.DataFrame(X, columns=columns), pd.DataFrame({"segment": segment, "churn": churn})


def small_net(**params) -> BPNetworkClassifier:
    defaults = {"hidden_layers": (16,), "max_epochs": 8, "learning_rate": 1e-2}
    return BPNetworkClassifier(**{**defaults, **params})


@pytest.fixture(scope="module")
def small_problem():
    return value_cube_problem(400, seed=1)


@pytest.fixture(scope="module")
def fitted_small(small_problem):
    X, y = small_problem
    return small_net().fit(X, y)


@pytest.fixture(scope="module")
def learned():
    X, y = value_cube_problem(3500, seed=2)
    X_train, y_train, X_test, y_test = X[:3000], y[:3000], X[3000:], y[3000:]
    net = BPNetworkClassifier(learning_rate=3e-3, max_epochs=100).fit(X_train, y_train)
    return net, X_test, y_test


def test_same_seed_gives_identical_predictions_and_different_seed_does_not(small_problem):
    X, y = small_problem
    torch.manual_seed(123)
    first = small_net(random_state=7).fit(X, y)
    global_state = torch.get_rng_state()
    torch.manual_seed(456)
    second = small_net(random_state=7).fit(X, y)
    other = small_net(random_state=8).fit(X, y)

    assert np.array_equal(first.predict_proba(X), second.predict_proba(X))
    assert np.array_equal(first.predict_churn_proba(X), second.predict_churn_proba(X))
    assert not np.array_equal(first.predict_proba(X), other.predict_proba(X))
    assert not np.array_equal(first.predict_churn_proba(X), other.predict_churn_proba(X))
    # fit uses its own generator and leaves the global torch RNG alone
    torch.manual_seed(123)
    small_net(random_state=7).fit(X, y)
    assert torch.equal(torch.get_rng_state(), global_state)


def test_learns_value_cube_segments_and_churn(learned):
    net, X_test, y_test = learned
    assert net.history_[net.best_segment_epoch_]["val_segment_accuracy"] >= 0.95
    assert (net.predict(X_test) == y_test["segment"].to_numpy()).mean() >= 0.95
    assert roc_auc_score(y_test["churn"], net.predict_churn_proba(X_test)) >= 0.8


def test_scores_do_not_depend_on_the_batch(learned):
    net, X_test, _ = learned
    in_batch = net.predict_proba(X_test)
    alone = np.vstack([net.predict_proba(X_test.iloc[[i]]) for i in range(20)])
    np.testing.assert_allclose(alone, in_batch[:20], rtol=0, atol=1e-6)


def test_the_forward_pass_in_blocks_changes_nothing_beyond_rounding(learned):
    """The NumPy forward runs FORWARD_ROWS rows at a time: the same outputs as one pass over all,
    up to float64 rounding (BLAS blocks rows differently; measured up to 1.2e-14 relative)."""
    net, _, _ = learned
    X, _ = value_cube_problem(3 * network_arrays.FORWARD_ROWS + 17, seed=5)
    x = net._standardised(X)
    blocked = network_arrays.forward(net.weights_, x)
    whole = network_arrays._forward_block(net.weights_, x)
    assert len(blocked[0]) == len(X)
    for got, expected in zip(blocked, whole, strict=True):
        assert (got is None) == (expected is None)
        if got is not None:
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_sklearn_contract(fitted_small, small_problem):
    X, y = small_problem
    net = fitted_small
    params = net.get_params()
    assert clone(net).get_params() == params
    assert BPNetworkClassifier(**params).get_params() == params
    assert net.set_params(dropout=0.2).get_params()["dropout"] == 0.2
    net.set_params(dropout=params["dropout"])
    assert not hasattr(clone(net), "classes_")

    predicted = net.predict(X)
    assert predicted.shape == (len(X),)
    assert set(predicted) <= set(net.classes_)
    assert set(net.classes_) == set(y["segment"])
    proba = net.predict_proba(X)
    assert proba.shape == (len(X), len(net.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    churn = net.predict_churn_proba(X)
    assert churn.shape == (len(X),) and ((churn > 0) & (churn < 1)).all()
    assert net.n_features_in_ == X.shape[1]
    assert list(net.feature_names_in_) == list(X.columns)
    assert not net.module_.training
    assert net.n_epochs_ == len(net.history_)


def test_cross_val_score_scores_segment_accuracy_with_two_column_y(small_problem):
    X, y = small_problem
    # sklearn cannot infer a splitter from mixed-type two-column y: pass one explicitly
    folds = StratifiedKFold(n_splits=2).split(X, y["segment"])
    scores = cross_val_score(small_net(max_epochs=3), X, y, cv=list(folds))
    assert scores.shape == (2,) and ((scores >= 0) & (scores <= 1)).all()


def test_numpy_two_column_y_matches_dataframe_y(small_problem, fitted_small):
    X, y = small_problem
    as_array = small_net().fit(X.to_numpy(), np.column_stack([y["segment"], y["churn"]]))
    np.testing.assert_array_equal(
        as_array.predict_proba(X.to_numpy()), fitted_small.predict_proba(X)
    )


def test_segment_only_y_trains_without_churn_head(small_problem):
    X, y = small_problem
    net = small_net().fit(X, y["segment"].to_numpy())
    assert not net.has_churn_head_
    assert "val_churn_auc" not in net.history_[0]
    assert net.predict(X).shape == (len(X),)
    with pytest.raises(ValueError, match="no churn head"):
        net.predict_churn_proba(X)


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_are_rejected_at_fit_and_predict(small_problem, fitted_small, bad_value):
    X, y = small_problem
    X_bad = X.copy()
    X_bad.iloc[[3, 5], 2] = bad_value
    X_bad.iloc[5, 4] = bad_value
    with pytest.raises(
        ValueError, match=r"non-finite.*2 of 400 rows.*x2 \(2 rows\), x4 \(1 rows\)"
    ):
        small_net().fit(X_bad, y)
    with pytest.raises(ValueError, match=r"non-finite.*2 of 400 rows"):
        fitted_small.predict(X_bad)
    with pytest.raises(ValueError, match=r"non-finite.*column 2 \(2 rows\), column 4"):
        small_net().fit(X_bad.to_numpy(), y)


@pytest.mark.parametrize(
    "bad_y, message",
    [
        (lambda y: y.rename(columns={"churn": "churned"}), "exactly the columns"),
        (lambda y: y.assign(churn=y["churn"] * 2), "churn must be 0 or 1"),
        (lambda y: y.assign(segment=y["segment"].where(y.index != 0)), "missing segment"),
        (lambda y: np.zeros((len(y), 4)), "got shape"),
        (lambda y: y.assign(spend=-1.0), "spend must be finite and >= 0"),
    ],
)
def test_invalid_targets_are_rejected(small_problem, bad_y, message):
    X, y = small_problem
    with pytest.raises(ValueError, match=message):
        small_net().fit(X, bad_y(y))


def test_invalid_hyperparameters_are_rejected(small_problem):
    X, y = small_problem
    with pytest.raises(ValueError, match="dropout"):
        small_net(dropout=1.0).fit(X, y)
    with pytest.raises(ValueError, match="hidden_layers"):
        small_net(hidden_layers=(16, 0)).fit(X, y)


@pytest.mark.parametrize("pickler", [pickle, cloudpickle])
def test_pickle_round_trip_predicts_identically(fitted_small, small_problem, pickler):
    X, _ = small_problem
    restored = pickler.loads(pickler.dumps(fitted_small))
    np.testing.assert_array_equal(restored.predict_proba(X), fitted_small.predict_proba(X))
    np.testing.assert_array_equal(
        restored.predict_churn_proba(X), fitted_small.predict_churn_proba(X)
    )


def test_on_epoch_is_called_once_per_epoch_with_metrics(small_problem):
    X, y = small_problem
    calls = []
    net = small_net(max_epochs=5, patience=100).fit(
        X, y, on_epoch=lambda epoch, metrics: calls.append((epoch, metrics))
    )
    assert [epoch for epoch, _ in calls] == list(range(5)) == list(range(net.n_epochs_))
    assert [metrics for _, metrics in calls] == net.history_
    assert {"train_loss", "val_loss", "val_segment_accuracy", "val_churn_auc"} <= set(calls[0][1])


def test_exception_raised_by_on_epoch_propagates(small_problem):
    X, y = small_problem
    calls = []

    def prune_at_second_epoch(epoch, metrics):
        calls.append(epoch)
        if epoch == 1:
            raise optuna.TrialPruned()

    net = small_net(max_epochs=50)
    with pytest.raises(optuna.TrialPruned):
        net.fit(X, y, on_epoch=prune_at_second_epoch)
    assert calls == [0, 1]
    with pytest.raises(NotFittedError):
        net.predict(X)


@pytest.fixture(scope="module")
def overfitting():
    """Few rows, many noise inputs, a high learning rate: the segment head overfits early."""
    X, y = value_cube_problem(300, n_noise=20, seed=3)
    X_val, y_val = value_cube_problem(150, n_noise=20, seed=4)
    params = {"hidden_layers": (64,), "learning_rate": 3e-2, "patience": 3, "max_epochs": 200}
    return params, X, y, X_val, y_val


def test_early_stopping_keeps_each_heads_best_epoch(overfitting):
    params, X, y, X_val, y_val = overfitting
    net = BPNetworkClassifier(**params).fit(X, y, eval_set=(X_val, y_val))

    segment_losses = [metrics["val_segment_logloss"] for metrics in net.history_]
    churn_losses = [metrics["val_churn_logloss"] for metrics in net.history_]
    assert net.best_segment_epoch_ == int(np.argmin(segment_losses))
    assert net.best_churn_epoch_ == int(np.argmin(churn_losses))
    # the segment head was past its best long before the churn head: training ran on
    # until neither had improved for `patience` (3) epochs
    assert net.best_segment_epoch_ + 3 + 1 < net.n_epochs_ == net.best_churn_epoch_ + 3 + 1 < 200
    assert segment_losses[-1] > min(segment_losses) and churn_losses[-1] > min(churn_losses)
    assert net.module_.churn is not net.module_.segment
    # each head predicts with its own snapshot: its validation log loss is that epoch's
    segment_loss = log_loss(y_val["segment"], net.predict_proba(X_val), labels=net.classes_)
    assert segment_loss == pytest.approx(min(segment_losses), rel=1e-5)
    churn_loss = log_loss(y_val["churn"], net.predict_churn_proba(X_val))
    assert churn_loss == pytest.approx(min(churn_losses), rel=1e-5)


def test_segment_only_early_stopping_keeps_the_best_segment_weights(overfitting):
    params, X, y, X_val, y_val = overfitting
    net = BPNetworkClassifier(**params).fit(X, y["segment"], eval_set=(X_val, y_val["segment"]))

    segment_losses = [metrics["val_segment_logloss"] for metrics in net.history_]
    assert net.n_epochs_ == net.best_segment_epoch_ + 3 + 1 < 200
    assert segment_losses[net.best_segment_epoch_] == min(segment_losses) < segment_losses[-1]
    assert net.best_churn_epoch_ is None and net.module_.churn is None
    restored_loss = log_loss(y_val["segment"], net.predict_proba(X_val), labels=net.classes_)
    assert restored_loss == pytest.approx(min(segment_losses), rel=1e-5)


@pytest.mark.parametrize("shared", [False, True])
def test_numpy_forward_matches_torch_and_pickles_without_torch(overfitting, shared):
    """Scoring runs in NumPy on the snapshots' arrays: it equals the torch module to float32
    rounding, a pickle holds no torch object, and the module rebuilt from it is bit-identical."""
    params, X, y, X_val, y_val = overfitting
    # with one epoch both heads are best at epoch 0 and share one snapshot
    net = BPNetworkClassifier(**{**params, "max_epochs": 1 if shared else 200})
    net.fit(X, y, eval_set=(X_val, y_val))
    assert (net.module_.churn is net.module_.segment) is shared
    segment, churn = net.predict_with_churn(X_val)
    with torch.inference_mode():
        logits, logit, _ = net.module_(net.standardise(X_val))
    torch_churn = torch.sigmoid(logit.double()).numpy()
    np.testing.assert_allclose(churn, torch_churn, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(segment, net.classes_[logits.argmax(dim=1).numpy()])

    data = pickle.dumps(net)
    assert b"torch" not in data
    loaded = pickle.loads(data)
    assert "module_" not in vars(loaded)
    np.testing.assert_array_equal(loaded.predict_with_churn(X_val)[1], churn)
    assert "module_" not in vars(loaded)  # scoring did not need the torch module
    with torch.inference_mode():
        rebuilt = loaded.module_(loaded.standardise(X_val))
    assert (loaded.module_.churn is loaded.module_.segment) is shared
    torch.testing.assert_close(rebuilt[1], logit, rtol=0, atol=0)
    torch.testing.assert_close(rebuilt[0], logits, rtol=0, atol=0)


@pytest.mark.parametrize("head", ["wide", "wide_deep", "deep"])
def test_churn_logit_alone_equals_the_full_forward(overfitting, head):
    """The churn snapshot's shortcut (no hidden layers, wide head) equals the forward pass."""
    params, X, y, X_val, y_val = overfitting
    net = BPNetworkClassifier(**{**params, "churn_head": head}).fit(X, y, eval_set=(X_val, y_val))
    x = torch.as_tensor(
        (np.asarray(X_val) - net.input_mean_) / net.input_scale_, dtype=torch.float32
    )
    with torch.inference_mode():
        torch.testing.assert_close(
            net.module_.churn.churn_logit(x), net.module_.churn(x)[1], rtol=0, atol=0
        )
    np.testing.assert_array_equal(net.predict_with_churn(X_val)[1], net.predict_churn_proba(X_val))


def test_wide_churn_head_learns_a_linear_churn_signal():
    # churn ~ logistic(6 * x3 - 6 * x4): a linear signal in two of the 15 inputs
    X, y = value_cube_problem(1500, n_noise=10, seed=5)
    net = BPNetworkClassifier(hidden_layers=(16,), learning_rate=1e-2, max_epochs=60).fit(X, y)

    assert net.module_.churn.churn_deep is None  # the default head is the wide path alone
    wide = net.module_.churn.churn_wide
    assert wide.in_features == X.shape[1] and wide.bias is not None
    weights = wide.weight.detach().numpy().ravel()
    assert weights[3] > 0.5 and weights[4] < -0.5
    assert np.abs(np.delete(weights, [3, 4])).max() < 0.5 * np.abs(weights[[3, 4]]).min()
    assert roc_auc_score(y["churn"], net.predict_churn_proba(X)) > 0.85


@pytest.mark.parametrize(
    "churn_head, deep, wide_bias",
    [("wide", False, True), ("wide_deep", True, False), ("deep", True, None)],
)
def test_churn_head_paths(small_problem, churn_head, deep, wide_bias):
    X, y = small_problem
    module = small_net(churn_head=churn_head).fit(X, y).module_.churn
    assert (module.churn_deep is not None) is deep
    if wide_bias is None:
        assert module.churn_wide is None
    else:
        assert module.churn_wide.in_features == X.shape[1]
        assert (module.churn_wide.bias is not None) is wide_bias
    segment_only = small_net(churn_head=churn_head).fit(X, y["segment"]).module_.segment
    assert segment_only.churn_deep is None and segment_only.churn_wide is None


def test_loss_weight_does_not_change_training_with_the_wide_churn_head(small_problem):
    # the wide head shares no weights with the trunk, and AdamW ignores each loss's scale
    X, y = small_problem
    fits = {
        (head, weight): small_net(churn_head=head, churn_loss_weight=weight).fit(X, y)
        for head in ("wide", "wide_deep")
        for weight in (0.2, 0.8)
    }
    for method in ("predict_proba", "predict_churn_proba"):
        low, high = (getattr(fits["wide", w], method)(X) for w in (0.2, 0.8))
        np.testing.assert_allclose(low, high, rtol=0, atol=1e-5)
        low, high = (getattr(fits["wide_deep", w], method)(X) for w in (0.2, 0.8))
        assert np.abs(low - high).max() > 1e-2


def test_eval_set_with_unseen_segment_is_rejected(small_problem):
    X, y = small_problem
    y_val = y.assign(segment="not_a_segment")
    with pytest.raises(ValueError, match="not seen in y"):
        small_net().fit(X, y, eval_set=(X, y_val))


def test_models_pickled_with_the_heads_in_models_network_still_load(small_problem, monkeypatch):
    X, y = small_problem
    net = small_net(max_epochs=3).fit(X, y)
    # the pickle of a model saved with its torch module (before the weights were arrays) ...
    monkeypatch.setattr(BPNetworkClassifier, "__getstate__", BaseEstimator.__getstate__)
    # protocol 2 names each class as one GLOBAL opcode, "c<module>\n<name>\n", and has no
    # frame lengths: renaming gives the pickle of a model saved with the heads in models.network
    payload = pickle.dumps(net, protocol=2)
    monkeypatch.undo()
    for name in ("TwoHeadMLP", "HeadSnapshots"):
        new = f"cvaluecube.models.network_heads\n{name}\n".encode()
        assert new in payload
        payload = payload.replace(new, f"cvaluecube.models.network\n_{name}\n".encode())
    assert b"network_heads" not in payload
    loaded = pickle.loads(payload)
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict_churn_proba(X), net.predict_churn_proba(X))

"""The BP network against scikit-learn's common estimator checks (the applicable subset)."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from valuecube.models.network import BPNetworkClassifier

EXPECTED_FAILED_CHECKS = {
    "check_supervised_y_2d": (
        "a 2-D y is the [segment, churn(, spend)] target columns, not a column vector of "
        "labels to ravel with a DataConversionWarning"
    ),
    "check_class_weight_classifiers": (
        'class_weight takes "balanced" or None only, not a dict of weights per class'
    ),
}


@parametrize_with_checks(
    [
        BPNetworkClassifier(
            hidden_layers=(16,), max_epochs=30, patience=5, batch_size=64, learning_rate=1e-2
        )
    ],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_scikit_learn_common_checks(estimator, check) -> None:
    check(estimator)

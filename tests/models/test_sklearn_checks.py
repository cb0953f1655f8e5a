"""scikit-learn's estimator checks for FuzzyValueClassifier, with the exclusions named.

Two properties of the product's method make some common checks inapplicable:

* the indicator tree fixes the factors, so X must have exactly the tree's
  factors (an array's columns in tree order); checks that fit on data sets of
  2, 4, 5 or 10 features get a ValueError saying so;
* the classifier is a rule, not learned from labels: ``y`` is ignored and
  ``predict`` returns one of the eight segment codes (strings), not y's
  classes, so checks of label handling, of accuracy on y, and numeric
  comparisons of predictions do not apply.

ValueCube is not checked here: its input is a config-defined customer table
(any columns, categorical text), not a numeric X; its own tests cover the
contract that applies (clone, fit once, score alone = in batch).
"""

from __future__ import annotations

from conftest import TELCO_CONFIG
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from valuecube.features.config import TreeSpec, load_config
from valuecube.models.fuzzy import FuzzyValueClassifier
from valuecube.models.value_cube import ValueCube

TREE = TreeSpec.model_validate(
    {
        dim: {"indicators": {"x": {"factors": {factor: "benefit"}}}}
        for dim, factor in zip(
            ("current_value", "potential_value", "relative_advantage"), "abc", strict=True
        )
    }
)
FIXED_FACTORS = "the tree fixes X's factors (3 here); the check fits on another number"
RULE = "a rule, not learned from y: y is ignored and predict returns segment codes"
EXCLUDED = {
    **dict.fromkeys(
        (
            "check_classifier_data_not_an_array",
            "check_classifiers_classes",
            "check_classifiers_train",
            "check_dtype_object",
            "check_estimators_dtypes",
            "check_estimators_fit_returns_self",
            "check_estimators_overwrite_params",
            "check_fit2d_1sample",
            "check_fit_check_is_fitted",
            "check_fit_idempotent",
            "check_n_features_in",
            "check_n_features_in_after_fitting",
            "check_positive_only_tag_during_fit",
            "check_readonly_memmap_input",
            "check_requires_y_none",
        ),
        FIXED_FACTORS,
    ),
    **dict.fromkeys(
        (
            "check_classifiers_one_label",
            "check_classifiers_regression_target",
            "check_estimators_pickle",
            "check_fit_score_takes_y",
            "check_methods_sample_order_invariance",
            "check_methods_subset_invariance",
            "check_pipeline_consistency",
            "check_supervised_y_2d",
        ),
        RULE,
    ),
}


@parametrize_with_checks(
    [FuzzyValueClassifier(TREE)], expected_failed_checks=lambda estimator: EXCLUDED
)
def test_sklearn_compatible(estimator, check) -> None:
    check(estimator)


def test_value_cube_clones() -> None:
    cube = ValueCube(load_config(TELCO_CONFIG))
    twin = clone(cube)
    assert twin is not cube and twin.get_params() == cube.get_params()

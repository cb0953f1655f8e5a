"""Fuzzy comprehensive evaluation (docs/methods.md §2.3); FuzzyValueClassifier on Telco factors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import TELCO_CONFIG, TELCO_CSV
from sklearn.base import clone

from valuecube.features.config import ExpertPanelSpec, load_config
from valuecube.features.customers import build_customer_table
from valuecube.features.experts import membership_columns, read_memberships, read_panel
from valuecube.features.factors import compute_factors
from valuecube.features.inputs import load_input
from valuecube.models.ahp import InconsistentJudgementsError
from valuecube.models.fuzzy import (
    FuzzyValueClassifier,
    V,
    compose,
    data_memberships,
    va_score,
)
from valuecube.models.segments import SEGMENT_CODES

A = np.array([0.4, 0.3, 0.2, 0.1])
FACTORS = ["gross_profit", "purchase_volume", "cost_to_serve", "transaction_cycle"]
STANDING = ["high", "fairly_high", "ordinary", "ordinary"]  # W = (1.2, 1.1, 1.0, 1.0)
VOTES = [
    ["high", "high", "fairly high", "medium"],
    ["fairly high", "fairly high", "medium", "fairly high"],
    ["medium", "fairly low", "medium", "medium"],
    ["fairly high", "medium", "medium", "fairly low"],
]


@pytest.fixture
def worked_r(tmp_path) -> np.ndarray:
    """R of docs/methods.md's worked example, through the ratings and panel files."""
    panel = tmp_path / "panel.csv"
    panel.write_text("expert,standing\n" + "".join(f"e{k},{s}\n" for k, s in enumerate(STANDING)))
    ratings = tmp_path / "ratings.csv"
    ratings.write_text(
        "customer_id,factor,expert,grade\n"
        + "".join(
            f"C-0001,{f},e{k},{g}\n"
            for f, row in zip(FACTORS, VOTES, strict=True)
            for k, g in enumerate(row)
        )
    )
    spec = ExpertPanelSpec(ratings=str(ratings), panel=str(panel))
    wide = read_memberships(spec, FACTORS, pd.Index(["C-0001"]), read_panel(spec))
    return np.array([wide[membership_columns(f)].iloc[0].to_numpy() for f in FACTORS])


def test_expert_memberships_rows(worked_r) -> None:
    assert worked_r.shape == (4, 5)
    np.testing.assert_allclose(worked_r.sum(axis=1), 1.0)
    # gross profit: high from experts 1 and 2 (1.2 + 1.1) of 4.3
    assert worked_r[0, 0] == pytest.approx(2.3 / 4.3)


def test_worked_example_weighted_average(worked_r) -> None:
    b = compose(A, worked_r)
    np.testing.assert_allclose(np.round(b, 4), [0.2140, 0.3512, 0.3605, 0.0744, 0.0])
    assert round(float(va_score(b)), 4) == 6.4093


def test_zadeh_operator_by_hand(worked_r) -> None:
    r = worked_r
    b = compose(A, r, "zadeh")
    raw = np.array([max(min(A[p], r[p, q]) for p in range(4)) for q in range(5)])
    np.testing.assert_allclose(b, raw / raw.sum())
    assert b.sum() == pytest.approx(1.0)
    assert 1.0 <= float(va_score(b)) <= 9.0
    # hand numbers: column "high" = max(min(.4, 2.3/4.3), 0, 0, 0) = 0.4
    assert raw[0] == pytest.approx(0.4)


def test_unknown_operator(worked_r) -> None:
    with pytest.raises(ValueError, match="operator"):
        compose(A, worked_r, "max")


def test_data_memberships_partition_unity() -> None:
    u = np.linspace(0, 1, 101)
    m = data_memberships(u)
    np.testing.assert_allclose(m.sum(axis=1), 1.0)
    np.testing.assert_allclose(va_score(m), 1 + 8 * u)
    # clipped outside [0, 1]
    np.testing.assert_allclose(va_score(data_memberships(np.array([-0.5, 1.5]))), [1.0, 9.0])


@pytest.fixture(scope="module")
def telco():
    cfg = load_config(TELCO_CONFIG)
    table = build_customer_table(load_input(TELCO_CSV, cfg.input, strict=True), cfg.input).table
    return cfg, compute_factors(table, cfg.factors)


def test_clone_and_params(telco) -> None:
    cfg, factors = telco
    clf = FuzzyValueClassifier(cfg.tree, threshold=6.0, operator="zadeh")
    params = clf.get_params()
    assert (
        params["threshold"] == 6.0 and params["operator"] == "zadeh" and params["tree"] is cfg.tree
    )
    copy = clone(clf)
    assert copy.get_params()["threshold"] == 6.0 and not hasattr(copy, "knots_")
    copy.fit(factors)
    assert list(copy.classes_) == list(SEGMENT_CODES)
    assert list(copy.get_feature_names_out()) == ["cv_score", "pv_score", "ra_score"]


@pytest.mark.parametrize("normalization", ["quantile", "minmax"])
@pytest.mark.parametrize("operator", ["weighted_average", "zadeh"])
def test_scores_in_range_and_batch_independent(telco, normalization, operator) -> None:
    cfg, factors = telco
    clf = FuzzyValueClassifier(cfg.tree, normalization=normalization, operator=operator).fit(
        factors
    )
    scores = clf.transform(factors)
    assert scores.shape == (len(factors), 3)
    assert scores.min() >= 1.0 and scores.max() <= 9.0
    assert scores.std(axis=0).min() > 0.1  # not degenerate
    alone = clf.transform(factors.iloc[[7]])
    np.testing.assert_array_equal(alone[0], scores[7])
    perm = np.random.default_rng(0).permutation(len(factors))
    shuffled = clf.transform(factors.iloc[perm])
    np.testing.assert_array_equal(shuffled[np.argsort(perm)], scores)
    # a very differently distributed batch at transform time
    rich = factors[factors["monthly_charges"] > factors["monthly_charges"].quantile(0.9)]
    other = pd.concat([rich, factors.iloc[[7]]])
    np.testing.assert_array_equal(clf.transform(other)[-1], scores[7])
    codes = clf.predict(factors)
    assert set(codes) <= set(SEGMENT_CODES)


def test_normalization_frozen_at_fit(telco) -> None:
    cfg, factors = telco
    clf = FuzzyValueClassifier(cfg.tree, normalization="minmax").fit(factors)
    u = clf.normalize(factors)
    assert u.min().min() == pytest.approx(0.0) and u.max().max() == pytest.approx(1.0)
    m = factors["monthly_charges"]
    np.testing.assert_allclose(u["monthly_charges"], (m - m.min()) / (m.max() - m.min()))
    q = FuzzyValueClassifier(cfg.tree).fit(factors).normalize(factors)
    assert q.min().min() >= 0.0 and q.max().max() <= 1.0
    # quantile normalisation is monotone in the factor
    order = np.argsort(factors["total_charges"].to_numpy(), kind="stable")
    assert np.all(np.diff(q["total_charges"].to_numpy()[order]) >= -1e-12)


def test_cost_direction_reverses(telco) -> None:
    cfg, factors = telco
    clf = FuzzyValueClassifier(cfg.tree).fit(factors)
    ev = clf.evaluate(factors)
    b = ev.indicators[("relative_advantage", "financial")]
    u = ev.normalized["price_per_service"].to_numpy()
    np.testing.assert_allclose(va_score(b), 1 + 8 * (1 - u))
    np.testing.assert_allclose(ev.dimensions.sum(axis=2), 1.0)
    weights = clf.effective_weights()
    np.testing.assert_allclose(weights.groupby("dimension")["weight"].sum(), 1.0)
    assert set(weights["factor"]) == set(cfg.tree.factor_names())


def test_nan_factor_rejected(telco) -> None:
    cfg, factors = telco
    clf = FuzzyValueClassifier(cfg.tree).fit(factors)
    bad = factors.head(5).copy()
    bad.iloc[2, bad.columns.get_loc("tenure_months")] = np.nan
    with pytest.raises(ValueError, match="tenure_months"):
        clf.transform(bad)
    with pytest.raises(ValueError, match="NaN"):
        FuzzyValueClassifier(cfg.tree).fit(bad)
    with pytest.raises(ValueError, match="missing"):
        clf.transform(factors.drop(columns=["services"]))


def test_inconsistent_tree_matrix_named_at_fit(telco) -> None:
    cfg, factors = telco
    pv = cfg.tree.potential_value.model_copy(
        update={"comparison": [[1, 9, 1 / 9], [1 / 9, 1, 9], [9, 1 / 9, 1]]}
    )
    tree = cfg.tree.model_copy(update={"potential_value": pv})
    with pytest.raises(InconsistentJudgementsError, match=r"tree\.potential_value") as info:
        FuzzyValueClassifier(tree).fit(factors)
    assert "consistency ratio" in str(info.value)


def test_v_is_evaluation_set() -> None:
    assert V.tolist() == [9, 7, 5, 3, 1]


def test_transform_equals_full_evaluation_for_weighted_average():
    """The linear shortcut of transform gives the two-level evaluation's scores."""
    from valuecube.features.config import load_config
    from valuecube.features.customers import build_customer_table
    from valuecube.features.inputs import load_input
    from valuecube.models.value_cube import ValueCube

    cfg = load_config(TELCO_CONFIG)
    table = build_customer_table(load_input(TELCO_CSV, cfg.input, strict=True), cfg.input).table
    cube = ValueCube(cfg).fit(table)
    factors = cube.factors(table)
    np.testing.assert_allclose(
        cube.fuzzy_.transform(factors), cube.fuzzy_.evaluate(factors).scores, atol=1e-12
    )


@pytest.mark.parametrize("operator", ["weighted_average", "zadeh"])
def test_every_customer_alone_equals_batch_bit_for_bit(telco, operator) -> None:
    # Many rows, exact equality: a matrix product (BLAS) gives some customers different last
    # bits when scored alone than inside a batch; the frozen-statistics invariant forbids that.
    cfg, factors = telco
    clf = FuzzyValueClassifier(cfg.tree, operator=operator).fit(factors)
    batch = clf.transform(factors)
    rows = range(0, len(factors), 10)
    alone = np.vstack([clf.transform(factors.iloc[[i]]) for i in rows])
    assert (alone != batch[list(rows)]).any(axis=1).sum() == 0
    # the fast scores agree with the full membership evaluation, and so do the segments
    np.testing.assert_allclose(batch, clf.evaluate(factors).scores, rtol=0, atol=1e-12)
    from valuecube.models.segments import assign_segments

    assert (clf.predict(factors) == assign_segments(clf.evaluate(factors).scores)).all()


def test_fit_returns_self_and_fitted_attributes(telco) -> None:
    cfg, factors = telco
    clf = FuzzyValueClassifier(cfg.tree)
    assert not [k for k in vars(clf) if k.endswith("_")]  # nothing learned before fit
    assert clf.fit(factors) is clf
    learned = {k for k in vars(clf) if k.endswith("_")}
    assert {"feature_names_in_", "n_features_in_", "knots_", "weights_", "classes_"} <= learned
    assert list(clf.feature_names_in_) == cfg.tree.factor_names() and clf.n_features_in_ == 11
    assert set(clf.get_params()) == {
        "tree",
        "threshold",
        "operator",
        "normalization",
        "n_quantiles",
        "expert_factors",
    }


def test_normalize_equals_np_interp_per_factor(telco) -> None:
    """The knot tables of normalize give exactly np.interp through each factor's frozen knots."""
    cfg, factors = telco
    clf = FuzzyValueClassifier(cfg.tree).fit(factors)
    u = clf.normalize(factors)
    for name, (xp, fp) in clf.knots_.items():
        expected = np.interp(factors[name].to_numpy(dtype=float), xp, fp)
        np.testing.assert_array_equal(u[name].to_numpy(), expected)

"""The model-vs-fuzzy comparison (training.compare) and its HTML report, on the session's real trained models."""

from __future__ import annotations

import html
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import TELCO_CSV
from sklearn.metrics import cohen_kappa_score

from valuecube.models.fuzzy import V
from valuecube.training import compare
from valuecube.training.compare_inputs import comparison_inputs, load_packaged_model
from valuecube.training.report import headline_text, render_report


@pytest.fixture(scope="module")
def telco(telco_model) -> SimpleNamespace:
    """The full comparison on the Telco model's own test split (few repeats to stay quick)."""
    model, identity = load_packaged_model(telco_model.model_uri)
    inputs = comparison_inputs(model)
    result = compare.compare_model(
        model, inputs.customers, inputs.train_customers, top=5, n_repeats=1
    )
    return SimpleNamespace(
        trained=telco_model, model=model, identity=identity, inputs=inputs, result=result
    )


def test_identity_names_the_registered_version(telco) -> None:
    ident = telco.identity
    assert (ident["name"], ident["version"]) == ("test-telco", telco.trained.version)
    assert "challenger" in ident["aliases"]
    assert ident["run id"] == telco.model.metadata["run_id"]
    assert ident["dataset"] == "telco" and ident["training data"].endswith("telco_churn.csv")


def test_customers_are_the_models_own_test_split(telco) -> None:
    from valuecube.training.lineage import training_parts

    parts = training_parts(telco.model)  # what the model logged as its split
    assert list(telco.inputs.customers.index) == list(parts["test"].index)
    assert list(telco.inputs.train_customers.index) == list(parts["train"].index)
    assert "own test split" in telco.inputs.description


def test_agreement_and_peers_reproduce_training_time_numbers(telco) -> None:
    """Same split, same seed: the comparison's numbers equal those logged at training."""
    r = telco.result
    t = r.scored.table
    assert r.confusion.to_numpy().sum() == len(t) and list(r.confusion.index) == list(
        r.confusion.columns
    )
    assert r.agreement["segment_accuracy"] == pytest.approx(
        np.trace(r.confusion.to_numpy()) / len(t)
    )
    assert r.agreement["segment_kappa"] == pytest.approx(
        cohen_kappa_score(t["segment_fuzzy"], t["segment_network"])
    )
    assert r.agreement["segment_accuracy"] == pytest.approx(
        telco.trained.agreement["segment_accuracy"]
    )
    trained = telco.trained.comparison["roc_auc"]
    for name in ("bp_network", "logistic_regression", "lightgbm", "fuzzy_baseline"):
        assert r.churn_metrics.loc[name, "roc_auc"] == pytest.approx(trained[name], abs=1e-9), name
    assert set(r.headline) >= {"customers", "segment_accuracy", "cohen_kappa", "roc_auc_bp_network"}


def test_segment_table_counts_both_classifiers(telco) -> None:
    seg, t = telco.result.segments, telco.result.scored.table
    assert len(seg) == 8
    for name in compare.CLASSIFIERS:
        assert seg[("customers", name)].sum() == len(t)
        assert seg[("churn_rate", name)].dropna().between(0, 1).all()
    assert (
        seg[("customers", "network")].to_dict()
        == t["segment_network"].value_counts().reindex(seg.index, fill_value=0).to_dict()
    )


def test_disagreements_explain_the_fuzzy_rule(telco) -> None:
    r = telco.result
    table, t = r.disagreements, r.scored.table
    assert 0 < len(table) <= 5
    assert (table[("segment", "fuzzy")] != table[("segment", "network")]).all()
    p = table[("segment", "network P(fuzzy segment)")]
    assert p.is_monotonic_increasing
    others = t.loc[
        (t["segment_fuzzy"] != t["segment_network"]) & ~t.index.isin(table.index), "p_fuzzy_class"
    ]
    assert others.empty or p.max() <= others.min()
    for d, label in enumerate(compare.DIMENSION_LABELS):
        b = table[f"{label} membership"].to_numpy()
        np.testing.assert_allclose(b.sum(axis=1), 1.0, atol=1e-9)
        np.testing.assert_allclose(b @ V, table[("VA score", label)], atol=1e-6)
    np.testing.assert_allclose(table["network P(segment)"].sum(axis=1), 1.0, atol=1e-6)
    assert r.local_effects.shape == (
        len(compare.input_groups(list(r.scored.X.columns))),
        len(table),
    )


def test_gain_curve_and_lift() -> None:
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    perfect = compare.gain_curve(y, np.linspace(1, 0, 10), points=11)
    assert perfect["captured"].iloc[2] == 1.0 and perfect["captured"].iloc[0] == 0.0
    assert perfect["lift"].iloc[1] == pytest.approx(5.0) and perfect["lift"].iloc[
        -1
    ] == pytest.approx(1.0)
    assert compare.top_lift(y, np.linspace(1, 0, 10), share=0.2) == pytest.approx(5.0)
    worst = compare.gain_curve(y, np.linspace(0, 1, 10), points=11)
    assert worst["captured"].iloc[8] == 0.0


def test_calibration_points(telco) -> None:
    y = telco.result.scored.table["churn"].to_numpy()
    points = compare.calibration(y, telco.result.churn_scores, n_bins=5)
    assert set(points["model"]) == set(telco.result.churn_scores)
    assert points[["mean_predicted", "observed_rate"]].stack().between(0, 1).all()


def test_input_groups_keep_categories_whole(telco) -> None:
    columns = list(telco.result.scored.X.columns)
    groups = compare.input_groups(columns)
    assert sorted(j for cols in groups.values() for j in cols) == list(range(len(columns)))
    assert [columns[j] for j in groups["column: contract"]] == [
        "c:contract=Month-to-month",
        "c:contract=One year",
        "c:contract=Two year",
    ]
    assert groups["VA score: pv_score"] == [columns.index("s:pv_score")]
    imp = telco.result.importances
    assert set(imp.index) == set(groups) and imp["importance"].is_monotonic_decreasing
    assert imp["importance"].iloc[0] > 0


def test_median_substitution_is_zero_at_the_reference(telco) -> None:
    X = telco.result.scored.X.iloc[:3]
    own = compare.median_substitution(telco.model, X.iloc[[0]], X.iloc[0])
    np.testing.assert_allclose(own.to_numpy(), 0.0, atol=1e-12)
    reference = compare.reference_inputs(X)
    onehot = [c for c in X.columns if c.startswith("c:contract=")]
    assert reference[onehot].sum() == 1.0  # a category's reference is one real level, not all-off


def test_value_correlations_rank_future_spend() -> None:
    spend = pd.Series([0.0, 5.0, 10.0, 50.0], index=list("abcd"))
    candidates = pd.DataFrame(
        {"pv_score": [1.0, 2.0, 3.0, 4.0], "interpurchase_days": [40.0, 30.0, 20.0, 10.0]},
        index=list("abcd"),
    )
    rho = compare.value_correlations(candidates, spend)["spearman"]
    assert rho["pv_score"] == pytest.approx(1.0) and rho["interpurchase_days"] == pytest.approx(
        -1.0
    )


def test_cdnow_value_section(cdnow_model) -> None:
    """A transaction log: future spend per segment and the PV scores' rank correlation with it."""
    model, _ = load_packaged_model(cdnow_model.model_uri)
    inputs = comparison_inputs(model, max_rows=800)
    result = compare.compare_model(
        model, inputs.customers, inputs.train_customers, top=3, n_repeats=1
    )
    corr = result.value_correlations
    assert {"pv_score", "expected_purchases", "predicted_clv"} <= set(corr.index)
    assert corr.loc["pv_score", "spearman"] > 0.2
    spend = result.segments[("mean_future_spend", "fuzzy")]
    assert spend["key_attack_defend"] > spend["release"]
    assert result.headline["spearman_pv_future_spend"] == corr.loc["pv_score", "spearman"]
    page = render_report(result, {"name": "test-cdnow"})
    assert "future spend per segment and PV correlations" in page


def test_unlabelled_input_compares_every_row(telco, tmp_path: Path) -> None:
    """A scoring file without labels: every row is compared; churn sections say why they are empty."""
    raw = pd.read_csv(TELCO_CSV, nrows=120).drop(columns="churn")
    path = tmp_path / "new_customers.csv"
    raw.to_csv(path, index=False)
    inputs = comparison_inputs(telco.model, input_path=path)
    assert (
        len(inputs.customers) == 120 and "every customer of new_customers.csv" in inputs.description
    )
    result = compare.compare_model(telco.model, inputs.customers, inputs.train_customers, top=3)
    assert (
        result.churn_metrics is None
        and result.importances is None
        and "roc_auc_bp_network" not in result.headline
    )
    page = render_report(result, telco.identity)
    assert "No churn labels in this input" in page and "No realised-value labels" in page


def test_report_is_self_contained(telco) -> None:
    page = render_report(
        telco.result, telco.identity, title="t", customers=telco.inputs.description
    )
    sources = re.findall(r'<img[^>]*src="([^"]*)"', page)
    assert len(sources) >= 9 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert (
        not re.search(r'(src|href)="(?!data:)', page)
        and "<link" not in page
        and "<script" not in page
    )
    for label, value in headline_text(telco.result.headline).items():
        assert f'<span class="v">{value}</span><span class="k">{html.escape(label)}</span>' in page

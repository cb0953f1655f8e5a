"""The model-vs-fuzzy comparison, its intervals, verdict and report, on real models."""

from __future__ import annotations

import re
import stat
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from valuecube.models.fuzzy import V
from valuecube.training import bootstrap, compare, explanations
from valuecube.training.compare_inputs import comparison_inputs, load_packaged_model
from valuecube.training.report import headline_text, render_report, write_report
from valuecube.training.verdict import build_verdict

TELCO_CSV = Path(__file__).resolve().parents[2] / "data" / "telco_churn.csv"


@pytest.fixture(scope="module")
def telco(telco_model) -> SimpleNamespace:
    """The full comparison on the Telco model's own test split (few repeats to stay quick)."""
    model, identity = load_packaged_model(telco_model.model_uri)
    inputs = comparison_inputs(model)
    result = compare.compare_model(
        model, inputs.customers, inputs.train_customers, top=5, n_repeats=1, n_resamples=100
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
    for label in compare.DIMENSION_LABELS:
        b = table[f"{label} membership"].to_numpy()
        np.testing.assert_allclose(b.sum(axis=1), 1.0, atol=1e-9)
        np.testing.assert_allclose(b @ V, table[("VA score", label)], atol=1e-6)
    np.testing.assert_allclose(table["network P(segment)"].sum(axis=1), 1.0, atol=1e-6)
    for sentence, (_, row) in zip(
        table[("lever", "lever")], table["VA score"].iterrows(), strict=True
    ):
        dimension, score = sentence.split(":")[0].split()
        assert float(score) == pytest.approx(row[dimension], abs=0.005)  # "PV 4.98: ..."
        assert ("below high" in sentence) == (row[dimension] < r.scored.threshold)
    assert r.local_effects.shape == (
        len(explanations.input_groups(list(r.scored.X.columns))),
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
    groups = explanations.input_groups(columns)
    assert sorted(j for cols in groups.values() for j in cols) == list(range(len(columns)))
    assert [columns[j] for j in groups["column: contract"]] == [
        "c:contract=Month-to-month",
        "c:contract=One year",
        "c:contract=Two year",
    ]
    assert "VA score: pv_score" not in groups  # a customer-table network never sees the VA scores
    imp = telco.result.importances
    assert set(imp.index) == set(groups) and imp["importance"].is_monotonic_decreasing
    assert imp["importance"].iloc[0] > 0


def test_median_substitution_is_zero_at_the_reference(telco) -> None:
    X = telco.result.scored.X.iloc[:3]
    own = explanations.median_substitution(telco.model, X.iloc[[0]], X.iloc[0])
    np.testing.assert_allclose(own.to_numpy(), 0.0, atol=1e-12)
    reference = explanations.reference_inputs(X)
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


@pytest.fixture(scope="module")
def cdnow(cdnow_model) -> SimpleNamespace:
    """The comparison on a sample of the CDNOW model's own test split."""
    model, _ = load_packaged_model(cdnow_model.model_uri)
    inputs = comparison_inputs(model, max_rows=800)
    result = compare.compare_model(
        model, inputs.customers, inputs.train_customers, top=3, n_repeats=1
    )
    return SimpleNamespace(model=model, inputs=inputs, result=result)


def test_cdnow_value_section(cdnow) -> None:
    """A transaction log: future spend per segment and the PV scores' rank correlation with it."""
    model, result = cdnow.model, cdnow.result
    corr = result.value_correlations
    assert {"pv_score", "expected_purchases", "predicted_clv"} <= set(corr.index)
    assert corr.loc["pv_score", "spearman"] > 0.2
    spend = result.segments[("mean_future_spend", "fuzzy")]
    assert spend["key_attack_defend"] > spend["release"]
    assert result.headline["spearman_pv_future_spend"] == corr.loc["pv_score", "spearman"]
    assert result.value_intervals.loc["pv_score", "low"] > 0
    page = render_report(result, {"name": "test-cdnow"}, config=model.config)
    assert "future spend per segment and PV correlations" in page
    assert "-week holdout to" in page and 'Forecasting value:</span> <span class="use">rank' in page


def test_unlabelled_input_compares_every_row(telco, tmp_path: Path) -> None:
    """A scoring file without labels: all rows compared; churn sections say why they are empty."""
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
    assert len(sources) >= 8 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert (
        not re.search(r'(src|href)="(?!data:)', page)
        and "<link" not in page
        and "<script" not in page
    )
    assert page.index('<section id="verdict">') < page.index("<h1>")
    for value in headline_text(telco.result.headline).values():
        assert f"<td>{value}</td>" in page, value


def test_bootstrap_matches_the_point_metrics(telco) -> None:
    """The intervals' values are the metrics on all customers; each interval contains its value."""
    r = telco.result
    metrics = r.churn_intervals.metrics
    for name in r.churn_scores:
        assert metrics.loc[(name, "roc_auc"), "value"] == pytest.approx(
            r.churn_metrics.loc[name, "roc_auc"], abs=1e-12
        )
        assert metrics.loc[(name, "top_decile_lift"), "value"] == pytest.approx(
            r.churn_metrics.loc[name, "top_decile_lift"]
        )
    assert (metrics["low"] <= metrics["value"]).all() and (
        metrics["value"] <= metrics["high"]
    ).all()
    a = r.agreement_intervals
    assert a.loc["segment_kappa", "value"] == pytest.approx(r.agreement["segment_kappa"])
    assert a.loc["segment_accuracy", "low"] < a.loc["segment_accuracy", "high"]
    d = r.churn_intervals.differences
    ab, ba = (
        d.loc[("bp_network", "lightgbm", "roc_auc")],
        d.loc[("lightgbm", "bp_network", "roc_auc")],
    )
    assert ab["value"] == pytest.approx(-ba["value"]) and ab["low"] == pytest.approx(-ba["high"])


def test_paired_bootstrap_is_narrower_than_unpaired() -> None:
    """Two scores that rank the same customers alike: the paired difference is exactly zero."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500)
    p = np.clip(y * 0.3 + rng.random(500) * 0.7, 0, 1)
    result = bootstrap.churn_intervals(y, {"a": p, "b": p / 2}, n_resamples=100)
    d = result.differences.loc[("a", "b", "roc_auc")]
    assert d["value"] == d["low"] == d["high"] == 0.0  # same ranking on every resample
    m = result.metrics.loc[("a", "roc_auc")]
    assert m["low"] < m["value"] < m["high"]


def test_verdict_warns_about_a_broken_model(telco) -> None:
    """A network that scores churn at random and mislabels segments is called out, not described."""
    r = telco.result
    t = r.scored.table
    y = t["churn"].to_numpy()
    rng = np.random.default_rng(0)
    scores = {**r.churn_scores, "bp_network": rng.random(len(y))}
    shuffled = t.assign(segment_network=rng.permutation(t["segment_network"].to_numpy()))
    broken = replace(
        r,
        scored=replace(r.scored, table=shuffled),
        churn_scores=scores,
        churn_metrics=compare.churn_table(y, scores),
    )
    verdict = build_verdict(compare.with_intervals(broken, n_resamples=100))
    text = "\n".join(verdict.warnings)
    assert "BP network ranks churners worse than the logistic regression" in text
    assert "do not reproduce the fuzzy rule" in text
    churn = verdict.decisions[0]
    assert churn.decision.startswith("Targeting retention") and "BP network" not in churn.use
    healthy = build_verdict(r)
    d = r.churn_intervals.differences.loc[("bp_network", "logistic_regression", "roc_auc")]
    warned = any("BP network ranks churners worse" in w for w in healthy.warnings)
    assert warned == (d["high"] < 0)  # warned exactly when the interval is below zero
    assert [d.decision for d in healthy.decisions] == [
        "Targeting retention by churn risk",
        "Allocating resources by segment",
        "Forecasting value",
    ]


def test_extra_sections_follow_the_built_in_ones(telco, tmp_path: Path) -> None:
    extra = SimpleNamespace(title="Forecasts", html='<p id="extra-marker">horizon 90 days</p>')
    page = render_report(telco.result, telco.identity, extra_sections=[extra])
    assert page.index('id="explanations"') < page.index("<h2>Forecasts</h2>")
    assert '<p id="extra-marker">horizon 90 days</p>' in page
    path = write_report(page, tmp_path / "sub" / "report.html")
    assert path.read_text(encoding="utf-8") == page
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert not list(path.parent.glob(".*.partial"))


def test_cdnow_report_shows_forecast_and_btyd_sections(cdnow) -> None:
    """A log model with forward heads: the forecast and BTYD sections, on the compared customers."""
    from valuecube.training.forecast_report import ACTUAL_SEGMENT, ACTUAL_SPEND
    from valuecube.training.report_sections import FORECAST_TITLE, extra_sections, forecast_frame

    model, inputs, result = cdnow.model, cdnow.inputs, cdnow.result
    assert inputs.log is not None and inputs.as_of == pd.Timestamp(model.config.input.as_of)
    scored = inputs.customers.loc[result.scored.table.index]
    frame = forecast_frame(model, scored, inputs.log, inputs.as_of)
    assert {ACTUAL_SEGMENT, ACTUAL_SPEND} <= set(frame.columns) and len(frame) == len(scored)
    assert frame[ACTUAL_SPEND].sum() == pytest.approx(scored["future_spend"].sum())
    sections = extra_sections(model, result, inputs.customers, inputs.log, inputs.as_of)
    titles = [s.title for s in sections]
    assert titles[:7] == [
        FORECAST_TITLE,
        "Migration between segments",
        "Next-segment accuracy: network vs persistence",
        "Spend per decile: predicted vs realised",
        "Gain curve of spend",
        "Customers expected to move down",
        "Calibration vs holdout",
    ]
    assert {"Calibration vs holdout", "Cumulative repeat purchases"} <= set(titles)
    assert "Kaplan-Meier curves by segment" not in titles
    page = render_report(
        result, {"name": "test-cdnow"}, config=model.config, extra_sections=sections
    )
    for title in (FORECAST_TITLE, "Calibration vs holdout", "P(alive) by frequency and recency"):
        assert f"<h2>{title}</h2>" in page, title


def test_telco_report_shows_kaplan_meier_per_segment(telco) -> None:
    """A customer table with a lifetime block: Kaplan-Meier per segment, no forecast sections."""
    from valuecube.training.report_sections import FORECAST_TITLE, extra_sections

    sections = extra_sections(telco.model, telco.result, telco.inputs.customers)
    assert [s.title for s in sections] == ["Kaplan-Meier curves by segment"]
    page = render_report(telco.result, telco.identity, extra_sections=sections)
    assert "<h2>Kaplan-Meier curves by segment</h2>" in page and FORECAST_TITLE not in page
    segments = set(telco.result.scored.table["segment_fuzzy"])
    assert all(f"<th>{s}</th>" in sections[0].html for s in segments)

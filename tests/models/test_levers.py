"""Rule levers: the nearest threshold and the single factor change that reaches it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import TELCO_CONFIG, TELCO_CSV

from valuecube.features.config import load_config
from valuecube.features.customers import build_customer_table
from valuecube.features.factors import compute_factors
from valuecube.features.inputs import load_input
from valuecube.models.fuzzy import FuzzyValueClassifier
from valuecube.models.levers import lever_sentence, levers


@pytest.fixture(scope="module")
def telco():
    cfg = load_config(TELCO_CONFIG)
    table = build_customer_table(load_input(TELCO_CSV, cfg.input, strict=True), cfg.input).table
    factors = compute_factors(table, cfg.factors)
    tree = cfg.tree.factor_names()
    return FuzzyValueClassifier(cfg.tree, normalization="minmax").fit(factors[tree]), factors[tree]


def test_worked_lever_by_hand(telco) -> None:
    """Min-max: Δraw = −margin / (8·w) · (max − min), checked against the formula by hand."""
    fuzzy, factors = telco
    one = factors.iloc[[0]]
    got = levers(fuzzy, one).iloc[0]
    k = ("CV", "PV", "RA").index(got["nearest_dimension"])
    j = list(factors.columns).index(got["lever_factor"])
    w = fuzzy.linear_weights_[0][j, k]
    lo, hi = fuzzy.knots_[got["lever_factor"]][0]
    assert got["lever_units"] == "raw"
    assert got["lever_change"] == pytest.approx(-got["margin"] / (8 * w) * (hi - lo))
    assert abs(got["margin"]) == min(abs(got[c]) for c in ("cv_margin", "pv_margin", "ra_margin"))


def test_the_lever_change_reaches_the_threshold(telco) -> None:
    fuzzy, factors = telco
    sample = factors.iloc[:200]
    out = levers(fuzzy, sample)
    assert out["lever_factor"].notna().mean() > 0.5
    moved = sample.copy()
    for i, row in enumerate(out.itertuples()):
        if row.lever_factor is not None:
            moved.iloc[i, moved.columns.get_loc(row.lever_factor)] += row.lever_change
    scores = fuzzy.transform(moved)
    k = out["nearest_dimension"].map({"CV": 0, "PV": 1, "RA": 2}).to_numpy()
    has = out["lever_factor"].notna().to_numpy()
    reached = scores[np.arange(len(scores)), k][has]
    np.testing.assert_allclose(reached, fuzzy.threshold, atol=1e-6)
    sentence = lever_sentence(out.iloc[int(np.flatnonzero(has)[0])], fuzzy.threshold)
    assert " high; " in sentence and "is the lever" in sentence


def test_segment_output_has_lever_columns(tmp_path) -> None:
    from valuecube.models.levers import LEVER_COLUMNS
    from valuecube.training.segment import run_segment

    out = tmp_path / "seg.csv"
    threshold = run_segment(TELCO_CONFIG, TELCO_CSV, output=out).cube.fuzzy_.threshold
    back = pd.read_csv(out, dtype={"customer_id": str})
    assert set(LEVER_COLUMNS) <= set(back.columns)
    margins = back[["cv_margin", "pv_margin", "ra_margin"]].abs().min(axis=1)
    np.testing.assert_allclose(back["margin"].abs(), margins)
    np.testing.assert_allclose(back["cv_margin"], back["cv_score"] - threshold, atol=1e-9)


def test_score_with_levers_matches_the_rule(telco_model, tmp_path) -> None:
    from valuecube.models.levers import LEVER_COLUMNS
    from valuecube.serving.batch import score_file

    out = tmp_path / "scores.parquet"
    score_file("models:/test-telco@challenger", TELCO_CSV, out, progress=False, levers=True)
    back = pd.read_parquet(out)
    assert list(back.columns[-len(LEVER_COLUMNS) :]) == list(LEVER_COLUMNS)
    assert back["nearest_dimension"].isin(["CV", "PV", "RA"]).all()
    assert back["lever_units"].dropna().isin(["raw", "normalised"]).all()


def test_pyfunc_levers_param_gives_the_rules_levers(telco_pyfunc) -> None:
    """``params={"levers": True}`` (serve and Spark use it): the same columns as levers()."""
    from valuecube.models.levers import LEVER_COLUMNS
    from valuecube.models.packaged import unwrap

    rows = pd.read_csv(TELCO_CSV, dtype=str, keep_default_na=False).drop(columns="churn")
    rows = rows.iloc[:50]
    plain = telco_pyfunc.predict(rows)
    out = telco_pyfunc.predict(rows, params={"levers": True})
    assert not set(LEVER_COLUMNS) & set(plain.columns)
    assert list(out.columns) == [*plain.columns, *LEVER_COLUMNS]
    model = unwrap(telco_pyfunc)
    expected = levers(model.cube.fuzzy_, model.cube.factors(model.customers(rows)))
    pd.testing.assert_frame_equal(
        out[list(LEVER_COLUMNS)].reset_index(drop=True), expected.reset_index(drop=True)
    )
    params = {p.name for p in telco_pyfunc.metadata.signature.params}
    assert {"reasons", "reasons_json", "levers"} <= params

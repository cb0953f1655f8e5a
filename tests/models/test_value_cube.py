"""ValueCube end to end on both real datasets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import CDNOW_CONFIG, CDNOW_TXT, TELCO_CONFIG, TELCO_CSV

from valuecube.features.config import load_config
from valuecube.features.customers import build_customer_table
from valuecube.features.inputs import load_input
from valuecube.models.segments import SEGMENT_CODES
from valuecube.models.value_cube import CUBE_OUTPUT_COLUMNS, ValueCube

STAGES = {"acquisition", "development", "maturity", "decline"}


def _fitted(config, data):
    cfg = load_config(config)
    table = build_customer_table(load_input(data, cfg.input, strict=True), cfg.input).table
    return cfg, table, ValueCube(cfg).fit(table)


@pytest.fixture(scope="module", params=["telco", "cdnow"])
def fitted(request):
    if request.param == "telco":
        return _fitted(TELCO_CONFIG, TELCO_CSV)
    return _fitted(CDNOW_CONFIG, CDNOW_TXT)


def test_score_output(fitted) -> None:
    cfg, table, cube = fitted
    scored, rejected = cube.segment(table)
    assert tuple(scored.columns[: len(CUBE_OUTPUT_COLUMNS)]) == CUBE_OUTPUT_COLUMNS
    assert len(scored) + len(rejected) == len(table) and scored.index.is_unique
    s = scored[["cv_score", "pv_score", "ra_score"]].to_numpy()
    assert np.isfinite(s).all() and s.min() >= 1.0 and s.max() <= 9.0
    assert set(scored["segment"]) <= set(SEGMENT_CODES) and scored["segment"].nunique() >= 4
    assert scored["segment_name"].notna().all() and scored["policy"].notna().all()
    assert np.isfinite(scored["clv"]).all() and (scored["clv"] >= 0).all()
    assert set(scored["lifecycle_stage"]) <= STAGES
    high_cv = scored["cv_score"] >= cfg.segmentation.threshold
    assert (
        scored.loc[high_cv, "segment"]
        .isin(["key_attack_defend", "attack_defend", "key_maintain", "maintain"])
        .all()
    )


def test_alone_equals_batch(fitted) -> None:
    _, table, cube = fitted
    scored, _ = cube.segment(table)
    ids = table.index[[0, 17, len(table) // 2]]
    for cid in ids:
        alone, _ = cube.segment(table.loc[[cid]])
        pd.testing.assert_frame_equal(alone, scored.loc[[cid]])
    subset = table.iloc[::-7]
    part, _ = cube.segment(subset)
    pd.testing.assert_frame_equal(part, scored.loc[subset.index])


def test_factors_and_unfitted(fitted) -> None:
    cfg, table, cube = fitted
    f = cube.factors(table.head(20))
    assert list(f.columns) == list(cfg.factors) and len(f) == 20
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        ValueCube(cfg).segment(table.head(2))


def test_telco_clv_revenue_model() -> None:
    _, table, cube = _fitted(TELCO_CONFIG, TELCO_CSV)
    scored, _ = cube.segment(table.head(5))
    yearly = 12 * table["monthlycharges"].head(5).to_numpy()
    annuity = sum(1 / 1.09**t for t in range(1, 6))
    np.testing.assert_allclose(scored["clv"], yearly * annuity, rtol=1e-9)


def test_telco_unscorable_customer_rejected() -> None:
    _, table, cube = _fitted(TELCO_CONFIG, TELCO_CSV)
    bad = table.head(6).copy()
    bad["contract"] = bad["contract"].astype(
        str
    )  # a table built without validation (validated: Categorical)
    bad.iloc[3, bad.columns.get_loc("contract")] = "Ten year"  # unmapped category → NaN factor
    scored, rejected = cube.segment(bad)
    assert len(scored) == 5 and list(rejected.index) == [bad.index[3]]
    assert "contract_months" in rejected["reason"].iloc[0]


def test_telco_churn_higher_in_release_than_key_attack() -> None:
    _, table, cube = _fitted(TELCO_CONFIG, TELCO_CSV)
    scored, _ = cube.segment(table)
    rate = table["churn"].groupby(scored["segment"]).mean()
    assert rate["release"] > rate["key_attack_defend"]


def test_empty_batch(fitted) -> None:
    _, table, cube = fitted
    scored, rejected = cube.segment(table.head(0))
    assert tuple(scored.columns) == tuple(cube.segment(table.head(1))[0].columns)
    assert len(scored) == 0 and len(rejected) == 0
    assert scored["cv_score"].dtype == "float64" and "reason" in rejected.columns


def test_alone_equals_batch_exactly(fitted) -> None:
    _, table, cube = fitted
    scored, _ = cube.segment(table)
    rows = range(0, len(table), len(table) // 12)  # the classifier-level test covers many more rows
    alone = pd.concat([cube.segment(table.iloc[[i]])[0] for i in rows])
    pd.testing.assert_frame_equal(alone, scored.iloc[list(rows)], check_exact=True)

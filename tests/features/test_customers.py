"""The per-customer table from both input shapes (real data)."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import CDNOW_CONFIG, CDNOW_TXT, TELCO_CONFIG, TELCO_CSV

from valuecube.features.config import load_config
from valuecube.features.customers import CUSTOMER_ID, build_customer_table
from valuecube.features.inputs import load_input


@pytest.fixture(scope="module")
def cdnow():
    cfg = load_config(CDNOW_CONFIG)
    validated = load_input(CDNOW_TXT, cfg.input, strict=True)
    return cfg, validated


def test_telco_customer_table() -> None:
    cfg = load_config(TELCO_CONFIG)
    validated = load_input(TELCO_CSV, cfg.input, strict=True)
    ct = build_customer_table(validated, cfg.input)
    t = ct.table
    assert t.index.name == CUSTOMER_ID and t.index.is_unique and len(t) == 3930
    assert "customerid" not in t.columns and "churn" in t.columns
    assert set(t["churn"].unique()) == {0, 1}
    raw = pd.read_csv(TELCO_CSV, dtype=str)
    assert t["churn"].sum() == (raw["churn"] == "Yes").sum()
    assert t.loc[raw["customerid"].iloc[0], "churn"] == int(raw["churn"].iloc[0] == "Yes")
    assert list(ct.labels.columns) == ["churn"]
    unlabelled = build_customer_table(validated, cfg.input, with_labels=False)
    assert "churn" not in unlabelled.table.columns and unlabelled.labels.shape[1] == 0


def test_cdnow_customer_table(cdnow) -> None:
    cfg, validated = cdnow
    ct = build_customer_table(validated, cfg.input)
    t = ct.table
    assert len(t) == 18856 and t.index.name == CUSTOMER_ID and t.index.is_unique
    assert ct.as_of == pd.Timestamp("1997-09-30")
    assert set(t["churn"].unique()) == {0, 1}
    assert (t["future_spend"] >= 0).all()
    # churn = no purchase in the holdout
    assert ((t["churn"] == 1) == (t["future_purchases"] == 0)).all()
    assert ((t["churn"] == 1) <= (t["future_spend"] == 0)).all()
    assert (t["frequency"] >= 1).all() and (t["recency_days"] >= 0).all()
    assert list(ct.labels.columns) == ["churn", "future_spend", "future_purchases"]


def test_cdnow_without_labels_and_earlier_as_of(cdnow) -> None:
    cfg, validated = cdnow
    ct = build_customer_table(validated, cfg.input, with_labels=False)
    assert "churn" not in ct.table.columns and len(ct.table) == 18856
    early = build_customer_table(validated, cfg.input, as_of="1997-02-28")
    assert early.as_of == pd.Timestamp("1997-02-28")
    assert len(early.table) < 18856 and early.excluded > 0
    assert len(early.table) + early.excluded == 18856


def test_log_row_accounting(cdnow) -> None:
    """Every log row is used by a customer's row or counted as unused: none vanishes."""
    cfg, validated = cdnow
    for kwargs in ({}, {"with_labels": False}, {"as_of": "1997-02-28"}):
        ct = build_customer_table(validated, cfg.input, **kwargs)
        assert ct.rows_used + ct.rows_unused == validated.rows_read
    scoring = build_customer_table(validated, cfg.input, with_labels=False)
    dates = validated.data.loc[scoring.unused_lines, "date"]
    assert scoring.rows_unused > 0 and (dates > pd.Timestamp("1997-09-30")).all()
    early = build_customer_table(validated, cfg.input, as_of="1997-02-28")
    assert early.excluded > 0 and early.rows_unused > 0  # the not-yet-active customers' rows


def test_customer_rejects_keep_line_and_values(cdnow) -> None:
    from valuecube.features.customers import customer_rejects

    cfg = load_config(TELCO_CONFIG)
    validated = load_input(TELCO_CSV, cfg.input, strict=True)
    some = validated.data.iloc[[4, 9]]
    rejected = pd.DataFrame({"reason": ["x", "y"]}, index=some["customerid"].astype(str))
    rows = customer_rejects(validated, cfg.input, rejected)
    assert rows["line"].tolist() == [6, 11] and str(rows["line"].dtype) == "Int64"
    assert rows["customerid"].tolist() == some["customerid"].tolist()
    assert rows["tenure"].tolist() == [str(v) for v in some["tenure"]]
    log_cfg, log = cdnow
    per_customer = customer_rejects(log, log_cfg.input, pd.DataFrame({"reason": ["z"]}, ["00001"]))
    assert per_customer["line"].isna().all() and per_customer["customer_id"].tolist() == ["00001"]

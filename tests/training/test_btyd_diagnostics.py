"""BTYD diagnostics on the real CDNOW log, with BG/NBD parameters set directly (no compilation)."""

import base64
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from valuecube.features.btyd import BtydValue
from valuecube.features.transactions import customer_features
from valuecube.training.btyd_diagnostics import (
    ReportSection,
    btyd_sections,
    calibration_vs_holdout,
    cumulative_repeat_purchases,
    p_alive_matrix,
)

CDNOW_TXT = Path(__file__).resolve().parents[2] / "data" / "cdnow_master.txt"
START, AS_OF, END = (pd.Timestamp(d) for d in ("1997-01-01", "1997-09-30", "1998-06-30"))
# MAP (= MLE) of BG/NBD and Gamma-Gamma on this log's calibration period (tests/features/test_btyd).
PARAMS = {"r": 0.2493, "alpha": 4.750, "a": 0.7477, "b": 2.2912}
SPEND = {"p": 6.551, "q": 3.628, "v": 14.273}


@pytest.fixture(scope="module")
def log():
    tx = pd.read_csv(CDNOW_TXT, sep=r"\s+", dtype={"customer_id": str})
    return pd.DataFrame(
        {
            "customer_id": tx["customer_id"],
            "date": pd.to_datetime(tx["date"].astype(str), format="%Y%m%d"),
            "quantity": tx["number_of_cds"].astype(float),
            "amount": tx["dollar_value"].astype(float),
        }
    )


@pytest.fixture(scope="module")
def customers(log):
    return customer_features(log, AS_OF, window_start=START, holdout_end=END)


@pytest.fixture(scope="module")
def model(customers):
    model = BtydValue(n_draws=2)
    model.params_, model.spend_params_ = dict(PARAMS), dict(SPEND)
    model.draws_ = {k: np.full(2, v) for k, v in PARAMS.items()}
    model.spend_draws_ = {k: np.full(2, v) for k, v in SPEND.items()}
    model.max_tenure_ = float(customers["tenure_days"].max() / 7)
    return model


def test_calibration_vs_holdout(model, customers):
    table = calibration_vs_holdout(model, customers, holdout_days=(END - AS_OF).days)
    assert list(table.index) == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert table["customers"].sum() == len(customers)
    zero = customers["repeat_frequency"] == 0
    assert table.loc["0", "actual"] == pytest.approx(customers.loc[zero, "future_purchases"].mean())
    # BG/NBD tracks the holdout by frequency, a little low in the middle as in FHL (2005), Fig. 3.
    assert ((table["predicted"] / table["actual"] - 1).abs() < 0.35).all()
    assert table["predicted"].is_monotonic_increasing


def test_cumulative_repeat_purchases(model, log, customers):
    frame = cumulative_repeat_purchases(model, log, window_start=START, as_of=AS_OF, end=END)
    assert len(frame) == 78 and frame["holdout"].sum() == 78 - 39
    days = log[["customer_id", "date"]].drop_duplicates()
    repeats = len(days) - days["customer_id"].nunique()
    assert frame["actual"].iloc[-1] == repeats
    assert (np.diff(frame["predicted"]) >= 0).all()
    end_of_calibration = frame.loc[39]
    assert end_of_calibration["predicted"] == pytest.approx(end_of_calibration["actual"], rel=0.05)
    assert frame["predicted"].iloc[-1] == pytest.approx(frame["actual"].iloc[-1], rel=0.1)


def test_p_alive_matrix(model):
    matrix = p_alive_matrix(model, max_frequency=10)
    assert matrix.shape == (11, int(model.max_tenure_) + 1)
    assert matrix.loc[0, 0] == 1.0 and matrix.loc[0, 1:].isna().all()
    body = matrix.loc[1:].to_numpy()
    assert ((body > 0) & (body <= 1)).all()
    assert (np.diff(body, axis=1) >= 0).all()  # a more recent last purchase: more likely alive
    assert matrix.loc[10, 0] < matrix.loc[1, 0]  # many purchases long ago: likely gone


def test_report_sections(model, log, customers):
    sections = btyd_sections(
        model, customers, log, window_start=START, as_of=AS_OF, holdout_end=END
    )
    titles = ["Calibration vs holdout", "Cumulative repeat purchases"]
    assert [s.title for s in sections] == [*titles, "P(alive) by frequency and recency"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        sections[0].title = "x"
    for section in sections:
        assert isinstance(section, ReportSection)
        encoded = section.html.split("data:image/png;base64,")[1].split('"')[0]
        assert base64.b64decode(encoded).startswith(b"\x89PNG")
    assert "BG/NBD r=0.249" in sections[0].html and "<table" in sections[0].html


def test_kaplan_meier_section_by_hand():
    from valuecube.features.survival import kaplan_meier_by_group
    from valuecube.training.survival_diagnostics import kaplan_meier_section, kaplan_meier_summary

    # Segment a: churns at 10 and 30 of 4 customers -> S(12) = 3/4, S(48) = 3/4 · 1/2 (two at risk).
    data = ([10, 20, 30, 60, 5, 50], [1, 0, 1, 0, 0, 1], ["a", "a", "a", "a", "b", "b"])
    section = kaplan_meier_section(*data)
    assert section.title == "Kaplan-Meier curves by segment"
    assert "data:image/png;base64," in section.html and "<table" in section.html
    table = kaplan_meier_summary(kaplan_meier_by_group(*data))
    assert table.loc["a", "S(12)"] == pytest.approx(0.75, abs=1e-3)
    assert table.loc["a", "S(48)"] == pytest.approx(0.375, abs=1e-3)
    assert table.loc["b", "S(48)"] == pytest.approx(1.0)

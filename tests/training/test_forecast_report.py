"""The "Where customers are heading" report sections: what each holds, on a small made frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from valuecube.training.forecast_report import (
    ReportSection,
    forecast_sections,
    gain_curve,
    spend_deciles,
)


def _frame(with_actuals: bool) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "segment": ["key_attack_defend", "maintain", "release", "develop"],
            "segment_next": ["key_maintain", "maintain", "release", "release"],
            "churn_probability": [0.2, 0.5, 0.9, 0.7],
            "expected_spend": [100.0, 40.0, 0.0, 5.0],
        }
    )
    if with_actuals:
        frame["segment_next_actual"] = ["key_maintain", "release", "release", "release"]
        frame["future_spend"] = [80.0, 0.0, 0.0, 20.0]
    return frame


def test_sections_with_realised_values() -> None:
    sections = forecast_sections(_frame(True), 273)
    assert all(isinstance(s, ReportSection) for s in sections)
    titles = [s.title for s in sections]
    assert titles == [
        "Migration between segments",
        "Next-segment accuracy: network vs persistence",
        "Spend per decile: predicted vs realised",
        "Gain curve of spend",
        "Customers expected to move down",
    ]
    assert "Actual" in sections[0].html and "273 days" in sections[0].html
    assert sections[2].html.startswith('<img alt="figure" src="data:image/png;base64,')
    overall = sections[1].html.split("<th>all customers</th>")[1].split("</tr>")[0]
    assert "<td>4</td>" in overall and "<td>0.750</td>" in overall and "<td>0.250</td>" in overall
    call_list = sections[4].html
    assert "2 of 4 customers" in call_list  # a: key_attack_defend -> key_maintain; d: -> release
    assert call_list.index(">d<") < call_list.index(">a<")  # likelier churner first


def test_sections_without_realised_values() -> None:
    titles = [s.title for s in forecast_sections(_frame(False), 90)]
    assert titles == ["Migration between segments", "Customers expected to move down"]
    with pytest.raises(ValueError, match="expected_spend"):
        forecast_sections(_frame(False).drop(columns="expected_spend"), 90)


def test_deciles_and_gain_by_hand() -> None:
    predicted, actual = np.arange(20.0), np.arange(20.0)
    deciles = spend_deciles(predicted, actual)
    assert list(deciles.index) == list(range(1, 11))
    assert deciles.loc[1, "realised"] == pytest.approx(18.5)  # the two highest: 19 and 18
    customers, share = gain_curve(predicted, actual)
    assert customers[-1] == 1
    assert share[0] == 0 and share[-1] == pytest.approx(1) and np.all(np.diff(share) >= 0)
    assert share[2] == pytest.approx(37 / 190)

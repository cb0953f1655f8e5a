"""The segment job on both real datasets."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import CDNOW_CONFIG, CDNOW_TXT, TELCO_CONFIG, TELCO_CSV
from conftest import SEGMENT_COLUMNS as COLUMNS

from valuecube.features.inputs import InputError
from valuecube.models.segments import SEGMENT_CODES
from valuecube.training.segment import run_segment, segment_summary


def _bad_telco(tmp_path, n: int = 200):
    lines = TELCO_CSV.read_text().splitlines()[: n + 1]
    header = lines[0].split(",")
    for line_no, col, val in (
        (5, "monthlycharges", "abc"),
        (12, "contract", "Forever"),
        (30, "tenure", "-1"),
    ):
        cells = lines[line_no - 1].split(",")
        cells[header.index(col)] = val
        lines[line_no - 1] = ",".join(cells)
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "config, data, n, suffix",
    [
        (TELCO_CONFIG, TELCO_CSV, 3930, ".csv"),
        (TELCO_CONFIG, TELCO_CSV, 3930, ".parquet"),
        # one CDNOW run: each fits BTYD (seconds); both formats share one writer, tested above
        (CDNOW_CONFIG, CDNOW_TXT, 18856, ".parquet"),
    ],
)
def test_segment_both_datasets(tmp_path, config, data, n, suffix) -> None:
    out = tmp_path / f"seg{suffix}"
    result = run_segment(config, data, output=out)
    back = (
        pd.read_parquet(out)
        if suffix == ".parquet"
        else pd.read_csv(out, dtype={"customer_id": str})
    )
    assert list(back.columns[: len(COLUMNS)]) == COLUMNS
    assert len(back) == n == len(result.scored) and back["customer_id"].is_unique
    assert back["segment"].isin(SEGMENT_CODES).all()
    assert back[["cv_score", "pv_score", "ra_score"]].stack().between(1, 9).all()
    assert "churn" in back.columns
    assert result.rows_rejected == 0 and result.rejects.empty
    summary = result.summary
    assert list(summary.index) == list(SEGMENT_CODES) and summary["customers"].sum() == n
    assert summary["share"].sum() == pytest.approx(1.0)
    if config == CDNOW_CONFIG:
        assert "mean_future_spend" in summary.columns


def test_rejects(tmp_path) -> None:
    bad = _bad_telco(tmp_path)
    out, rej = tmp_path / "out.csv", tmp_path / "rej.csv"
    result = run_segment(TELCO_CONFIG, bad, output=out, rejects_path=rej)
    assert result.rows_read == 200 and result.rows_rejected == 3
    assert len(pd.read_csv(out)) + result.rows_rejected == result.rows_read
    rejects = pd.read_csv(rej)
    assert list(rejects.columns[:3]) == ["line", "customer_id", "reason"]
    assert sorted(rejects["line"]) == [5, 12, 30]
    assert rejects["reason"].str.contains("monthlycharges|contract|tenure").all()


def test_strict_bad_row_writes_nothing(tmp_path) -> None:
    bad = _bad_telco(tmp_path)
    out = tmp_path / "out.csv"
    with pytest.raises(InputError, match="line 5") as info:
        run_segment(TELCO_CONFIG, bad, output=out)
    assert "monthlycharges" in str(info.value)
    assert not out.exists()


def test_segment_summary_labels() -> None:
    scored = pd.DataFrame(
        {
            "segment": ["release", "release", "maintain"],
            "churn": [1, 0, 0],
            "cv_score": [1.0, 2.0, 6.0],
        }
    )
    s = segment_summary(scored)
    assert s.loc["release", "customers"] == 2 and s.loc["release", "churn_rate"] == 0.5
    assert s.loc["key_develop", "customers"] == 0 and len(s) == 8
    assert s.loc["maintain", "mean_cv_score"] == 6.0

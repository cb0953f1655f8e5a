"""Per-customer factors: column, map, count_of, expr, fill; factor_problems."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import TELCO_CONFIG, TELCO_CSV

from valuecube.features.columns import Columns
from valuecube.features.config import FactorSpec, load_config
from valuecube.features.customers import build_customer_table
from valuecube.features.factors import (
    category_codes,
    compute_factor,
    compute_factors,
    factor_problems,
    split_computable,
)
from valuecube.features.inputs import load_input

TABLE = pd.DataFrame(
    {
        "a": [1.0, 2.0, 0.0],
        "b": [2.0, 0.0, 0.0],
        "plan": ["gold", "basic", "none"],
        "x": ["Yes", "No", "Yes"],
        "y": ["Yes", "Yes", "No internet"],
    },
    index=pd.Index(["c1", "c2", "c3"], name="customer_id"),
)


def test_column_and_map() -> None:
    assert compute_factor(TABLE, "f", FactorSpec(column="a")).tolist() == [1.0, 2.0, 0.0]
    mapped = compute_factor(TABLE, "p", FactorSpec(column="plan", map={"gold": 3, "basic": 1}))
    assert mapped.iloc[:2].tolist() == [3.0, 1.0] and np.isnan(mapped.iloc[2])
    filled = compute_factor(
        TABLE, "p", FactorSpec(column="plan", map={"gold": 3, "basic": 1}, fill=0)
    )
    assert filled.tolist() == [3.0, 1.0, 0.0] and filled.name == "p"


@pytest.mark.parametrize(
    "dtype", [object, "string", "str", "category", pd.CategoricalDtype(["Yes", "No", "Maybe"])]
)
def test_category_codes_any_string_dtype(dtype) -> None:
    values = pd.Series(["No", "Yes", None, "Maybe", "Yes"], dtype=dtype)
    assert category_codes(values, ["Yes", "No"]).tolist() == [1, 0, -1, -1, 0]
    assert category_codes(values, ["Yes", "No", "Maybe"]).tolist() == [1, 0, -1, 2, 0]
    assert category_codes(values.iloc[:0], ["Yes"]).tolist() == []


@pytest.mark.parametrize("dtype", [object, "string", "str"])
def test_category_codes_small_and_large_inputs_agree(dtype, monkeypatch) -> None:
    """The dict lookup for a few values and Arrow's index_in give the same codes."""
    from valuecube.features import factors

    rng = np.random.default_rng(3)
    words = np.array(["Yes", "No", "No internet service", "yes", " No", "", "Maybe"], dtype=object)
    raw = words[rng.integers(0, len(words), 500)]
    raw[rng.random(500) < 0.1] = None
    values = pd.Series(raw, dtype=dtype)
    categories = ["Yes", "No", "No internet service"]
    large = category_codes(values, categories)  # 500 values: Arrow
    monkeypatch.setattr(factors, "SMALL_ROWS", 1000)
    small = category_codes(values, categories)  # the same values through the dict
    assert small.dtype == large.dtype == np.int64
    np.testing.assert_array_equal(small, large)
    assert set(np.unique(large)) == {-1, 0, 1, 2}


def test_category_codes_compares_as_text() -> None:
    """A numeric column matches the text of its values (as count_of always did)."""
    assert category_codes(pd.Series([1, 0, 1]), ["1"]).tolist() == [0, -1, 0]
    assert compute_factor(
        pd.DataFrame({"flag": [1, 0, 1]}), "n", FactorSpec(count_of=["flag"], value="1")
    ).tolist() == [1.0, 0.0, 1.0]


def test_count_of() -> None:
    assert compute_factor(TABLE, "n", FactorSpec(count_of=["x", "y"])).tolist() == [2.0, 1.0, 1.0]
    assert compute_factor(TABLE, "n", FactorSpec(count_of=["y"], value="No internet")).tolist() == [
        0.0,
        0.0,
        1.0,
    ]


def test_expr_fill_and_earlier_factor() -> None:
    specs = {
        "ratio": FactorSpec(expr="a / b"),
        "ratio0": FactorSpec(expr="a / b", fill=-1),
        "double": FactorSpec(column="a"),
        "uses_factor": FactorSpec(expr="double * 2 + b"),
    }
    out = compute_factors(TABLE, specs)
    assert list(out.columns) == list(specs) and out.index.equals(TABLE.index)
    assert (
        out["ratio"].iloc[0] == 0.5
        and np.isinf(out["ratio"].iloc[1])
        and np.isnan(out["ratio"].iloc[2])
    )
    assert out["ratio0"].tolist() == [0.5, -1.0, -1.0]
    assert out["uses_factor"].tolist() == [4.0, 4.0, 0.0]
    problems = factor_problems(out)
    assert problems["c1"] == ""
    assert "ratio" in problems["c2"] and "ratio0" not in problems["c2"].replace("ratio,", "").split(
        ": "
    )[1].split(", ")
    assert problems["c3"].startswith("factor(s) not computable")


def test_factor_problems_all_good() -> None:
    good = pd.DataFrame({"a": [1.0, 2.0]}, index=["x", "y"])
    assert factor_problems(good).tolist() == ["", ""]


def test_split_computable_words_only_the_bad_rows() -> None:
    factors = pd.DataFrame(
        {"a": [1.0, np.nan, 3.0], "b": [1.0, 2.0, np.inf]}, index=["x", "y", "z"]
    )
    ok, reasons = split_computable(factors)
    assert ok.tolist() == [True, False, False]
    assert reasons.to_dict() == {
        "y": "factor(s) not computable (non-finite): a",
        "z": "factor(s) not computable (non-finite): b",
    }
    ok, reasons = split_computable(factors.loc[["x"]])
    assert ok.tolist() == [True] and reasons.empty


def test_telco_factors_real() -> None:
    cfg = load_config(TELCO_CONFIG)
    table = build_customer_table(load_input(TELCO_CSV, cfg.input, strict=True), cfg.input).table
    f = compute_factors(table, cfg.factors)
    assert len(f) == 3930 and (factor_problems(f) == "").all()
    assert f["services"].between(0, 8).all() and f["household"].between(0, 2).all()
    assert set(f["contract_months"].unique()) == {1.0, 12.0, 24.0}
    assert set(f["auto_payment"].unique()) == {0.0, 1.0}
    np.testing.assert_allclose(f["price_per_service"], f["monthly_charges"] / (f["services"] + 1))
    np.testing.assert_allclose(f["yearly_revenue"], 12 * f["monthly_charges"])
    # tenure 0 customers have totalcharges 0 → charge_trend takes its fill 0
    zero = table["totalcharges"] == 0
    if zero.any():
        assert (f.loc[zero, "charge_trend"] == 0).all()
    row = table.iloc[0]
    assert f["charge_trend"].iloc[0] == pytest.approx(
        row["monthlycharges"] * row["tenure"] / row["totalcharges"] - 1
    )


def test_category_codes_of_a_numpy_array_equal_the_series_path() -> None:
    """An API request's text column (an object array, None where missing) codes like a Series."""
    values = np.array(["No", "Yes", None, "Maybe", "Yes", "", "yes"], dtype=object)
    for categories in (["Yes", "No"], ["Yes", "No", "Maybe"], ["Maybe"], ["", "No"], []):
        expected = category_codes(pd.Series(values, dtype="str"), categories)
        assert category_codes(values, categories).tolist() == expected.tolist(), categories
    assert category_codes(np.array([1, 0, 1], dtype=object), ["1"]).tolist() == [0, -1, 0]
    assert category_codes(values[:0], ["Yes"]).tolist() == []


def test_factors_of_columns_equal_the_frame_path() -> None:
    """compute_factors over Columns (the API's path) gives the frame path's numbers as Columns."""
    cfg = load_config(TELCO_CONFIG)
    table = build_customer_table(load_input(TELCO_CSV, cfg.input, strict=True), cfg.input).table
    table = table.iloc[:500]
    frame = compute_factors(table, cfg.factors)
    as_text = {  # as the API types a request: floats, and text as objects
        c: table[c].to_numpy(dtype="float64")
        if pd.api.types.is_numeric_dtype(table[c].dtype)
        else np.asarray(table[c].astype(str), dtype=object)
        for c in table.columns
    }
    columns = compute_factors(Columns(as_text, table.index.to_numpy()), cfg.factors)
    assert isinstance(columns, Columns) and columns.columns == list(frame.columns)
    np.testing.assert_array_equal(columns.to_numpy(), frame.to_numpy())
    assert columns.index.tolist() == frame.index.tolist()
    ok, problems = split_computable(columns)
    assert ok.all() and problems.empty

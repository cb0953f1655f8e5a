"""Columns: the frame interface the scoring steps use, over 1-D NumPy arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd

from valuecube.features.columns import Columns, floats, like, like_columns


def test_columns_read_like_a_frame() -> None:
    table = Columns(
        {"a": np.array([1.0, 2.0, 3.0]), "t": np.array(["x", None, "z"], dtype=object)},
        np.array(["c1", "c2", "c3"]),
    )
    assert len(table) == 3 and table.columns == ["a", "t"] and "a" in table and "b" not in table
    assert table["a"].tolist() == [1.0, 2.0, 3.0]
    sub = table[np.array([True, False, True])]
    assert sub.index.tolist() == ["c1", "c3"] and sub["t"].tolist() == ["x", "z"]
    assert table[["a"]].to_numpy().tolist() == [[1.0], [2.0], [3.0]]
    table["b"] = np.zeros(3)
    assert table.columns == ["a", "t", "b"]


def test_a_matrix_comes_back_without_a_copy() -> None:
    matrix = np.asfortranarray(np.arange(6.0).reshape(3, 2))
    table = Columns.from_matrix(matrix, ["p", "q"], np.arange(3))
    assert table.to_numpy() is matrix
    assert table["q"].tolist() == [1.0, 3.0, 5.0]
    assert table.dtypes == [np.dtype("float64")] * 2


def test_like_gives_the_kind_of_table_it_is_given() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0]}, index=["x", "y"])
    columns = Columns({"a": np.array([1.0, 2.0])}, np.array(["x", "y"]))
    matrix = np.ones((2, 1))
    assert isinstance(like(frame, matrix, ["m"]), pd.DataFrame)
    assert like(frame, matrix, ["m"]).index.tolist() == ["x", "y"]
    assert isinstance(like(columns, matrix, ["m"]), Columns)
    assert isinstance(like_columns(columns, {"m": matrix[:, 0]}), Columns)
    assert like_columns(frame, {"m": matrix[:, 0]}).index.tolist() == ["x", "y"]
    assert floats(pd.Series([1, None], dtype="Int64")).tolist()[0] == 1.0
    assert np.isnan(floats(pd.Series([1, None], dtype="Int64"))[1])

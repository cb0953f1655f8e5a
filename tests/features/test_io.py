"""Atomic table writing."""

from __future__ import annotations

import pandas as pd
import pytest

from valuecube.features.io import table_format, write_table

FRAME = pd.DataFrame({"customer_id": ["a", "b"], "cv_score": [1.5, 8.25]})


def test_table_format() -> None:
    assert table_format("x.parquet") == "parquet" and table_format("x.PQ") == "parquet"
    assert table_format("x.csv") == "csv"
    with pytest.raises(ValueError, match="unknown output format"):
        table_format("x.xlsx")


@pytest.mark.parametrize("name", ["out.csv", "sub/dir/out.parquet"])
def test_round_trip(tmp_path, name) -> None:
    path = write_table(FRAME, tmp_path / name)
    back = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    pd.testing.assert_frame_equal(back, FRAME)
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_failed_write_leaves_nothing(tmp_path) -> None:
    import pyarrow as pa

    bad = pd.DataFrame({"x": [object()]})  # parquet cannot store an arbitrary object
    with pytest.raises((pa.ArrowException, TypeError, ValueError)):
        write_table(bad, tmp_path / "out.parquet")
    assert list(tmp_path.iterdir()) == []


def test_write_failing_midway_leaves_no_partial_file(tmp_path, monkeypatch) -> None:
    def half_then_fail(self, handle, *args, **kwargs):
        handle.write(b"PAR1 half a file")  # some bytes reach the temporary file first
        raise RuntimeError("killed mid-write")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", half_then_fail)
    with pytest.raises(RuntimeError, match="mid-write"):
        write_table(FRAME, tmp_path / "out.parquet")
    assert list(tmp_path.iterdir()) == []  # neither the destination nor a .partial leftover


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch) -> None:
    path = write_table(FRAME, tmp_path / "out.csv")
    before = path.read_text()

    def boom(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", boom)
    with pytest.raises(OSError, match="disk full"):
        write_table(FRAME.head(1), path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    assert not any(".partial" in p.name for p in tmp_path.iterdir())

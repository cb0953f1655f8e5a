"""Atomic table writing."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from valuecube.features.io import (
    AtomicWriter,
    OutputPathError,
    check_output_paths,
    table_format,
    write_table,
)

FRAME = pd.DataFrame({"customer_id": ["a", "b"], "cv_score": [1.5, 8.25]})


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder no file can be created in: a read-only tmpfs as root, mode 0555 otherwise."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


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


# ------------------------------------------------------------ output paths


def _spellings(tmp_path: Path, target: Path) -> list[Path]:
    """The same file named four ways: dotted, via '..', a symlink and a hard link."""
    (tmp_path / "sub").mkdir(exist_ok=True)
    link, hard = tmp_path / "link.csv", tmp_path / "hard.csv"
    link.symlink_to(target)
    os.link(target, hard)
    return [tmp_path / "." / target.name, tmp_path / "sub" / ".." / target.name, link, hard]


def test_an_output_that_is_the_input_is_refused_however_spelled(tmp_path: Path) -> None:
    source = tmp_path / "s.csv"
    source.write_text("customerid\nA\n")
    for spelling in _spellings(tmp_path, source):
        for option in ("--output", "--rejects"):
            with pytest.raises(OutputPathError, match=f"{option} .* is the input file"):
                check_output_paths(source, {option: spelling})
    assert source.read_text() == "customerid\nA\n"


def test_equal_output_and_rejects_are_refused(tmp_path: Path) -> None:
    with pytest.raises(OutputPathError, match="--output and --rejects are the same file"):
        check_output_paths(
            tmp_path / "in.csv",
            {"--output": tmp_path / "b.csv", "--rejects": tmp_path / "x" / ".." / "b.csv"},
        )
    assert list(tmp_path.iterdir()) == []  # not even the folder x


def test_an_existing_folder_is_refused_unless_outputs_are_folders(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(OutputPathError, match="is an existing folder"):
        check_output_paths(None, {"--output": tmp_path / "out"})
    check_output_paths(None, {"--output": tmp_path / "out"}, folders=("--output",))
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and not any((tmp_path / "out").iterdir())


def test_distinct_writable_paths_pass_and_leave_nothing(tmp_path: Path) -> None:
    check_output_paths(
        tmp_path / "in.csv", {"--output": tmp_path / "o" / "a.csv", "--rejects": None}
    )
    assert list(tmp_path.iterdir()) == []  # the check creates no folder and leaves no probe file
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputPathError, match="is a file, not a folder"):
        check_output_paths(None, {"--output": tmp_path / "file" / "a.csv"})


def test_a_read_only_folder_is_refused_before_any_work(read_only_dir: Path) -> None:
    with pytest.raises(OutputPathError, match="cannot write in"):
        check_output_paths(None, {"--output": read_only_dir / "a.csv"})
    with pytest.raises(OutputPathError, match="cannot write"):
        write_table(FRAME, read_only_dir / "a.csv")
    assert list(read_only_dir.iterdir()) == []


# ------------------------------------------------------------ file modes


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_new_files_take_the_umask_mode(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        path = write_table(FRAME, tmp_path / "out.csv")
        with AtomicWriter(tmp_path / "stream.parquet") as writer:
            writer.write(FRAME)
            writer.commit()
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "stream.parquet").stat().st_mode) == 0o666 & ~umask


def test_a_replaced_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    path.write_text("old\n")
    path.chmod(0o640)
    write_table(FRAME, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert pd.read_csv(path).equals(FRAME)

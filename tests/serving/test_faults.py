"""Bad output paths and faults of `score` and `segment`: refused or survived, nothing lost.

Each case ends in one ``error:`` line (no traceback), the input untouched,
and nothing at the destination: no output, no rejects, no ``.partial``.
The disk-full and read-only cases use a real tmpfs when the machine allows
mounting (root), else a folder of mode 0555 / a simulated ENOSPC.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from valuecube.cli import app
from valuecube.features.duplicates import SeenIds

from .helpers import ROOT, TELCO_CSV, telco_rows

runner = CliRunner()
TELCO_CONFIG = ROOT / "configs" / "telco.yaml"


def _can_mount() -> bool:
    return os.geteuid() == 0 and sys.platform.startswith("linux")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path | None]:
    """A 256 kB tmpfs (None where mounting is not allowed: the test simulates ENOSPC)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if not _can_mount():
        yield None
        return
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A folder no file can be created in: a read-only tmpfs as root, mode 0555 otherwise."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if not _can_mount():
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def small_input(tmp_path: Path) -> Path:
    path = tmp_path / "s.csv"
    telco_rows(50, seed=31).to_csv(path, index=False)
    return path


def _one_error(result) -> str:
    """The run failed with exit 1 and one ``error:`` message, no traceback."""
    text = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert text.startswith("error:") and text.count("error:") == 1, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return text


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _score(uri: str, *args: str | Path) -> list[str]:
    return ["score", "-m", uri, *map(str, args)]


def _segment(*args: str | Path) -> list[str]:
    return ["segment", "-c", str(TELCO_CONFIG), *map(str, args)]


@pytest.mark.parametrize("command", ["score", "segment"])
@pytest.mark.parametrize("how", ["output", "output via ..", "rejects", "rejects via symlink"])
def test_the_input_is_never_overwritten(
    telco_uri: str, small_input: Path, tmp_path: Path, command: str, how: str
) -> None:
    before = small_input.read_bytes()
    (tmp_path / "sub").mkdir()
    (tmp_path / "alias.csv").symlink_to(small_input)
    spelled = {
        "output": small_input,
        "output via ..": tmp_path / "sub" / ".." / "s.csv",
        "rejects": small_input,
        "rejects via symlink": tmp_path / "alias.csv",
    }[how]
    paths = (
        ["-i", small_input, "-o", spelled]
        if how.startswith("output")
        else ["-i", small_input, "-o", tmp_path / "out.csv", "--rejects", spelled]
    )
    args = _score(telco_uri, *paths) if command == "score" else _segment(*paths)
    text = _one_error(runner.invoke(app, args))
    assert "is the input file" in text
    assert small_input.read_bytes() == before
    assert _files(tmp_path) == ["alias.csv", "s.csv", "sub"]


@pytest.mark.parametrize("command", ["score", "segment"])
def test_equal_output_and_rejects_are_refused(
    telco_uri: str, small_input: Path, tmp_path: Path, command: str
) -> None:
    paths = ["-i", small_input, "-o", tmp_path / "b.csv", "--rejects", tmp_path / "b.csv"]
    args = _score(telco_uri, *paths) if command == "score" else _segment(*paths)
    assert "are the same file" in _one_error(runner.invoke(app, args))
    assert _files(tmp_path) == ["s.csv"]


@pytest.mark.parametrize("command", ["score", "segment"])
def test_an_existing_folder_as_output(
    telco_uri: str, small_input: Path, tmp_path: Path, command: str
) -> None:
    (tmp_path / "out.csv").mkdir()
    paths = ["-i", small_input, "-o", tmp_path / "out.csv", "--rejects", tmp_path / "r.csv"]
    args = _score(telco_uri, *paths) if command == "score" else _segment(*paths)
    assert "is an existing folder" in _one_error(runner.invoke(app, args))
    assert _files(tmp_path) == ["out.csv", "s.csv"] and not any((tmp_path / "out.csv").iterdir())


@pytest.mark.parametrize("command", ["score", "segment"])
@pytest.mark.parametrize("which", ["output", "rejects"])
def test_a_read_only_folder(
    telco_uri: str, small_input: Path, tmp_path: Path, read_only: Path, command: str, which: str
) -> None:
    out = read_only / "o.csv" if which == "output" else tmp_path / "o.csv"
    rej = read_only / "r.csv" if which == "rejects" else tmp_path / "r.csv"
    paths = ["-i", small_input, "-o", out, "--rejects", rej]
    args = _score(telco_uri, *paths) if command == "score" else _segment(*paths)
    assert "cannot write in" in _one_error(runner.invoke(app, args))
    assert _files(tmp_path) == ["ro", "s.csv"] and _files(read_only) == []


def test_a_full_disk_is_one_error_and_leaves_nothing(
    telco_uri: str, tmp_path: Path, small_disk: Path | None, monkeypatch
) -> None:
    source = tmp_path / "in.csv"
    telco_rows(20_000, seed=32).to_csv(source, index=False)  # ~3 MB of scores as CSV
    folder = small_disk if small_disk is not None else tmp_path / "disk"
    if small_disk is None:  # no tmpfs here: the third chunk's write fails as a full disk would
        from valuecube.features.io import AtomicWriter

        write, calls = AtomicWriter.write, []

        def full(self, frame):
            calls.append(1)
            if len(calls) > 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            write(self, frame)

        monkeypatch.setattr(AtomicWriter, "write", full)
    args = _score(telco_uri, "-i", source, "-o", folder / "scores.csv", "--chunk-rows", "2000")
    text = _one_error(runner.invoke(app, args))
    assert "no space left" in text and "nothing was written" in text
    assert _files(folder) == []  # neither the scores nor a .partial


def test_sigterm_mid_run_leaves_nothing_and_a_rerun_completes(
    telco_uri: str, tmp_path: Path
) -> None:
    source = tmp_path / "big.parquet"
    telco_rows(40_000, seed=33).to_parquet(source, index=False)
    out = tmp_path / "out" / "scores.parquet"
    cmd = [sys.executable, "-m", "valuecube", *_score(telco_uri, "-i", source, "-o", out)]
    cmd += ["--chunk-rows", "1000"]
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    lines = []
    try:
        for line in proc.stderr:  # plain progress lines (stderr is not a terminal)
            lines.append(line)
            if line.startswith("chunk 2:"):
                break
        os.kill(proc.pid, signal.SIGTERM)
        lines += proc.stderr.readlines()
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, "".join(lines)
    text = " ".join("".join(lines).split())
    assert "error: stopped by SIGTERM" in text and "Traceback" not in text
    assert _files(out.parent) == []  # no output and no .partial: the job unwound
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    scores = pd.read_parquet(out)
    assert len(scores) == 40_000 and scores["customer_id"].is_unique


def test_duplicate_detection_memory_follows_the_ids_total_length() -> None:
    """20,000 ids, one of them 10,000 characters: memory near their total length, not 200 MB."""
    ids = [f"C{i:07d}" for i in range(20_000)]
    ids[7] = "L" * 10_000
    ids[9_000] = ids[7]  # the long id twice, and a short one twice
    ids[15_000] = ids[3]
    array = pa.array(ids)
    total = sum(len(i) for i in ids)
    tracemalloc.start()
    seen = SeenIds()
    first = np.concatenate(
        [
            seen.check(array.slice(start, 5_000), np.arange(start, start + 5_000) + 2)
            for start in range(0, 20_000, 5_000)
        ]
    )
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert np.flatnonzero(first).tolist() == [9_000, 15_000]
    assert first[9_000] == 9 and first[15_000] == 5  # the lines of the first copies
    assert seen.nbytes <= total + 8 * 20_000
    assert peak < 20 * 2**20, peak  # padding every id to the longest would take > 200 MB


def test_the_checks_let_a_normal_segment_run_through(tmp_path: Path) -> None:
    """Segment on the real data still writes its two files and leaves the input as it was."""
    source = tmp_path / "telco.csv"
    source.write_bytes(TELCO_CSV.read_bytes())
    out, rej = tmp_path / "seg.parquet", tmp_path / "rej.csv"
    result = runner.invoke(app, _segment("-i", source, "-o", out, "--rejects", rej))
    assert result.exit_code == 0, result.output
    assert _files(tmp_path) == ["rej.csv", "seg.parquet", "telco.csv"]
    assert source.read_bytes() == TELCO_CSV.read_bytes()


@pytest.mark.parametrize("store", ["empty folder", "file:///nonexistent"])
def test_serve_on_a_store_that_is_not_there(tmp_path: Path, store: str) -> None:
    """`serve` stops with one error line naming the store, and creates nothing."""
    (tmp_path / "empty").mkdir()
    uri = str(tmp_path / "empty") if store == "empty folder" else store
    done = subprocess.run(
        [sys.executable, "-m", "valuecube", "serve", "-m", "models:/valuecube-telco@champion"],
        cwd=tmp_path,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri, "COLUMNS": "400"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    text = " ".join(done.stderr.split())
    assert done.returncode == 1 and text.startswith("error: no MLflow store at"), done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert _files(tmp_path) == ["empty"] and _files(tmp_path / "empty") == []
    assert not Path("/nonexistent").exists()

"""The valuecube command line: segment."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import CDNOW_CONFIG, CDNOW_TXT, ROOT, TELCO_CONFIG, TELCO_CSV
from conftest import SEGMENT_COLUMNS as COLUMNS
from typer.testing import CliRunner

from valuecube.cli import app

runner = CliRunner()


def _bad_telco(tmp_path: Path) -> Path:
    lines = TELCO_CSV.read_text().splitlines()[:101]
    header = lines[0].split(",")
    cells = lines[8].split(",")  # file line 9
    cells[header.index("totalcharges")] = "lots"
    lines[8] = ",".join(cells)
    cells = lines[40].split(",")  # file line 41
    cells[header.index("gender")] = "Other"
    lines[40] = ",".join(cells)
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_help_lists_segment() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "segment" in result.output
    sub = runner.invoke(app, ["segment", "--help"])
    assert sub.exit_code == 0 and "--rejects" in sub.output


@pytest.mark.parametrize(
    "config, data, suffix, n",
    [(TELCO_CONFIG, TELCO_CSV, ".parquet", 3930), (CDNOW_CONFIG, CDNOW_TXT, ".csv", 18856)],
)
def test_segment_command(tmp_path, config, data, suffix, n) -> None:
    out = tmp_path / f"out{suffix}"
    result = runner.invoke(app, ["segment", "-c", str(config), "-i", str(data), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"customers scored {n:,}" in result.output and "rows rejected 0" in result.output
    # a log prints its fitted BTYD parameters in one line (configs/cdnow.yaml: MBG/NBD, MAP)
    btyd = re.search(
        r"MBG/NBD r=\d+\.\d{3} alpha=\d+\.\d{3} a=\d+\.\d{3} b=\d+\.\d{3}; "
        r"Gamma-Gamma p=\d+\.\d{3} q=\d+\.\d{3} v=\d+\.\d{3} \(MAP\)",
        result.output,
    )
    assert (btyd is not None) == (config == CDNOW_CONFIG), result.output
    # the per-segment summary lists the segment codes that occur
    back_codes = set(
        (pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out))["segment"]
    )
    assert back_codes and all(code in result.output for code in back_codes)
    back = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
    assert list(back.columns[: len(COLUMNS)]) == COLUMNS and len(back) == n


def test_rejects_option(tmp_path) -> None:
    out, rej = tmp_path / "out.csv", tmp_path / "rej.parquet"
    result = runner.invoke(
        app,
        [
            "segment",
            "-c",
            str(TELCO_CONFIG),
            "-i",
            str(_bad_telco(tmp_path)),
            "-o",
            str(out),
            "--rejects",
            str(rej),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "rows read 100" in result.output and "rows rejected 2" in result.output
    scored, rejects = pd.read_csv(out), pd.read_parquet(rej)
    assert len(scored) + len(rejects) == 100
    assert sorted(rejects["line"]) == [9, 41] and rejects["reason"].str.len().gt(0).all()
    assert "totalcharges" in rejects.set_index("line").loc[9, "reason"]


def test_bad_row_without_rejects_fails(tmp_path) -> None:
    out = tmp_path / "out.csv"
    result = runner.invoke(
        app, ["segment", "-c", str(TELCO_CONFIG), "-i", str(_bad_telco(tmp_path)), "-o", str(out)]
    )
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "line 9" in text and "totalcharges" in text and "--rejects" in text
    assert not out.exists()
    assert not any(".partial" in p.name for p in tmp_path.iterdir())


def test_bad_output_format_and_missing_input(tmp_path) -> None:
    result = runner.invoke(
        app,
        ["segment", "-c", str(TELCO_CONFIG), "-i", str(TELCO_CSV), "-o", str(tmp_path / "o.xlsx")],
    )
    assert result.exit_code == 1 and "unknown output format" in result.output
    result = runner.invoke(
        app,
        [
            "segment",
            "-c",
            str(TELCO_CONFIG),
            "-i",
            str(tmp_path / "nope.csv"),
            "-o",
            str(tmp_path / "o.csv"),
        ],
    )
    assert result.exit_code == 1 and "not found" in result.output
    assert not (tmp_path / "o.csv").exists()


def test_subprocess_entry_point(tmp_path) -> None:
    exe = Path(sys.executable).parent / "valuecube"
    out = tmp_path / "seg.csv"
    proc = subprocess.run(
        [str(exe), "segment", "-c", str(TELCO_CONFIG), "-i", str(TELCO_CSV), "-o", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "customers scored 3,930" in proc.stdout
    assert "key_attack_defend" in proc.stdout and "release" in proc.stdout
    assert len(pd.read_csv(out)) == 3930


def test_error_shows_file_values_verbatim(tmp_path) -> None:
    lines = TELCO_CSV.read_text().splitlines()[:11]
    header = lines[0].split(",")
    cells = lines[4].split(",")  # file line 5
    cells[header.index("gender")] = "[bold]Fem"  # must not be eaten as rich markup
    lines[4] = ",".join(cells)
    path = tmp_path / "markup.csv"
    path.write_text("\n".join(lines) + "\n")
    result = runner.invoke(
        app, ["segment", "-c", str(TELCO_CONFIG), "-i", str(path), "-o", str(tmp_path / "o.csv")]
    )
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "'[bold]Fem'" in text and "line 5" in text and "gender" in text

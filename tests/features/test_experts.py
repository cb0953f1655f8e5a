"""Expert panels: the shipped example's numbers, mixing with data factors, bad ratings."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT
from typer.testing import CliRunner

from valuecube.cli import app
from valuecube.features.config import ConfigError, load_config
from valuecube.features.experts import ExpertRatingsError
from valuecube.training.segment import run_segment

EXAMPLE = ROOT / "examples" / "expert_panel"
runner = CliRunner()
B_WORKED = [0.2140, 0.3512, 0.3605, 0.0744, 0.0]


@pytest.fixture
def example(tmp_path) -> Path:
    """A copy of the example folder, to edit."""
    return Path(shutil.copytree(EXAMPLE, tmp_path / "ex"))


def _edit_config(folder: Path, change) -> Path:
    raw = yaml.safe_load((folder / "config.yaml").read_text())
    change(raw)
    (folder / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return folder / "config.yaml"


def test_example_command_gives_the_worked_example(tmp_path) -> None:
    out = tmp_path / "out.parquet"
    result = runner.invoke(
        app,
        [
            "segment",
            "-c",
            str(EXAMPLE / "config.yaml"),
            "-i",
            str(EXAMPLE / "customers.csv"),
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    scored = pd.read_parquet(out).set_index("customer_id")
    assert round(float(scored.loc["C-0001", "cv_score"]), 4) == 6.4093
    assert len(scored) == 120


def test_example_memberships_b_vector() -> None:
    result = run_segment(EXAMPLE / "config.yaml", EXAMPLE / "customers.csv")
    cube = result.cube
    factors = cube.factors(result.customers.table.loc[["C-0001", "C-0002", "C-0050"]])
    evaluation = cube.fuzzy_.evaluate(factors)
    b_cv = evaluation.dimensions[0, 0]
    np.testing.assert_allclose(np.round(b_cv, 4), B_WORKED)
    np.testing.assert_allclose(evaluation.scores[:, 0], cube.fuzzy_.transform(factors)[:, 0])
    # C-0002: gross profit rated by chen (1.2, low) and wang (1.0, fairly low) only
    gp = factors.loc["C-0002", [f"gross_profit@{g}" for g in ("fairly_low", "low")]]
    np.testing.assert_allclose(gp, [1.0 / 2.2, 1.2 / 2.2])
    # C-0050 nobody rated: its data memberships (gross profit from the column)
    assert np.isnan(factors.loc["C-0050", "gross_profit@high"])


def test_zadeh_uses_the_experts_memberships(example) -> None:
    config = _edit_config(
        example, lambda c: c.setdefault("segmentation", {}).update(operator="zadeh")
    )
    result = run_segment(config, example / "customers.csv")
    b = np.array([0.4, 0.3, 0.2, 0.1])
    votes = (
        np.array(  # R of the worked example (W = 1.2, 1.1, 1.0, 1.0 of 4.3)
            [[2.3, 1.0, 1.0, 0, 0], [0, 3.3, 1.0, 0, 0], [0, 0, 3.2, 1.1, 0], [0, 1.2, 2.1, 1.0, 0]]
        )
        / 4.3
    )
    raw = np.max(np.minimum(b[:, None], votes), axis=0)
    expected = (raw / raw.sum()) @ np.array([9, 7, 5, 3, 1.0])
    got = result.scored.set_index("customer_id").loc["C-0001", "cv_score"]
    assert got == pytest.approx(expected, abs=1e-12)


def test_missing_rating_is_rejected_without_fallback(example, tmp_path) -> None:
    def no_fallback(raw):
        raw["factors"]["gross_profit"] = {"source": "experts"}

    config = _edit_config(example, no_fallback)
    rejects = tmp_path / "rej.csv"
    result = run_segment(config, example / "customers.csv", rejects_path=rejects)
    rated = {"C-0001", "C-0002", "C-0003"}
    assert set(result.scored["customer_id"]) == rated
    table = pd.read_csv(rejects)
    assert len(table) == 117
    assert (table["reason"] == "no expert rating for factor 'gross_profit'").all()
    with pytest.raises(ValueError, match="no expert rating for factor 'gross_profit'"):
        run_segment(config, example / "customers.csv")
    one = run_segment(config, example / "customers.csv", rejects_path=tmp_path / "r2.csv")
    assert round(float(one.scored.iloc[0]["cv_score"]), 4) == 6.4093


@pytest.mark.parametrize(
    "line, message",
    [
        ("C-9999,gross_profit,chen,high", "line 28: no such customer in the input"),
        ("C-0004,gross_profitt,chen,high", "line 28: unknown factor"),
        ("C-0004,gross_profit,smith,high", "line 28: expert not on the panel"),
        ("C-0004,gross_profit,chen,excellent", "line 28: unknown grade"),
        ("C-0001,gross_profit,chen,low", "line 28: this expert already rated"),
        ("C-0004,credit_limit,chen,high", "line 28: unknown factor"),
    ],
)
def test_bad_rating_names_the_line(example, line, message, tmp_path) -> None:
    ratings = example / "ratings.csv"
    ratings.write_text(ratings.read_text() + line + "\n")
    with pytest.raises(ExpertRatingsError, match=message) as info:
        run_segment(example / "config.yaml", example / "customers.csv")
    assert str(ratings) in str(info.value)
    out = tmp_path / "o.csv"
    cli = runner.invoke(
        app,
        [
            "segment",
            "-c",
            str(example / "config.yaml"),
            "-i",
            str(example / "customers.csv"),
            "-o",
            str(out),
        ],
    )
    assert cli.exit_code == 1 and "line 28" in cli.output and "Traceback" not in cli.output
    assert not out.exists()


@pytest.mark.parametrize(
    "panel, message",
    [
        ("expert,standing\nchen,high\nchen,ordinary\n", "line 3: expert listed twice"),
        ("expert,standing\nchen,guru\n", "line 2: unknown standing"),
        ("name,standing\nchen,high\n", "missing column"),
    ],
)
def test_bad_panel(example, panel, message) -> None:
    (example / "panel.csv").write_text(panel)
    with pytest.raises(ExpertRatingsError, match=message):
        run_segment(example / "config.yaml", example / "customers.csv")


def test_authority_override(example) -> None:
    config = _edit_config(
        example, lambda c: c["experts"].update(authority={"high": 2.0, "fairly_high": 1.0})
    )
    result = run_segment(config, example / "customers.csv")
    memberships = result.cube.factors(result.customers.table.loc[["C-0001"]])
    # gross profit: high from chen (2.0) and li (1.0) of 2 + 1 + 1 + 1
    assert memberships.loc["C-0001", "gross_profit@high"] == pytest.approx(3.0 / 5.0)


def test_config_errors(example) -> None:
    def no_panel(raw):
        del raw["experts"]

    with pytest.raises(ConfigError, match="no 'experts'"):
        load_config(_edit_config(example, no_panel))

    def column_without_fallback(raw):
        raw["factors"]["gross_profit"] = {"source": "experts", "column": "gross_profit"}

    with pytest.raises(ConfigError, match="fallback: data"):
        load_config(_edit_config(example, column_without_fallback))


def test_ratings_for_new_customers_under_a_saved_cube(example, tmp_path) -> None:
    folder = tmp_path / "cube"
    reference = run_segment(example / "config.yaml", example / "customers.csv", save_cube_to=folder)
    lines = (example / "customers.csv").read_text().splitlines()
    (tmp_path / "new.csv").write_text("\n".join([lines[0], lines[1]]) + "\n")
    ratings = (example / "ratings.csv").read_text().splitlines()
    (tmp_path / "new_ratings.csv").write_text("\n".join(ratings[:17]) + "\n")  # C-0001's only
    alone = run_segment(
        None, tmp_path / "new.csv", cube=folder, ratings=tmp_path / "new_ratings.csv"
    )
    expected = reference.scored.iloc[[0]].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone.scored, expected, check_exact=True)

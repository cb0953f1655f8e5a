"""A value cube fitted once, saved as an MLflow pyfunc folder and applied to new customers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import CDNOW_CONFIG, CDNOW_TXT, TELCO_CONFIG, TELCO_CSV
from typer.testing import CliRunner

import mlflow
from mlflow import MlflowClient
from valuecube.cli import app
from valuecube.features.inputs import InputError
from valuecube.models.saved_cube import CUBE_PREDICTION_COLUMNS, ValueCubeModel
from valuecube.training.cube_store import CubeLoadError, load_cube
from valuecube.training.promotion_job import run_promotion
from valuecube.training.registry import CHALLENGER, CHAMPION
from valuecube.training.segment import MIN_FIT_CUSTOMERS, run_segment

runner = CliRunner()


@pytest.fixture(scope="module")
def telco_cube(tmp_path_factory):
    """The cube fitted on the whole Telco file, saved; and the reference scores."""
    tmp = tmp_path_factory.mktemp("telco-cube")
    result = run_segment(TELCO_CONFIG, TELCO_CSV, output=tmp / "ref.csv", save_cube_to=tmp / "c")
    return tmp / "c", result


@pytest.fixture(scope="module")
def cdnow_cube(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cdnow-cube")
    result = run_segment(CDNOW_CONFIG, CDNOW_TXT, output=tmp / "ref.csv", save_cube_to=tmp / "c")
    return tmp / "c", result


def _rows(path, lines: list[int], dest):
    """A file with the header and the given 0-based data lines of ``path``."""
    text = path.read_text().splitlines()
    dest.write_text("\n".join([text[0], *(text[i + 1] for i in lines)]) + "\n")
    return dest


def test_save_load_score_equals_in_memory(telco_cube, tmp_path) -> None:
    folder, reference = telco_cube
    assert (folder / "MLmodel").is_file()
    loaded = mlflow.pyfunc.load_model(str(folder))
    assert isinstance(loaded.unwrap_python_model(), ValueCubeModel)
    got = loaded.predict(pd.read_csv(TELCO_CSV))
    assert list(got.columns) == list(CUBE_PREDICTION_COLUMNS)
    expected = reference.scored[list(CUBE_PREDICTION_COLUMNS)]
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected, check_exact=True)
    again = run_segment(None, TELCO_CSV, cube=folder, output=tmp_path / "again.csv")
    assert not again.fitted
    pd.testing.assert_frame_equal(again.scored, reference.scored, check_exact=True)


@pytest.mark.parametrize("lines", [[0], [17], [3929], [5, 900, 17]])
def test_telco_alone_equals_in_batch_under_saved_cube(telco_cube, tmp_path, lines) -> None:
    folder, reference = telco_cube
    small = _rows(TELCO_CSV, lines, tmp_path / "few.csv")
    result = run_segment(None, small, cube=folder)
    expected = reference.scored.iloc[lines].reset_index(drop=True)
    pd.testing.assert_frame_equal(result.scored, expected, check_exact=True)


def test_cdnow_alone_equals_in_batch_under_saved_cube(cdnow_cube, tmp_path) -> None:
    folder, reference = cdnow_cube
    log = CDNOW_TXT.read_text().splitlines()
    ids = ["00004", "00019", "23570"]
    for cid in ids:
        lines = [i for i, line in enumerate(log[1:]) if line.split()[0] == cid]
        result = run_segment(None, _rows(CDNOW_TXT, lines, tmp_path / f"{cid}.txt"), cube=folder)
        expected = reference.scored.set_index("customer_id").loc[[cid]].reset_index()
        pd.testing.assert_frame_equal(result.scored, expected, check_exact=True)


def test_cdnow_saved_cube_pyfunc_takes_a_parquet_log(cdnow_cube, tmp_path) -> None:
    folder, reference = cdnow_cube
    log = pd.read_csv(CDNOW_TXT, sep=r"\s+", dtype={"customer_id": str})
    log.head(3000).to_parquet(tmp_path / "log.parquet")
    got = mlflow.pyfunc.load_model(str(folder)).predict(pd.read_parquet(tmp_path / "log.parquet"))
    expected = reference.scored.set_index("customer_id").loc[got["customer_id"]]
    np.testing.assert_array_equal(got["cv_score"].to_numpy(), expected["cv_score"].to_numpy())
    assert got["customer_id"].is_unique and len(got) == log.head(3000)["customer_id"].nunique()


def test_pyfunc_default_dtypes_and_bad_values(telco_cube, tmp_path) -> None:
    folder, reference = telco_cube
    model = mlflow.pyfunc.load_model(str(folder))
    frame = pd.read_csv(TELCO_CSV)
    assert frame["tenure"].dtype == "int64" and frame["totalcharges"].dtype != "float64"
    frame.head(50).to_parquet(tmp_path / "t.parquet")
    got = model.predict(pd.read_parquet(tmp_path / "t.parquet"))
    np.testing.assert_array_equal(got["pv_score"], reference.scored["pv_score"].head(50))
    bad = frame.head(20).copy()
    bad["monthlycharges"] = bad["monthlycharges"].astype(object)
    bad.loc[7, "monthlycharges"] = "lots"
    with pytest.raises(InputError) as info:
        model.predict(bad)
    message = str(info.value)
    assert "row 7" in message and "monthlycharges" in message and "'lots'" in message
    assert "schema" not in message.lower()


def test_network_model_and_saved_cube_agree(telco_model, tmp_path) -> None:
    network_uri = "models:/test-telco@challenger"
    folder = tmp_path / "from-net"
    net_cube = load_cube(network_uri)
    assert net_cube.cube is not None
    from valuecube.training.cube_store import save_cube

    probe = run_segment(None, TELCO_CSV, cube=network_uri)
    save_cube(net_cube, folder, probe.scored[list(CUBE_PREDICTION_COLUMNS)].head(5))
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    for cube, out in ((network_uri, a), (str(folder), b)):
        result = runner.invoke(
            app, ["segment", "--cube", cube, "-i", str(TELCO_CSV), "-o", str(out)]
        )
        assert result.exit_code == 0, result.output
        assert "not refitted" in result.output
    assert a.read_bytes() == b.read_bytes()
    # the network's cube was fitted on its training split, not on this file
    fitted_here = run_segment(TELCO_CONFIG, TELCO_CSV)
    assert not np.array_equal(fitted_here.scored["cv_score"], probe.scored["cv_score"])


def test_register_cube_champion_then_challenger(mlflow_store, tmp_path) -> None:
    name = "cube-telco"
    first = run_segment(TELCO_CONFIG, TELCO_CSV, register_as=name)
    assert first.registered == (name, "1", CHAMPION)
    second = run_segment(TELCO_CONFIG, TELCO_CSV, register_as=name)
    assert second.registered == (name, "2", CHALLENGER)
    client = MlflowClient()
    assert client.get_model_version(name, "2").tags["valuecube_kind"] == "cube"
    loaded = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}")
    got = loaded.predict(pd.read_csv(TELCO_CSV).head(10))
    np.testing.assert_array_equal(got["cv_score"], first.scored["cv_score"].head(10))
    dry = runner.invoke(app, ["promote", "--model", name, "--dry-run"])
    assert dry.exit_code == 0 and "would become champion" in dry.output, dry.output
    assert str(client.get_model_version_by_alias(name, CHAMPION).version) == "1"
    outcome = run_promotion(name)
    assert outcome.promoted and "no quality gate" in outcome.reason
    assert str(client.get_model_version_by_alias(name, CHAMPION).version) == "2"
    out = tmp_path / "o.csv"
    cli = runner.invoke(
        app, ["segment", "--cube", f"models:/{name}@champion", "-i", str(TELCO_CSV), "-o", str(out)]
    )
    assert cli.exit_code == 0, cli.output
    assert pd.read_csv(out)["cv_score"].tolist() == second.scored["cv_score"].tolist()


def test_cli_fit_save_apply(tmp_path) -> None:
    folder = tmp_path / "cube"
    out = tmp_path / "ref.parquet"
    result = runner.invoke(
        app,
        [
            "segment",
            "-c",
            str(TELCO_CONFIG),
            "-i",
            str(TELCO_CSV),
            "-o",
            str(out),
            "--save-cube",
            str(folder),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "cube fitted on this input (3,930 customers)" in result.output
    assert f"saved the cube to {folder}" in result.output
    again = runner.invoke(
        app,
        [
            "segment",
            "-c",
            str(TELCO_CONFIG),
            "-i",
            str(TELCO_CSV),
            "-o",
            str(out),
            "--save-cube",
            str(folder),
        ],
    )
    assert again.exit_code == 1 and "already exists" in " ".join(again.output.split())
    one = _rows(TELCO_CSV, [0], tmp_path / "one.csv")
    applied = runner.invoke(
        app, ["segment", "--cube", str(folder), "-i", str(one), "-o", str(tmp_path / "o.csv")]
    )
    assert applied.exit_code == 0, applied.output
    ref = pd.read_parquet(out).head(1)
    got = pd.read_csv(tmp_path / "o.csv")
    assert got["cv_score"].iloc[0] == ref["cv_score"].iloc[0]


def test_bad_cube_arguments(tmp_path) -> None:
    with pytest.raises(CubeLoadError, match="no saved cube"):
        run_segment(None, TELCO_CSV, cube=tmp_path)
    with pytest.raises(ValueError, match="--config"):
        run_segment(None, TELCO_CSV)
    result = runner.invoke(
        app,
        [
            "segment",
            "--cube",
            str(tmp_path / "nope"),
            "-i",
            str(TELCO_CSV),
            "-o",
            str(tmp_path / "o.csv"),
        ],
    )
    assert result.exit_code == 1 and "no saved cube" in " ".join(result.output.split())


def test_too_few_customers_to_fit(tmp_path) -> None:
    few = _rows(TELCO_CSV, list(range(MIN_FIT_CUSTOMERS - 1)), tmp_path / "few.csv")
    with pytest.raises(ValueError, match=f"at least {MIN_FIT_CUSTOMERS}"):
        run_segment(TELCO_CONFIG, few, output=tmp_path / "o.csv")
    assert not (tmp_path / "o.csv").exists()
    some = _rows(TELCO_CSV, list(range(60)), tmp_path / "some.csv")
    result = run_segment(TELCO_CONFIG, some)
    assert result.warnings and "only 60 customers" in result.warnings[0]


def test_duplicate_ids_keep_the_first_row(tmp_path) -> None:
    lines = TELCO_CSV.read_text().splitlines()
    dup = [*lines[:41], lines[3], lines[3].replace(",Female,", ",Male,"), lines[7]]
    path = tmp_path / "dup.csv"
    path.write_text("\n".join(dup) + "\n")
    rej = tmp_path / "rej.csv"
    result = run_segment(TELCO_CONFIG, path, rejects_path=rej)
    rejects = pd.read_csv(rej)
    assert sorted(rejects["line"]) == [42, 43, 44]
    assert rejects["reason"].str.contains("first on line").all()
    for line, reason in zip(rejects["line"], rejects["reason"], strict=True):
        assert f"first on line {line}" not in reason  # never its own duplicate
    assert "(first on line 4)" in rejects.loc[rejects["line"] == 42, "reason"].iloc[0]
    assert len(result.scored) == 40 and result.rows_read == 43
    assert len(result.scored) + len(rejects) == result.rows_read


def test_rejects_written_when_nothing_is_valid(tmp_path) -> None:
    lines = TELCO_CSV.read_text().splitlines()[:6]
    bad = [lines[0]] + [
        line.replace(",Female,", ",Robot,").replace(",Male,", ",Robot,") for line in lines[1:]
    ]
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(bad) + "\n")
    rej = tmp_path / "rej.csv"
    with pytest.raises(InputError, match="none of the 5 rows"):
        run_segment(TELCO_CONFIG, path, rejects_path=rej, output=tmp_path / "o.csv")
    assert len(pd.read_csv(rej)) == 5 and not (tmp_path / "o.csv").exists()


def test_output_that_is_the_input_is_refused(tmp_path) -> None:
    copy = tmp_path / "t.csv"
    copy.write_bytes(TELCO_CSV.read_bytes())
    with pytest.raises(ValueError, match="is the input"):
        run_segment(TELCO_CONFIG, copy, output=tmp_path / "." / "t.csv")
    with pytest.raises(ValueError, match="same file"):
        run_segment(TELCO_CONFIG, copy, output=tmp_path / "o.csv", rejects_path=tmp_path / "o.csv")
    assert copy.read_bytes() == TELCO_CSV.read_bytes()

"""Tracking: one store default, no store created by a lookup, an unreachable server named."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, TELCO_CONFIG
from typer.testing import CliRunner

import mlflow
from valuecube import store
from valuecube.cli import app
from valuecube.training.tracking import (
    TrackingError,
    check_server,
    configure_tracking,
    default_tracking_uri,
)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dead_uri() -> str:
    return f"http://127.0.0.1:{_closed_port()}"


@pytest.fixture
def restore_tracking_uri():
    before = mlflow.get_tracking_uri()
    yield
    mlflow.set_tracking_uri(before)


def test_check_server_names_the_uri(dead_uri) -> None:
    with pytest.raises(TrackingError, match=dead_uri.replace(".", r"\.")):
        check_server(dead_uri, timeout=2)


def test_run_train_fails_fast_on_unreachable_server(dead_uri, restore_tracking_uri) -> None:
    from valuecube.training.train import run_train

    start = time.monotonic()
    with pytest.raises(TrackingError) as info:
        run_train(TELCO_CONFIG, tracking_uri=dead_uri, trials=1, max_epochs=1, register_as="never")
    assert time.monotonic() - start < 10
    assert dead_uri in str(info.value)
    assert mlflow.get_tracking_uri() != dead_uri  # nothing was configured


def test_cli_train_unreachable_server_exits_1(dead_uri, monkeypatch, restore_tracking_uri) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", dead_uri)
    start = time.monotonic()
    result = CliRunner().invoke(
        app, ["train", "-c", str(TELCO_CONFIG), "--trials", "1", "--max-epochs", "1"]
    )
    assert time.monotonic() - start < 10
    assert result.exit_code == 1, result.output
    assert dead_uri in " ".join(result.output.split()).replace(
        " ", ""
    ) or dead_uri in result.output.replace("\n", "")


def test_cli_promote_unreachable_server_exits_1(
    dead_uri, monkeypatch, restore_tracking_uri
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", dead_uri)
    result = CliRunner().invoke(app, ["promote", "--model", "whatever"])
    assert result.exit_code == 1, result.output
    assert "cannot reach" in result.output


def test_configure_tracking_precedence(tmp_path, monkeypatch, restore_tracking_uri) -> None:
    explicit = f"sqlite:///{tmp_path / 'a.db'}"
    env = f"sqlite:///{tmp_path / 'b.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", env)
    uri = configure_tracking(explicit, create=True)
    assert uri == explicit and mlflow.get_tracking_uri() == explicit
    monkeypatch.setenv("MLFLOW_TRACKING_URI", env)  # mlflow.set_tracking_uri rewrites it
    assert configure_tracking(create=True) == env
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.chdir(tmp_path)
    assert store.tracking_uri() == f"sqlite:///{ROOT / 'mlflow' / 'mlflow.db'}"
    assert not (tmp_path / "mlflow").exists()  # nothing depends on the working directory


def test_default_tracking_uri(tmp_path) -> None:
    assert (
        default_tracking_uri(tmp_path)
        == f"sqlite:///{(tmp_path / 'mlflow' / 'mlflow.db').resolve()}"
    )
    assert default_tracking_uri() == f"sqlite:///{ROOT / 'mlflow' / 'mlflow.db'}"
    assert store.project_root() == ROOT


def test_a_lookup_never_creates_a_store(tmp_path, restore_tracking_uri) -> None:
    missing = tmp_path / "nowhere" / "mlflow.db"
    with pytest.raises(TrackingError, match=f"no MLflow store at {missing}"):
        configure_tracking(f"sqlite:///{missing}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrackingError, match="empty folder"):
        configure_tracking(str(tmp_path / "empty"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]
    assert not any((tmp_path / "empty").iterdir())


@pytest.mark.parametrize("where", ["default", "empty folder", "file:///nonexistent"])
def test_score_from_another_folder_names_the_store(tmp_path, where) -> None:
    """`valuecube score` run elsewhere looks in the checkout's store (or the one set), says so."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    default = ROOT / "mlflow" / "mlflow.db"
    existed = default.exists()
    if where == "empty folder":
        (tmp_path / "store").mkdir()
        env["MLFLOW_TRACKING_URI"] = str(tmp_path / "store")
    elif where != "default":
        env["MLFLOW_TRACKING_URI"] = where
    (tmp_path / "in.csv").write_text("customerid\nA\n")
    command = ["score", "-m", "models:/nope@champion", "-i", "in.csv", "-o", "out.csv"]
    done = subprocess.run(
        [sys.executable, "-m", "valuecube", *command],
        cwd=tmp_path,
        env={**env, "COLUMNS": "400"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    text = " ".join(done.stderr.split())
    assert text.startswith("error:") and "MLFLOW_TRACKING_URI" in text
    searched = {"default": str(default), "empty folder": str(tmp_path / "store")}
    assert searched.get(where, "/nonexistent") in text
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["in.csv"] + (["store"] if where == "empty folder" else [])
    )
    assert default.exists() == existed  # no empty store left behind
    assert not Path("/nonexistent").exists()

"""Tracking: URI resolution, and an unreachable server failing fast with the URI named (API and CLI)."""

from __future__ import annotations

import socket
import time

import pytest
from conftest import TELCO_CONFIG
from typer.testing import CliRunner

import mlflow
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
    assert configure_tracking(explicit) == explicit and mlflow.get_tracking_uri() == explicit
    monkeypatch.setenv(
        "MLFLOW_TRACKING_URI", env
    )  # mlflow.set_tracking_uri also rewrites the variable
    assert configure_tracking() == env
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.chdir(tmp_path)
    uri = configure_tracking()
    assert uri == f"sqlite:///{(tmp_path / 'mlflow' / 'mlflow.db').resolve()}"
    assert (tmp_path / "mlflow").is_dir()


def test_default_tracking_uri(tmp_path) -> None:
    assert (
        default_tracking_uri(tmp_path)
        == f"sqlite:///{(tmp_path / 'mlflow' / 'mlflow.db').resolve()}"
    )

"""Fault drill: the tracking server dies while ``train`` runs (issue 10).

A real ``mlflow server`` (SQLite backend) is killed with SIGKILL once the
first trial run reaches its database. ``train`` must end with one
``error:`` line naming the tracking server and no traceback; after the
server is restarted on the same backend no model version is registered
under the drill's name: a version is registered only after every run and
artifact is logged, so a death before then (during tuning, or after the
network's model is logged while the peers run) leaves none behind.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import TELCO_CONFIG

import mlflow

MLFLOW = Path(sys.executable).with_name("mlflow")
NAME = "drill-server-dies"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(root: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    log = open(root / "server.log", "a")
    proc = subprocess.Popen(
        [
            str(MLFLOW),
            "server",
            "--backend-store-uri",
            f"sqlite:///{root / 'db.sqlite'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=root,
        env=env,
        start_new_session=True,
    )
    log.close()
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            pytest.fail(f"mlflow server exited: {(root / 'server.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            pass
        if time.monotonic() > deadline:
            _kill(proc)
            pytest.fail(f"mlflow server not healthy: {(root / 'server.log').read_text()[-2000:]}")
        time.sleep(0.5)


def _kill(proc: subprocess.Popen) -> None:
    try:  # the server and its uvicorn worker share the process group started for it
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=15)


# when to kill: the first finished run (a tuning trial), or the network's own run finished
# (its model logged; the peers, the comparison and the registration still to come)
KILL_AFTER = {
    "first trial": "SELECT COUNT(*) FROM runs WHERE status = 'FINISHED'",
    "network logged": "SELECT COUNT(*) FROM runs WHERE status = 'FINISHED' AND name = 'bp_network'",
}


def _count(db: Path, query: str) -> int:
    """``query``'s count in the server's database (0 while the schema is not there yet)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute(query).fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.fixture
def keep_tracking_uri():
    before_env = os.environ.get("MLFLOW_TRACKING_URI")
    before = mlflow.get_tracking_uri()
    yield
    mlflow.set_tracking_uri(before)
    if before_env is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before_env


@pytest.mark.parametrize("moment", list(KILL_AFTER))
def test_server_killed_during_train(tmp_path: Path, keep_tracking_uri, moment: str) -> None:
    if not MLFLOW.exists():
        pytest.skip("mlflow executable not found next to the interpreter")
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    server = _start_server(tmp_path, port)
    env = dict(
        os.environ,
        MLFLOW_TRACKING_URI=uri,
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="1",
        MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR="1",
        MLFLOW_HTTP_REQUEST_TIMEOUT="10",
    )
    command = [sys.executable, "-m", "valuecube", "train", "-c", str(TELCO_CONFIG)]
    command += ["--trials", "2", "--max-epochs", "5", "--allow-worse", "drill"]
    command += ["--register-as", NAME, "--experiment", "drill"]
    train = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 240
        while _count(tmp_path / "db.sqlite", KILL_AFTER[moment]) < 1:
            assert train.poll() is None, f"train ended before the kill: {train.stderr.read()}"
            assert time.monotonic() < deadline, f"not at '{moment}' within 240 s"
            time.sleep(0.2)
        _kill(server)
        out, err = train.communicate(timeout=240)
    finally:
        if train.poll() is None:
            train.kill()
            train.wait()
        _kill(server)

    assert train.returncode != 0, out
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert "tracking server" in errors[0] and uri in errors[0], errors[0]

    server = _start_server(tmp_path, port)
    try:
        mlflow.set_tracking_uri(uri)
        versions = mlflow.MlflowClient().search_model_versions(f"name = '{NAME}'")
        assert versions == [], [(v.version, v.status) for v in versions]
    finally:
        _kill(server)

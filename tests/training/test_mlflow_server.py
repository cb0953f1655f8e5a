"""Integration: train against a real ``mlflow server`` over HTTP, load the registered model back."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import TELCO_CONFIG

import mlflow
from valuecube.features.config import load_config
from valuecube.training.data import load_training_data

MLFLOW = Path(sys.executable).with_name("mlflow")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    if not MLFLOW.exists():
        pytest.skip("mlflow executable not found next to the interpreter")
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    log = open(root / "server.log", "w")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
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
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"mlflow server exited {proc.returncode}: "
                    f"{(root / 'server.log').read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(uri + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    "mlflow server not healthy in 90 s: "
                    f"{(root / 'server.log').read_text()[-2000:]}"
                )
            time.sleep(0.5)
        yield uri
    finally:
        proc.terminate()  # mlflow forwards SIGTERM to its uvicorn worker
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        try:  # anything left in the server's own process group (it was started in a new session)
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        log.close()


@pytest.fixture
def keep_tracking_uri():
    before_env = os.environ.get("MLFLOW_TRACKING_URI")
    before = mlflow.get_tracking_uri()
    yield
    mlflow.set_tracking_uri(before)  # also rewrites MLFLOW_TRACKING_URI in mlflow 3
    if before_env is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before_env


def test_train_and_load_through_server(server, keep_tracking_uri) -> None:
    from valuecube.training.guards import GuardPolicy
    from valuecube.training.train import run_train

    result = run_train(
        TELCO_CONFIG,
        tracking_uri=server,
        trials=1,
        max_epochs=3,
        guard=GuardPolicy(allow_worse="a small model for tests and benchmarks"),
        seed=0,
        register_as="server-telco",
        experiment="server-tests",
    )
    assert mlflow.get_tracking_uri() == server
    data = load_training_data(load_config(TELCO_CONFIG), seed=0)
    rows = data.model_input(data.split.test[:5])

    mlflow.set_tracking_uri(server)
    client = mlflow.MlflowClient()
    assert (
        str(client.get_model_version_by_alias("server-telco", "challenger").version)
        == result.version
    )
    loaded = mlflow.pyfunc.load_model("models:/server-telco@challenger")
    got = loaded.predict(rows)
    expected = result.model.predict(rows)
    assert got["customer_id"].tolist() == expected["customer_id"].tolist()
    assert (got["churn_probability"] - expected["churn_probability"]).abs().max() < 1e-9
    assert got["segment_model"].tolist() == expected["segment_model"].tolist()
    # artifacts went through the server's proxy
    files = [f.path for f in client.list_artifacts(result.run_id, "comparison")]
    assert "comparison/comparison.csv" in files

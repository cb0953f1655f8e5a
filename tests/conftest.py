"""Shared fixtures: the bundled data and configs, a real MLflow store with trained models."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import mlflow

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
CONFIGS = ROOT / "configs"
TELCO_CSV = DATA / "telco_churn.csv"
CDNOW_TXT = DATA / "cdnow_master.txt"
TELCO_CONFIG = CONFIGS / "telco.yaml"
CDNOW_CONFIG = CONFIGS / "cdnow.yaml"
# The leading columns every `segment` output has, in order (both test folders check them).
SEGMENT_COLUMNS = [
    "customer_id",
    "cv_score",
    "pv_score",
    "ra_score",
    "segment",
    "segment_name",
    "policy",
    "clv",
    "lifecycle_stage",
]


def pytest_configure(config: pytest.Config) -> None:
    """One torch intra-op thread in the test processes, as ``train`` uses (``torch_threads``).

    The networks fitted directly by the model tests are small; a second
    thread buys nothing for them and, on a busy machine, contention made
    those fits several times slower.
    """
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # the CLI and server processes tests start


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh SQLite MLflow store for the session; MLFLOW_TRACKING_URI (subprocesses too) at it."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    yield uri
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous


@pytest.fixture(scope="session")
def telco_model(mlflow_store: str):
    """A small network trained on the real Telco data, registered as ``test-telco`` (challenger)."""
    from valuecube.training.train import run_train

    return run_train(
        TELCO_CONFIG, trials=2, max_epochs=15, seed=0, register_as="test-telco", experiment="tests"
    )


@pytest.fixture(scope="session")
def telco_pyfunc(telco_model):
    """The session's Telco model as MLflow loads it from the registry."""
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model("models:/test-telco@challenger")


@pytest.fixture(scope="session")
def cdnow_model(mlflow_store: str):
    """A small forecasting network trained on the real CDNOW log, registered as ``test-cdnow``."""
    from valuecube.training.train import run_train

    return run_train(
        CDNOW_CONFIG,
        trials=1,
        max_epochs=10,
        seed=0,
        register_as="test-cdnow",
        experiment="tests",
        snapshot_months=3,  # three training snapshots (Mar, Jun, Sep 1997): a cheap fixture
    )

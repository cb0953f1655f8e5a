"""Where MLflow tracks runs: an embedded local store by default, any server by ``MLFLOW_TRACKING_URI``.

The default store is a SQLite database and an artifact folder under
``mlflow/`` in the working directory (both git-ignored), so nothing needs
a server. A team points ``MLFLOW_TRACKING_URI`` at a shared ``mlflow server``
(see ``mlflow/README.md``). An HTTP tracking URI is checked before any work
starts, so an unreachable server fails in seconds with a clear message
instead of after training.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

import mlflow

STORE_DIR = Path("mlflow")
DEFAULT_DB = "mlflow.db"
DEFAULT_ARTIFACTS = "artifacts"


class TrackingError(RuntimeError):
    """The MLflow tracking server cannot be used."""


def default_tracking_uri(base: Path | None = None) -> str:
    """``sqlite:///…/mlflow/mlflow.db`` under ``base`` (default: the working directory)."""
    store = (base or Path.cwd()) / STORE_DIR
    store.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(store / DEFAULT_DB).resolve()}"


def configure_tracking(tracking_uri: str | None = None, *, timeout: float = 5.0) -> str:
    """Set MLflow's tracking URI (argument, else ``MLFLOW_TRACKING_URI``, else the local store) and check it.

    Raises
    ------
    TrackingError
        When an HTTP tracking server does not answer its health check within ``timeout`` seconds.
    """
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
    if uri.startswith(("http://", "https://")):
        check_server(uri, timeout=timeout)
    mlflow.set_tracking_uri(uri)
    return uri


def check_server(uri: str, *, timeout: float = 5.0) -> None:
    """Fail fast unless the MLflow server at ``uri`` answers ``/health``."""
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            if response.status != 200:
                raise TrackingError(f"MLflow server at {uri} answered {response.status} on /health")
    except (urllib.error.URLError, OSError) as exc:
        raise TrackingError(
            f"cannot reach the MLflow tracking server at {uri} ({exc}). Start it, fix MLFLOW_TRACKING_URI, "
            "or unset MLFLOW_TRACKING_URI to use the local store under mlflow/."
        ) from exc


def ensure_experiment(name: str) -> str:
    """Create (if needed) and select an experiment; local stores keep artifacts under ``mlflow/artifacts``."""
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        location = None
        if mlflow.get_tracking_uri().startswith("sqlite:///"):
            db = Path(mlflow.get_tracking_uri().removeprefix("sqlite:///"))
            location = (db.parent / DEFAULT_ARTIFACTS).resolve().as_uri()
        experiment_id = mlflow.create_experiment(name, artifact_location=location)
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id

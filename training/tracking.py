"""Where MLflow tracks runs: the project's store by default, any server by ``MLFLOW_TRACKING_URI``.

The default store (:mod:`valuecube.store`) is a SQLite database and an
artifact folder under the checkout's ``mlflow/`` (both git-ignored), the
same from any working directory, so nothing needs a server. A team points
``MLFLOW_TRACKING_URI`` at a shared ``mlflow server`` (see
``mlflow/README.md``). An HTTP tracking URI is checked before any work
starts, so an unreachable server fails in seconds with a clear message
instead of after training.
"""

from __future__ import annotations

import functools
import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import requests
from mlflow.exceptions import MlflowException

import mlflow
from valuecube import store

DEFAULT_ARTIFACTS = "artifacts"
_P = ParamSpec("_P")
_R = TypeVar("_R")


class TrackingError(RuntimeError):
    """The MLflow tracking server cannot be used."""


def default_tracking_uri(base: Path | None = None) -> str:
    """``sqlite:///…/mlflow/mlflow.db``: the project's default store, or the one under ``base``."""
    db = base / store.STORE_FOLDER / store.STORE_DB if base is not None else store.default_store()
    return f"sqlite:///{db.resolve()}"


def configure_tracking(
    tracking_uri: str | None = None, *, timeout: float = 5.0, create: bool = False
) -> str:
    """Set MLflow's tracking URI (argument, else :func:`valuecube.store.tracking_uri`) and check it.

    ``create=True`` (training) creates a local store that does not exist yet;
    otherwise a missing local store is an error, so that a lookup never
    leaves an empty store behind.

    Raises
    ------
    TrackingError
        When an HTTP tracking server does not answer its health check within
        ``timeout`` seconds, or a local store is missing and ``create`` is False.
    """
    uri = tracking_uri or store.tracking_uri()
    if uri.startswith(("http://", "https://")):
        check_server(uri, timeout=timeout)
    path = store.local_path(uri)
    if create and path is not None and uri.startswith("sqlite:///"):
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not create and (problem := store.missing_store(uri)) is not None:
        raise TrackingError(problem)
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
            f"cannot reach the MLflow tracking server at {uri} ({exc}). Start it, fix "
            f"{store.ENV_TRACKING_URI}, or unset it to use the project's store "
            f"({store.default_store()})."
        ) from exc


def ensure_experiment(name: str) -> str:
    """Create (if needed) and select an experiment; a local store keeps artifacts beside its db."""
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


def lost_connection(exc: BaseException) -> BaseException | None:
    """The connection error behind ``exc`` (MLflow wraps it without ``from``), else None."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def server_errors(job: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn a tracking server that stops answering mid-job into one :class:`TrackingError`.

    The health check only covers the start; a server that dies later makes
    MLflow's REST client raise a connection error from deep inside a run,
    which the command line would otherwise show as a traceback.
    """

    @functools.wraps(job)
    def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return job(*args, **kwargs)
        except (MlflowException, requests.exceptions.RequestException) as exc:
            cause = lost_connection(exc)
            if cause is None:
                raise
            uri = mlflow.get_tracking_uri()
            raise TrackingError(
                f"the MLflow tracking server at {uri} stopped answering during the job "
                f"({type(cause).__name__}). Restart it and run the command again."
            ) from exc

    return guarded


class QuietLostServer(logging.Filter):
    """Drop the traceback from a log record about a lost tracking server (kept: the message).

    Optuna logs a failed trial with its traceback before re-raising; when the
    cause is the tracking server going away, :func:`server_errors` already
    turns it into one error line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and lost_connection(record.exc_info[1]) is not None:
            record.exc_info = None
            record.exc_text = None
        return True

"""The MLflow tracking store every command uses, found the same way from any working directory.

``MLFLOW_TRACKING_URI`` when set (a server ``http://…``, a database
``sqlite:///…``, ``postgresql://…``); otherwise the project's own store,
located from the installed package rather than the working directory:

* in a source checkout (the ``valuecube`` package beside ``pyproject.toml``
  and ``mlflow/``): ``<checkout>/mlflow/mlflow.db``;
* in any other install: ``$XDG_DATA_HOME/valuecube/mlflow/mlflow.db``
  (``~/.local/share/valuecube/mlflow/mlflow.db`` by default).

Only ``train`` creates the store (:func:`valuecube.training.tracking.configure_tracking`
with ``create=True``); commands that look a model up refuse a local store
that does not exist (:func:`missing_store`) instead of letting MLflow
create an empty one. See ``mlflow/README.md``.

This module imports nothing of the project, so that ``training`` and
``serving`` (which never import each other) share it.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

ENV_TRACKING_URI = "MLFLOW_TRACKING_URI"
STORE_FOLDER = "mlflow"
STORE_DB = "mlflow.db"


def project_root() -> Path | None:
    """The source checkout holding the ``valuecube`` package, or None for another install."""
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / STORE_FOLDER / "README.md").is_file():
        return root
    return None


def default_store() -> Path:
    """The SQLite file of the default store (see the module docstring)."""
    root = project_root()
    if root is not None:
        return root / STORE_FOLDER / STORE_DB
    data = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data / "valuecube" / STORE_FOLDER / STORE_DB


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` when set, else ``sqlite:///`` + :func:`default_store`."""
    return os.environ.get(ENV_TRACKING_URI) or f"sqlite:///{default_store()}"


def origin() -> str:
    """Where the store's URI came from, and how to point elsewhere."""
    if os.environ.get(ENV_TRACKING_URI):
        return f"from {ENV_TRACKING_URI}"
    return f"the default store; set {ENV_TRACKING_URI} to use another"


def where(uri: str) -> str:
    """Words naming the store searched and how to point elsewhere, for error messages."""
    return f"the MLflow store {uri} ({origin()})"


def local_path(uri: str) -> Path | None:
    """The file or folder behind a local store URI (``sqlite:///``, ``file:``, a plain path)."""
    if uri.startswith("sqlite:///"):
        path = uri.removeprefix("sqlite:///")
        return None if path in ("", ":memory:") else Path(unquote(path.split("?", 1)[0]))
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" or len(parsed.scheme) == 1:  # a plain path (or a Windows drive)
        return Path(uri)
    return None


def missing_store(uri: str) -> str | None:
    """Why a local store cannot hold any model (it does not exist, or is empty), else None.

    Remote stores (servers, databases) are not checked here: MLflow reports them.
    """
    path = local_path(uri)
    if path is None:
        return None
    fix = (
        f"train a model first (valuecube train), or set {ENV_TRACKING_URI} to the store "
        "that holds it (e.g. sqlite:///path/to/mlflow.db or http://host:5000)"
    )
    if uri.startswith("sqlite:///"):
        if not path.is_file() or path.stat().st_size == 0:
            return f"no MLflow store at {path} ({origin()}); {fix}"
        return None
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return f"no MLflow store at {path} ({origin()}): missing or an empty folder; {fix}"
    return None

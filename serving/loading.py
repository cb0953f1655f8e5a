"""Load a registered model by its MLflow URI, with the name and version it resolves to.

Batch scoring, the Spark engine and the HTTP API all start here, so they
score with the same object and stamp their output with the same
``model_name``/``model_version``. An alias (``models:/NAME@champion``) is
resolved to a version *first* and that exact version is loaded, so a
promotion happening meanwhile cannot mix two versions in one job.

Tracking store: :func:`valuecube.store.tracking_uri` (``MLFLOW_TRACKING_URI``
when set, else the project's ``mlflow/mlflow.db`` located from the package,
whatever the working directory). A local store that does not exist is an
error naming it, never created empty by the lookup. This module never
imports ``training/``: serving only needs the model URI.

Fast path: with a local SQLite store and a model saved on local disk (what
``valuecube train`` makes), the alias is resolved with one SQL query
(:func:`registry_lookup`) and the model's ``python_model.pkl`` is read
directly (:func:`read_packaged`), so scoring and serving start without
importing MLflow (about 4 s) or initialising its SQL store (about 3 s).
Anything else (a tracking server, another database, a missing name or
alias, a model that is not a valuecube model) goes through MLflow, which
also words the errors. ``LoadedModel.pyfunc`` loads the MLflow pyfunc on
first use.
"""

from __future__ import annotations

import os
import pickle
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from valuecube import store

if TYPE_CHECKING:  # heavy imports stay inside the functions (CLI start-up time)
    import mlflow.pyfunc

    from valuecube.features.config import DatasetConfig
    from valuecube.models.packaged import ChurnSegmentModel

_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>[^/]+))$")


class ModelLoadError(RuntimeError):
    """The model URI cannot be resolved or loaded; the message says why and what to try."""


@dataclass(frozen=True)
class LoadedModel:
    """A loaded pyfunc model, the :class:`ChurnSegmentModel` inside it, and where it came from.

    ``uri`` is the pinned URI (``models:/NAME/VERSION``) that Spark workers load.
    """

    uri: str
    name: str
    version: str
    model: ChurnSegmentModel
    _pyfunc: list[Any] = field(default_factory=list, repr=False, compare=False)

    @property
    def pyfunc(self) -> mlflow.pyfunc.PyFuncModel:
        """The MLflow pyfunc of :attr:`uri`, loaded on first use (it imports MLflow)."""
        if not self._pyfunc:
            import mlflow.pyfunc

            use_store()
            self._pyfunc.append(mlflow.pyfunc.load_model(self.uri))
        return self._pyfunc[0]

    @property
    def config(self) -> DatasetConfig:
        """The dataset config the model was trained with (it travels with the model)."""
        return self.model.config


def tracking_uri() -> str:
    """The store models are looked up in (:func:`valuecube.store.tracking_uri`)."""
    return store.tracking_uri()


def use_store() -> str:
    """Point MLflow at :func:`tracking_uri`; a missing local store is a :class:`ModelLoadError`."""
    import mlflow

    uri = check_store()
    mlflow.set_tracking_uri(uri)
    return uri


def check_store() -> str:
    """:func:`tracking_uri`, checked to exist, without importing MLflow.

    ``MLFLOW_TRACKING_URI`` is set to it when unset, so that MLflow, when this
    process imports it later (a monitoring run, Spark workers), uses the same
    store as the model lookup.
    """
    uri = tracking_uri()
    problem = store.missing_store(uri)
    if problem is not None:
        raise ModelLoadError(problem)
    os.environ.setdefault(store.ENV_TRACKING_URI, uri)
    return uri


def registry_lookup(model_uri: str) -> tuple[str, str, Path] | None:
    """``(name, version, model folder)`` read straight from a local SQLite registry, else None.

    One read-only query per step: the alias (or ``latest``) to a version, the
    version to its storage location. None (so the caller asks MLflow) for any
    other store, a URI that names no registered model, a name, alias or
    version that is not found exactly once, or a model stored off this disk.
    """
    match = _MODELS_URI.match(model_uri)
    uri = tracking_uri()
    if match is None or not uri.startswith("sqlite:///"):
        return None
    db = store.local_path(uri)
    name, alias, version = match["name"], match["alias"], match["version"]
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            if alias is not None:
                rows = con.execute(
                    "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?",
                    (name, alias),
                ).fetchall()
            elif version == "latest":
                rows = con.execute(
                    "SELECT MAX(version) FROM model_versions WHERE name = ?", (name,)
                ).fetchall()
            else:
                rows = [(version,)]
            if len(rows) != 1 or rows[0][0] is None:
                return None
            version = str(rows[0][0])
            found = con.execute(
                "SELECT storage_location FROM model_versions WHERE name = ? AND version = ?",
                (name, version),
            ).fetchall()
    except (sqlite3.Error, ValueError):
        return None
    if len(found) != 1 or not str(found[0][0] or "").startswith("file://"):
        return None
    folder = Path(unquote(urlparse(found[0][0]).path))
    if not (folder / "MLmodel").is_file() or not (folder / _PYTHON_MODEL).is_file():
        return None
    return name, version, folder


_PYTHON_MODEL = "python_model.pkl"
_PYFUNC_CLASSES = {
    ("valuecube.models.pyfunc", "ValueCubePyfunc"),
    ("valuecube.models.packaged", "ValueCubePyfunc"),  # models logged before it moved
}


class _PyfuncState:
    """What a pickled ``ValueCubePyfunc`` unpickles to here: its attributes, no MLflow class."""


class _MlflowObject:
    """What the wrapper's MLflow attributes (e.g. its predict type hints) unpickle to here."""


class _ModelUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _PYFUNC_CLASSES:
            return _PyfuncState
        if module == "mlflow" or module.startswith("mlflow."):
            return _MlflowObject
        return super().find_class(module, name)


def read_packaged(folder: Path) -> ChurnSegmentModel | None:
    """The :class:`ChurnSegmentModel` in a saved valuecube pyfunc folder, without MLflow.

    Reads the pickle MLflow's ``python_function`` flavour wrote (cloudpickle
    output is a standard pickle), mapping the wrapper class to a plain holder.
    None when the folder holds another kind of model (the caller asks MLflow).
    """
    from valuecube.models.packaged import ChurnSegmentModel

    mlmodel = (folder / "MLmodel").read_text()
    if "loader_module: mlflow.pyfunc.model" not in mlmodel:
        return None
    with open(folder / _PYTHON_MODEL, "rb") as f:
        wrapper = _ModelUnpickler(f).load()
    model = getattr(wrapper, "model", None) if isinstance(wrapper, _PyfuncState) else None
    return model if isinstance(model, ChurnSegmentModel) else None


def resolve(model_uri: str) -> tuple[str, str, str]:
    """``(name, version, pinned_uri)`` for ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``.

    Other URIs (``runs:/…``, a local path) load as they are, with the URI as
    the name and ``"unregistered"`` as the version. MLflow must already point
    at the store (:func:`use_store`).
    """
    from mlflow import MlflowClient

    match = _MODELS_URI.match(model_uri)
    if match is None:
        if model_uri.startswith("models:/"):
            raise ModelLoadError(
                f"cannot parse {model_uri!r}; use models:/NAME@ALIAS or models:/NAME/VERSION"
            )
        if ":" not in model_uri and not Path(model_uri).exists():
            raise ModelLoadError(
                f"{model_uri!r} is neither a model URI nor a path; a registered model is named "
                f"by a URI such as models:/{model_uri}@champion or models:/{model_uri}/1"
            )
        return model_uri, "unregistered", model_uri
    name, alias, version = match["name"], match["alias"], match["version"]
    client = None
    try:
        client = MlflowClient()
        if alias is not None:
            version = str(client.get_model_version_by_alias(name, alias).version)
        elif version == "latest":
            version = str(
                max(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
            )
        else:
            client.get_model_version(name, version)
    except Exception as exc:  # MLflow's, or the database driver's for a file that is no store
        raise ModelLoadError(_explain(client, name, alias, version, exc)) from exc
    return name, version, f"models:/{name}/{version}"


def resolve_quickly(model_uri: str) -> tuple[str, str, str]:
    """:func:`resolve`, answered from a local SQLite registry without MLflow when it can be."""
    check_store()
    found = registry_lookup(model_uri)
    if found is not None:
        name, version, _ = found
        return name, version, f"models:/{name}/{version}"
    use_store()
    return resolve(model_uri)


def _explain(
    client: object, name: str, alias: str | None, version: str | None, exc: Exception
) -> str:
    """A helpful message for a model that cannot be found: the store searched, what exists."""
    from mlflow.exceptions import MlflowException

    where = f"in {store.where(tracking_uri())}"
    if client is None or not isinstance(exc, MlflowException):
        return f"cannot read {store.where(tracking_uri())}: {_first_line(exc)}"
    try:
        model = client.get_registered_model(name)  # type: ignore[attr-defined]
    except Exception as lookup:
        if getattr(lookup, "error_code", None) != "RESOURCE_DOES_NOT_EXIST":
            return f"cannot read {store.where(tracking_uri())}: {_first_line(lookup)}"
        return (
            f"no registered model {name!r} {where}; train one with `valuecube train` "
            "(it registers valuecube-<dataset>)"
        )
    aliases = ", ".join(f"@{a}" for a in sorted(model.aliases)) or "none"
    what = f"alias @{alias}" if alias is not None else f"version {version}"
    hint = " (promote the challenger with `valuecube promote`)" if alias == "champion" else ""
    return f"registered model {name!r} has no {what} {where}; its aliases: {aliases}{hint}"


def _first_line(exc: Exception) -> str:
    """An exception's message up to its first sentence break (MLflow's are paragraphs)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.split(". ", 1)[0]


def load_model(model_uri: str) -> LoadedModel:
    """Resolve ``model_uri`` to a version and load it (see the module docstring).

    Raises
    ------
    ModelLoadError
        When the store, the name, the alias or the version does not exist, or
        the URI is not a valuecube model.
    """
    check_store()
    found = registry_lookup(model_uri)
    if found is not None:
        name, version, folder = found
        try:
            model = read_packaged(folder)
        except (OSError, pickle.UnpicklingError, AttributeError, ImportError) as exc:
            raise ModelLoadError(f"cannot load {model_uri} from {folder}: {exc}") from exc
        if model is not None:
            return LoadedModel(f"models:/{name}/{version}", name, version, model)

    from mlflow.exceptions import MlflowException

    import mlflow
    from valuecube.models.packaged import ChurnSegmentModel, unwrap

    use_store()
    name, version, pinned = resolve(model_uri)
    try:
        pyfunc = mlflow.pyfunc.load_model(pinned)
        model = unwrap(pyfunc)
    except (MlflowException, OSError, AttributeError) as exc:
        raise ModelLoadError(f"cannot load {model_uri} ({pinned}): {exc}") from exc
    if not isinstance(model, ChurnSegmentModel):
        raise ModelLoadError(f"{model_uri} is not a valuecube model (found {type(model).__name__})")
    return LoadedModel(pinned, name, version, model, [pyfunc])


def check_config(model_config: DatasetConfig, config_path: str | Path | None) -> list[str]:
    """Compare a ``--config`` file with the model's own config.

    Returns warnings for differences outside the input schema (the model
    scores with its own tree and factors). Raises :class:`ValueError` when the
    input schema differs, naming the columns, because the file would then be
    read with a schema the model was not trained on.
    """
    from valuecube.features.config import load_config

    if config_path is None:
        return []
    given = load_config(config_path)
    ours, theirs = model_config.input, given.input
    if ours != theirs:
        problems = []
        for col in sorted(set(ours.columns) | set(theirs.columns)):
            a, b = ours.columns.get(col), theirs.columns.get(col)
            if a != b:
                model_side = a.model_dump(exclude_defaults=True) if a else "absent"
                given_side = b.model_dump(exclude_defaults=True) if b else "absent"
                problems.append(f"column {col!r}: model {model_side}, --config {given_side}")
        other = [
            k
            for k in type(ours).model_fields
            if k != "columns" and getattr(ours, k) != getattr(theirs, k)
        ]
        problems += [
            f"input.{k}: model {getattr(ours, k)!r}, --config {getattr(theirs, k)!r}" for k in other
        ]
        raise ValueError(
            f"{config_path} does not match the model's input schema "
            f"(dataset {model_config.name!r}):\n  "
            + "\n  ".join(problems)
            + "\nDrop --config (the model carries its own config) "
            "or pass the config the model was trained with."
        )
    return (
        []
        if given.model_dump(exclude={"data", "description"})
        == model_config.model_dump(exclude={"data", "description"})
        else [
            f"{config_path} differs from the model's config outside 'input' (factors/tree/…); "
            "the model scores with its own"
        ]
    )

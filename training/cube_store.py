"""Saving, loading and registering a fitted value cube as an MLflow pyfunc model.

A saved cube is an ordinary ``mlflow.pyfunc.save_model`` folder: it loads with
``mlflow.pyfunc.load_model(DIR)``, carries valuecube's code like the network
model does (:mod:`training.model_code`) and takes raw input rows of any
dtypes. Registered (``--register-as NAME``), it is versioned in the MLflow
registry like the network; its first version takes the ``champion`` alias,
later ones ``challenger`` until promoted.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature

import mlflow
from valuecube.models.packaged import input_schema
from valuecube.models.saved_cube import KIND_TAG, ValueCubeModel, cube_model
from valuecube.training.model_code import model_code, requirements
from valuecube.training.registry import register_cube
from valuecube.training.tracking import configure_tracking, ensure_experiment


class CubeLoadError(ValueError):
    """A ``--cube`` argument that is not a saved cube, a registered cube or a network model."""


def _signature(model: ValueCubeModel, predicted: pd.DataFrame) -> ModelSignature:
    """Inputs: the config's columns, any type (the cube validates them); outputs as predicted."""
    try:
        outputs = infer_signature(predicted).inputs
    except MlflowException:  # e.g. a column of None only (no lifecycle configured)
        outputs = None
    return ModelSignature(inputs=input_schema(list(model.config.input.columns)), outputs=outputs)


def save_cube(model: ValueCubeModel, path: str | Path, predicted: pd.DataFrame) -> Path:
    """Save ``model`` as an MLflow pyfunc folder at ``path`` (which must not exist or be empty).

    ``predicted`` is a few rows of its output, for the signature.

    The folder is written next to ``path`` and renamed into place, so an
    interrupted save never leaves a complete-looking cube.
    """
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ValueError(f"--save-cube {path}: already exists; give a new folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        with model_code() as code_paths:
            mlflow.pyfunc.save_model(
                str(staging / "cube"),
                python_model=model,
                code_paths=code_paths,
                signature=_signature(model, predicted),
                pip_requirements=requirements(),
                metadata={KIND_TAG: "cube", "dataset": model.config.name},
            )
        if path.exists():
            path.rmdir()
        os.replace(staging / "cube", path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def log_and_register_cube(
    model: ValueCubeModel, name: str, predicted: pd.DataFrame
) -> tuple[str, str]:
    """Log ``model`` in an MLflow run and register it as ``name``; return (version, alias)."""
    configure_tracking()
    ensure_experiment(f"valuecube-{model.config.name}")
    with mlflow.start_run(run_name=f"segment-{model.config.name}"):
        mlflow.log_params({k: str(v) for k, v in model.metadata.items()})
        with model_code() as code_paths:
            info = mlflow.pyfunc.log_model(
                name="cube",
                python_model=model,
                code_paths=code_paths,
                signature=_signature(model, predicted),
                pip_requirements=requirements(),
                metadata={KIND_TAG: "cube", "dataset": model.config.name},
            )
    return register_cube(name, info.model_uri, tags={"dataset": model.config.name})


def load_cube(uri: str | Path) -> ValueCubeModel:
    """The cube of a saved cube folder, a ``models:/``/``runs:/`` URI of a cube, or a network model.

    Raises
    ------
    CubeLoadError
        Saying what was found instead and what ``--cube`` accepts.
    """
    text = str(uri)
    if "://" not in text and not text.startswith("models:/"):
        folder = Path(text)
        if not (folder / "MLmodel").is_file():
            raise CubeLoadError(
                f"--cube {text}: no saved cube there (a folder written by --save-cube, with an "
                "MLmodel file); a registered one is models:/NAME@ALIAS"
            )
    else:
        configure_tracking()
    try:
        loaded = mlflow.pyfunc.load_model(text)
        return cube_model(loaded.unwrap_python_model())
    except (MlflowException, OSError, TypeError) as exc:
        raise CubeLoadError(f"--cube {text}: cannot load a value cube: {exc}") from exc
